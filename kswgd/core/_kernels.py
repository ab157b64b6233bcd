"""Every Numba kernel of the project lives here (one home; everything else calls these).

Conventions: inputs are C-contiguous float64 arrays validated by the Python wrapper that calls
the kernel; kernels trust their inputs. Each kernel has ``cache=True``; ``parallel=True`` with
``prange`` over particles where the per-particle work is large enough. No BLAS inside a prange
body. Each kernel's docstring gives the formula and the shapes; each has a plain-numpy twin in
the tests. Numba's ``exp`` is a scalar call on this machine while numpy's is SIMD, so Gaussian
matrices (``gauss_features``, ``gauss_features_rowshift``) are plain functions: the kernel
``sq_distances`` and ``shift_scale_rows`` fill a cache-sized block of exponents, numpy
exponentiates it into place,
and the blocks are shared among Python threads (both release the GIL), not among ``prange``
iterations.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

# ---------------------------------------------------------------------------------------------
# Gaussian bumps (the `rbf` dictionary and the spectral transport)
# ---------------------------------------------------------------------------------------------


_SCRATCH_ENTRIES = 1 << 17  # exponent entries per block (1 MB: stays in cache)
_THREADED_ENTRIES = 1 << 17  # below this many entries one thread does the whole matrix
_POOL: list = []             # the lazily created thread pool of _gauss_matrix
# Exponents below _EXP_LO give kernel entries of exactly 0 (exp(−707) ≈ 9e-308 is at the edge
# of the normal doubles): numpy's SIMD exp leaves its fast path for arguments below about −708,
# which made it 7× slower on kernels where most pairs are far apart (measured on this machine),
# so those exponents are floored at _EXP_LO and their entries set to 0 after the exp.
_EXP_LO = -707.0


def _row_blocks(n: int, f: int) -> list[tuple[int, int]]:
    rows = max(1, min(n, _SCRATCH_ENTRIES // max(f, 1)))
    return [(i, min(i + rows, n)) for i in range(0, n, rows)]


def _gauss_matrix(x, z, sigma, shift, out):
    """exp(c (‖x_i − z_j‖² − m_i)), c = −1/(2σ²), m_i = min_l ‖x_i − z_l‖² if ``shift`` else 0,
    with entries below exp(_EXP_LO) ≈ 9e-308 set to 0, in row blocks: the exponent of a block
    (``sq_distances``, ``shift_scale_rows``) stays in cache, numpy's SIMD exp writes each entry
    of ``out`` once (Numba's exp is a scalar call).

    With ``numba.get_num_threads()`` = T > 1 (``--threads-per-run``) and a large matrix, the
    blocks are shared among T Python threads: the kernel (``nogil``) and numpy's ``exp`` both
    release the GIL, so the exponent and the exponential run on T cores. Every entry is computed
    by the same arithmetic whatever the split, so the result does not depend on T."""
    import numba

    x = np.ascontiguousarray(x, dtype=np.float64)
    zt = np.ascontiguousarray(np.asarray(z, dtype=np.float64).T)
    n, f = x.shape[0], zt.shape[1]
    if out is None:
        out = np.empty((n, f))
    c = -0.5 / (float(sigma) ** 2)
    blocks = _row_blocks(n, f)
    threads = min(numba.get_num_threads(), len(blocks)) if n * f >= _THREADED_ENTRIES else 1

    def fill(part: list[tuple[int, int]]) -> None:
        scratch = np.empty((blocks[0][1] - blocks[0][0], f))
        zeros = np.zeros(len(scratch))
        for i0, i1 in part:
            e = sq_distances(x[i0:i1], zt, scratch[: i1 - i0])
            if shift_scale_rows(e, e.min(axis=1) if shift else zeros[: i1 - i0], c, _EXP_LO):
                zero_where_floored(e, np.exp(e, out=out[i0:i1]), _EXP_LO)
            else:
                np.exp(e, out=out[i0:i1])

    if threads <= 1:
        fill(blocks)
        return out
    if not _POOL:
        from concurrent.futures import ThreadPoolExecutor

        _POOL.append(ThreadPoolExecutor(numba.config.NUMBA_NUM_THREADS,
                                        thread_name_prefix="kswgd-gauss"))
    for job in [_POOL[0].submit(fill, blocks[t::threads]) for t in range(threads)]:
        job.result()
    return out


def gauss_features(x, z, sigma, out=None):
    """Gaussian bumps ψ_ij = exp(−‖x_i − z_j‖² / (2σ²)).

    x: (N, d) points, z: (F, d) centres, sigma: bandwidth; out: optional (N, F) array (may be a
    strided view). Returns (N, F). Exponent by ``sq_distances``, exp by numpy.
    """
    return _gauss_matrix(x, z, sigma, False, out)


def gauss_features_rowshift(x, z, sigma, out=None):
    """Row-shifted Gaussian kernel k_ij = exp(−(‖x_i − z_j‖² − min_l ‖x_i − z_l‖²) / (2σ²)).

    Each row is scaled by a positive constant so that its largest entry is 1: ratios of kernel
    sums along a row (the Nyström extension of diffusion maps) are unchanged and never underflow
    to 0/0 for points far from every z_j. x: (N, d), z: (F, d). Returns (N, F).
    """
    return _gauss_matrix(x, z, sigma, True, out)


@njit(cache=True, parallel=True, fastmath=True)
def gauss_grad_dot(x, z, psi, beta, sigma):
    """Σ_j β_j ∇ψ_j(x_i) for Gaussian bumps, given ψ_ij (docs/design.md, 'The transport'):

        v_i = −(x_i Σ_j β_j ψ_ij − Σ_j β_j ψ_ij z_j) / σ²

    x: (N, d), z: (F, d), psi: (N, F), beta: (F,). Returns (N, d). O(N F d) time, no (N, F, d).
    """
    n, d = x.shape
    f = z.shape[0]
    out = np.empty((n, d))
    inv = 1.0 / (sigma * sigma)
    for i in prange(n):
        s = 0.0
        w = np.zeros(d)
        for j in range(f):
            b = beta[j] * psi[i, j]
            s += b
            for a in range(d):
                w[a] += b * z[j, a]
        for a in range(d):
            out[i, a] = -(x[i, a] * s - w[a]) * inv
    return out



@njit(cache=True, fastmath=True, nogil=True)
def sq_distances(x, zt, out):
    """Squared distances d_ij = ‖x_i − z_j‖², written in place.

    x: (N, d) points; zt: (d, n) the centres transposed, so that each coordinate is one
    contiguous row and the loop over j vectorises; out: (N, n), filled and returned. O(N n d).
    Serial and ``nogil``: ``_gauss_matrix`` runs it on row blocks in several threads.
    """
    n_rows, d = x.shape
    f = zt.shape[1]
    for i in range(n_rows):
        row = out[i]
        for j in range(f):
            row[j] = 0.0
        for a in range(d):
            xa = x[i, a]
            za = zt[a]
            for j in range(f):
                t = xa - za[j]
                row[j] = row[j] + t * t
    return out


@njit(cache=True, fastmath=True, nogil=True)
def shift_scale_rows(out, m, c, lo):
    """The Gaussian exponent from squared distances, in place, floored at ``lo``:

        e_ij = max(c · (d_ij − m_i), lo)

    out: (N, n) squared distances; m: (N,) row shifts (the row minima for a row-shifted kernel,
    else zeros); c = −1/(2s²). Returns the number of entries floored. (The row minimum is
    numpy's ``min``, which is SIMD; a minimum inside the distance loop stopped it vectorising.)
    """
    floored = 0
    for i in range(out.shape[0]):
        row = out[i]
        mi = m[i]
        for j in range(out.shape[1]):
            v = c * (row[j] - mi)
            if v < lo:
                v = lo
                floored += 1
            row[j] = v
    return floored


@njit(cache=True, fastmath=True, nogil=True)
def zero_where_floored(e, k, lo):
    """k_ij = 0 where e_ij ≤ lo (the entries ``shift_scale_rows`` floored), in place.
    e, k: (N, n)."""
    for i in range(e.shape[0]):
        for j in range(e.shape[1]):
            if e[i, j] <= lo:
                k[i, j] = 0.0


# ---------------------------------------------------------------------------------------------
# SVGD (baselines/svgd.py)
# ---------------------------------------------------------------------------------------------


@njit(cache=True, parallel=True, fastmath=True)
def svgd_direction(x, s, bw2):
    """SVGD direction with the RBF kernel k(x, y) = exp(−‖x − y‖² / (2 b²)), b² = ``bw2``:

        φ_i = (1/N) Σ_j [k(x_j, x_i) s_j + ∇_{x_j} k(x_j, x_i)]
            = (1/N) [Σ_j k_ij (s_j − x_j / b²) + x_i Σ_j k_ij / b²]

    x: (N, d) particles, s: (N, d) scores s(x_j). Returns (N, d). O(N² d) time, O(N d) memory:
    no (N, N) matrix and no (N, N, d) tensor. Each i sums over j in a fixed order (deterministic).
    """
    n, d = x.shape
    out = np.empty((n, d))
    inv = 1.0 / bw2
    for i in prange(n):
        ksum = 0.0
        for a in range(d):
            out[i, a] = 0.0
        for j in range(n):
            d2 = 0.0
            for a in range(d):
                t = x[i, a] - x[j, a]
                d2 += t * t
            k = np.exp(-0.5 * inv * d2)
            ksum += k
            for a in range(d):
                out[i, a] += k * (s[j, a] - x[j, a] * inv)
        for a in range(d):
            out[i, a] = (out[i, a] + x[i, a] * ksum * inv) / n
    return out


# ---------------------------------------------------------------------------------------------
# Metrics (kswgd/metrics.py): pair sums for the energy distance and KSD (MMD² uses the
# Gaussian matrices above, whose numpy exp is faster than a fused loop's scalar exp)
#
# Each kernel returns per-row partial sums (one entry per point, each summed over j in a fixed
# order); the wrapper adds them up with numpy, so the result does not depend on the thread
# count. "Self" kernels sum over j > i only, and process rows i and n − 1 − i in the same task
# so that both threads get the same share of the triangle.
# ---------------------------------------------------------------------------------------------


@njit(cache=True, fastmath=True, inline="always")
def _sqdist(x, i, y, j):
    """‖x_i − y_j‖² (serial helper, inlined)."""
    r2 = 0.0
    for a in range(x.shape[1]):
        t = x[i, a] - y[j, a]
        r2 += t * t
    return r2


@njit(cache=True, fastmath=True)
def _dist_row(x, i, y, j0):
    """Σ_{j ≥ j0} ‖x_i − y_j‖ for one row i (serial helper)."""
    acc = 0.0
    for j in range(j0, y.shape[0]):
        acc += np.sqrt(_sqdist(x, i, y, j))
    return acc


@njit(cache=True, parallel=True, fastmath=True)
def dist_cross_rowsums(x, y):
    """Row sums of Euclidean distances between two point sets: r_i = Σ_j ‖x_i − y_j‖.

    x: (n, d), y: (m, d). Returns (n,). O(n m d) time, O(n) memory.
    """
    n = x.shape[0]
    out = np.empty(n)
    for i in prange(n):
        out[i] = _dist_row(x, i, y, 0)
    return out


@njit(cache=True, parallel=True, fastmath=True)
def dist_self_rowsums(x):
    """Upper-triangle row sums of distances within one set: r_i = Σ_{j > i} ‖x_i − x_j‖.

    x: (n, d). Returns (n,). O(n² d / 2) time, O(n) memory.
    """
    n = x.shape[0]
    out = np.zeros(n)
    for t in prange((n + 1) // 2):
        out[t] = _dist_row(x, t, x, t + 1)
        u = n - 1 - t
        if u != t:
            out[u] = _dist_row(x, u, x, u + 1)
    return out


@njit(cache=True, fastmath=True)
def _imq_stein_row(x, s, i, c2, beta):
    """Σ_{j > i} u(x_i, x_j) of the IMQ Stein kernel (see imq_stein_self_rowsums)."""
    n, d = x.shape
    acc = 0.0
    for j in range(i + 1, n):
        r2 = 0.0
        ss = 0.0
        sr = 0.0
        for a in range(d):
            r = x[i, a] - x[j, a]
            r2 += r * r
            ss += s[i, a] * s[j, a]
            sr += (s[j, a] - s[i, a]) * r
        q = c2 + r2
        k = q**beta
        k1 = k / q  # q^(β−1)
        k2 = k1 / q  # q^(β−2)
        acc += ss * k + 2.0 * beta * k1 * (sr - d) - 4.0 * beta * (beta - 1.0) * k2 * r2
    return acc


@njit(cache=True, parallel=True, fastmath=True)
def imq_stein_self_rowsums(x, s, c2, beta):
    """Upper-triangle row sums of the Langevin Stein kernel built on the IMQ kernel
    k(x, y) = (c² + ‖x − y‖²)^β (β < 0), with r = x − y, q = c² + ‖r‖², s = ∇log π:

        u(x, y) = s(x)·s(y) q^β + 2β q^(β−1) (s(y) − s(x))·r − 2β d q^(β−1)
                  − 4β(β − 1) q^(β−2) ‖r‖²
        r_i = Σ_{j > i} u(x_i, x_j)

    x: (n, d) points, s: (n, d) scores at the points, c2 = c². Returns (n,). O(n² d / 2) time.
    """
    n = x.shape[0]
    out = np.zeros(n)
    for t in prange((n + 1) // 2):
        out[t] = _imq_stein_row(x, s, t, c2, beta)
        u = n - 1 - t
        if u != t:
            out[u] = _imq_stein_row(x, s, u, c2, beta)
    return out


# ---------------------------------------------------------------------------------------------
# Stochastic Allen–Cahn, explicit Euler–Maruyama on a periodic grid (datasets/allen_cahn.py)
# ---------------------------------------------------------------------------------------------


@njit(cache=True, parallel=True)
def allen_cahn_em_1d(u, noise, dt, delta, eps, h):
    """S Euler–Maruyama steps of u_t = δ u_xx + (u − u³)/ε² + σ ξ on a periodic 1-D grid.

    u_i ← u_i + dt (δ (u_{i−1} − 2u_i + u_{i+1}) / h² + (u_i − u_i³) / ε²) + noise[s, c, i],
    where the caller has scaled noise to σ √(dt / h) · N(0, 1). u: (C, N) updated in place and
    returned; noise: (S, C, N). Chains c run in parallel.
    """
    n_chain, n = u.shape
    n_step = noise.shape[0]
    coef = delta / (h * h)
    inv = 1.0 / (eps * eps)
    for c in prange(n_chain):
        cur = u[c].copy()
        nxt = np.empty(n)
        for s in range(n_step):
            for i in range(n):
                left = cur[i - 1] if i > 0 else cur[n - 1]
                right = cur[i + 1] if i < n - 1 else cur[0]
                x = cur[i]
                nxt[i] = x + dt * (coef * (left - 2.0 * x + right) + (x - x * x * x) * inv) \
                    + noise[s, c, i]
            cur, nxt = nxt, cur
        u[c] = cur
    return u


@njit(cache=True, parallel=True)
def allen_cahn_em_2d(u, noise, dt, delta, eps, h):
    """S Euler–Maruyama steps of u_t = δ Δu + (u − u³)/ε² + σ ξ on a periodic 2-D grid.

    Five-point Laplacian with spacing h; noise pre-scaled by the caller to σ √(dt / h²) N(0, 1).
    u: (C, N, N) updated in place and returned; noise: (S, C, N, N). Chains run in parallel.
    """
    n_chain, n, m = u.shape
    n_step = noise.shape[0]
    coef = delta / (h * h)
    inv = 1.0 / (eps * eps)
    for c in prange(n_chain):
        cur = u[c].copy()
        nxt = np.empty((n, m))
        for s in range(n_step):
            for i in range(n):
                ip = i + 1 if i < n - 1 else 0
                im = i - 1 if i > 0 else n - 1
                for j in range(m):
                    jp = j + 1 if j < m - 1 else 0
                    jm = j - 1 if j > 0 else m - 1
                    x = cur[i, j]
                    lap = cur[ip, j] + cur[im, j] + cur[i, jp] + cur[i, jm] - 4.0 * x
                    nxt[i, j] = x + dt * (coef * lap + (x - x * x * x) * inv) + noise[s, c, i, j]
            cur, nxt = nxt, cur
        u[c] = cur
    return u
