"""The Stein variational direction and its kernel bandwidth (Liu & Wang 2016), shared by the
SVGD samplers (baselines/svgd.py, baselines/svgd_annealed.py).

    φ(x_i) = (1/N) Σ_j [γ k(x_j, x_i) s(x_j) + ∇_{x_j} k(x_j, x_i)]   (γ = 1: plain SVGD)

RBF kernel k(x, y) = exp(−‖x − y‖² / (2 b²)), with the median heuristic of the original SVGD
code recomputed at every step: b² = med / (2 log(N + 1)), med the median of the full N × N
matrix of squared distances, diagonal zeros and both orders of each pair included (so, among
the pair distances, the quantile (N − 2)/(2(N − 1)) rather than the median over pairs i < j,
which is 4 % larger at N = 50). It is found by selection (``np.partition``) on the N(N − 1)/2
pair distances, without sorting or an N × N matrix.

The direction is computed without an (N, N, d) tensor: a fused Numba loop for d < 10 and a
row-blocked numpy/BLAS form for d ≥ 10 (docs/performance.md: even at d = 10, BLAS 1.4–2× faster
at d = 50); both compute the same sum, and ``backend`` forces either.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from scipy.spatial.distance import pdist

from kswgd.core import _kernels
from kswgd.params import choice_error

NUMPY_MIN_DIM = 10  # d at which the numpy/BLAS path overtakes the fused Numba loop


_BLOCK_ELEMENTS = 1 << 20  # numpy path: row blocks of ≈ 1M kernel entries (8 MB)


_MEDIAN_SEED = 20160101  # fixed seed of the median subsample (not the run's rng)


def _svgd_direction_numpy(x: np.ndarray, s: np.ndarray, bw2: float) -> np.ndarray:
    """Same sum as ``_kernels.svgd_direction`` via the Gram form ‖x_i‖² + ‖x_j‖² − 2 x_i·x_j.

    φ_rows = (K_rows (s − x/b²) + x_rows (K_rows 1)/b²) / N: two GEMMs per block of rows,
    each block holding about 1M kernel entries, so memory stays O(N d + 1M).
    """
    n = x.shape[0]
    c = -0.5 / bw2
    sq = c * np.einsum("ij,ij->i", x, x)
    rhs = s - x / bw2
    out = np.empty_like(x)
    block = max(64, _BLOCK_ELEMENTS // n)
    for lo in range(0, n, block):
        hi = min(lo + block, n)
        e = x[lo:hi] @ (-2.0 * c * x.T)  # exponent c‖x_i − x_j‖², in place, clipped at 0
        e += sq[lo:hi, None]
        e += sq[None, :]
        np.minimum(e, 0.0, out=e)
        k = np.exp(e, out=e)
        out[lo:hi] = (k @ rhs + x[lo:hi] * (k.sum(axis=1)[:, None] / bw2)) / n
    return out


def svgd_direction(x: np.ndarray, s: np.ndarray, bw2: float, backend: str = "auto") -> np.ndarray:
    """SVGD direction φ_i = (1/N) Σ_j [k_ij s_j + (x_i − x_j) k_ij / b²], k_ij = k(x_i, x_j).

    x, s: (N, d); bw2 = b² > 0. backend: "numba" (fused loop), "numpy" (BLAS) or "auto"
    (numpy when d ≥ NUMPY_MIN_DIM). Returns (N, d).
    """
    x = np.ascontiguousarray(x, dtype=np.float64)
    s = np.ascontiguousarray(s, dtype=np.float64)
    if x.ndim != 2 or s.shape != x.shape:
        raise ValueError(f"x and s must both be (N, d); got {x.shape} and {s.shape}")
    if not bw2 > 0:
        raise ValueError(f"bandwidth b² must be positive, got {bw2}")
    if backend == "auto":
        backend = "numpy" if x.shape[1] >= NUMPY_MIN_DIM else "numba"
    if backend == "numba":
        return _kernels.svgd_direction(x, s, float(bw2))
    if backend == "numpy":
        return _svgd_direction_numpy(x, s, float(bw2))
    raise choice_error("SVGD backend", backend, ("auto", "numba", "numpy"))


@cache
def _median_indices(n: int, m: int) -> np.ndarray:
    return np.sort(np.random.default_rng(_MEDIAN_SEED).choice(n, size=m, replace=False))


def median_sq_distance(x: np.ndarray) -> float:
    """Median of the full N × N matrix D_ij = ‖x_i − x_j‖² (diagonal zeros, both orders), as
    ``np.median(D)`` of the original SVGD code. The sorted entries of D are N zeros followed by
    each pair distance twice, so the median is read off the pair distances by selection."""
    n = x.shape[0]
    if n < 2:
        return 0.0
    pairs = pdist(x, "sqeuclidean")
    total = n * n
    idx = [total // 2] if total % 2 else [total // 2 - 1, total // 2]
    ks = sorted({(i - n) // 2 for i in idx if i >= n})
    value = dict(zip(ks, order_statistics(pairs, ks), strict=True))
    return float(np.mean([0.0 if i < n else value[(i - n) // 2] for i in idx]))


def order_statistics(a: np.ndarray, ks: list[int]) -> list[float]:
    """The exact k-th smallest values of ``a`` (0-based, ks sorted), as ``np.partition`` gives.

    Selection over all of ``a`` costs about 30 ms for the 3.4 M pair distances of N = 2 627
    particles, more than the SVGD direction itself. So for large arrays: bracket the wanted
    ranks by quantiles of a fixed-seed subsample (±0.03 around them, about four standard errors),
    count the entries below the bracket, and select inside the bracket only. The values are
    exact whatever the subsample (a bracket that misses falls back to full selection); only the
    time depends on it.
    """
    if not ks:
        return []
    n = a.size
    if n > 200_000:
        sample = a[np.random.default_rng(_MEDIAN_SEED).integers(0, n, 8192)]
        q = np.array([ks[0], ks[-1]]) / (n - 1)
        lo, hi = np.quantile(sample, [max(q[0] - 0.03, 0.0), min(q[1] + 0.03, 1.0)])
        n_below = int(np.count_nonzero(a < lo))
        band = a[(a >= lo) & (a <= hi)]
        if n_below <= ks[0] and ks[-1] < n_below + band.size:
            local = [k - n_below for k in ks]
            part = np.partition(band, local)
            return [float(part[k]) for k in local]
    part = np.partition(a, ks)
    return [float(part[k]) for k in ks]


def median_bandwidth(x: np.ndarray, subsample: int = 0) -> float:
    """b² = median(D) / (2 log(N + 1)) with D the full N × N squared-distance matrix
    (:func:`median_sq_distance`); ``subsample`` = m with 0 < m < N takes the median over a fixed
    subsample of m particles (an opt-in approximation). N is the full particle count. Floored
    at 1e-12."""
    n = x.shape[0]
    pts = x if subsample <= 0 or subsample >= n else x[_median_indices(n, subsample)]
    med = median_sq_distance(pts) if len(pts) > 1 else 1.0
    return max(med / (2.0 * np.log(n + 1.0)), 1e-12)
