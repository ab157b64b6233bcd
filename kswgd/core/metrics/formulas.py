"""The metric formulas: plain arrays in, one float out (docs/design.md, 'Metrics and floors').

Each function compares particles ``x`` (n, d) with a second sample or with what is known of π
and states its equation in its docstring. What a metric *is* (name, label, meaning, sign,
direction, needs) is its record in :mod:`kswgd.core.metrics`; the per-dataset evaluation, the
noise floors and the stored parameters are in :mod:`kswgd.core.metrics.context`.

Pure numpy / scipy / POT / Numba: nothing here imports the runner, the store or the CLI.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import ot
from scipy.spatial import cKDTree
from scipy.spatial.distance import cdist, pdist

from kswgd.core import _kernels
from kswgd.params import ConfigError

#: numItermax for ot.emd2 (POT's default of 1e5 stops early from n ≈ 3 000 with a wrong value).
NUM_ITER_MAX = 10_000_000
#: Default per-side size cap of the exact W2; above it a fixed-seed subsample is used.
W2_MAX_POINTS = 5000
#: Default number of sliced-W2 projections.
SW2_PROJECTIONS = 500
#: Sliced W2 projects at most this many numbers per side (n · L) at once.
SW2_CHUNK = 4_000_000
#: Reference points used by the median-heuristic bandwidth.
BANDWIDTH_POINTS = 1000
#: Multipliers of the reference bandwidth for ``mmd2_ms``.
MMD_SCALES = (0.5, 1.0, 2.0)
#: IMQ kernel exponent for KSD (Gorham & Mackey 2017 use β = −1/2).
KSD_BETA = -0.5
#: Sinkhorn regularisation, relative to the squared reference bandwidth.
SINKHORN_REG = 0.1
#: Per-side size cap of the Sinkhorn divergence (it costs several exact W2s per point).
SINKHORN_MAX_POINTS = 1000

#: paper_sw: the paper's number of directions, and the fixed seed of those directions.
PAPER_SW_PROJECTIONS = 128
PAPER_SW_SEED = 0
#: coverage: the paper's radius around a well centre.
COVERAGE_RADIUS = 0.4

# Keys mixed into the seeds of the metrics' own random streams (kept apart from each other).
_KEY_W2, _KEY_SW2, _KEY_BW, _KEY_FLOOR, _KEY_COPY, _KEY_SINK = 11, 12, 13, 14, 15, 16
_KEY_PAPER_BW = 17


class ConvergenceError(RuntimeError):
    """A metric's solver stopped before optimality (e.g. ot.emd2 hit numItermax)."""


# ---------------------------------------------------------------------------------------------
# Input handling
# ---------------------------------------------------------------------------------------------


def as_points(x, name: str = "samples", dim: int | None = None) -> np.ndarray:
    """Validate and convert to a C-contiguous float64 (n, d) array with n ≥ 2 finite rows.

    Raises ConfigError (one line) on a wrong shape or dimension, or NaN/inf entries.
    """
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{name}: not a numeric array ({err})") from None
    if arr.ndim == 1 and dim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ConfigError(f"{name}: expected an (N, d) array, got shape {arr.shape}")
    if dim is not None and arr.shape[1] != dim:
        raise ConfigError(f"{name}: expected dimension d = {dim}, got shape {arr.shape}")
    if arr.shape[0] < 2:
        raise ConfigError(f"{name}: need at least 2 points, got {arr.shape[0]}")
    bad = ~np.isfinite(arr)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        raise ConfigError(f"{name}: {rows.size} row(s) with NaN or inf entries (first: {rows[0]})")
    return np.ascontiguousarray(arr)


def _canonical_order(x: np.ndarray) -> np.ndarray:
    """Rows sorted lexicographically, so that seeded subsamples do not depend on input order."""
    return x[np.lexsort(x.T[::-1])]


def subsample(x: np.ndarray, max_points: int, seed: int, key: int = 0) -> np.ndarray:
    """x itself if n ≤ max_points, else a fixed-seed subsample of max_points rows.

    Rows are first put in lexicographic order, so the subsample is a function of the point set
    (not of the order of the rows).
    """
    n = x.shape[0]
    if n <= max_points:
        return x
    rng = np.random.default_rng([seed, key])
    idx = np.sort(rng.choice(n, size=max_points, replace=False))
    return np.ascontiguousarray(_canonical_order(x)[idx])


def _sq_cost(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Squared Euclidean cost matrix (cdist for d ≤ 3, POT's GEMM form above), clipped at 0."""
    if x.shape[1] <= 3:
        return cdist(x, y, "sqeuclidean")
    return np.maximum(ot.dist(x, y, metric="sqeuclidean"), 0.0)


def _bandwidths(bandwidth: float | Sequence[float]) -> np.ndarray:
    s = np.atleast_1d(np.asarray(bandwidth, dtype=np.float64))
    if s.ndim != 1 or s.size == 0 or not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise ConfigError(f"bandwidth must be positive and finite, got {bandwidth!r}")
    return s


_PAIR_BLOCK = 1 << 22   # kernel entries per row block of a pair sum (32 MB)


def gauss_pair_sum(a: np.ndarray, b: np.ndarray, bandwidths: np.ndarray) -> float:
    """Σ_i Σ_j Σ_s exp(−‖a_i − b_j‖² / (2 s²)) over every pair (the diagonal included when a
    is b, each such term exactly 1) and every bandwidth s.

    Row blocks of the Gaussian matrix (``_kernels.gauss_features``: threaded, numpy's SIMD exp),
    each summed by numpy in a fixed order, so the value does not depend on the thread count;
    O(block) memory. Faster than a fused pair loop, whose exp is a scalar call."""
    rows = max(1, _PAIR_BLOCK // len(b))
    buf = np.empty((min(rows, len(a)), len(b)))
    total = 0.0
    for s in bandwidths:
        for i in range(0, len(a), rows):
            blk = a[i : i + rows]
            total += float(_kernels.gauss_features(blk, b, s, out=buf[: len(blk)]).sum())
    return total


# ---------------------------------------------------------------------------------------------
# The metric functions (plain arrays in, float out)
# ---------------------------------------------------------------------------------------------


def w2(
    x,
    y,
    *,
    max_points: int = W2_MAX_POINTS,
    seed: int = 0,
    _num_iter_max: int = NUM_ITER_MAX,
) -> float:
    """Exact 2-Wasserstein distance between the uniform empirical laws of x and y:

        W2(μ_x, μ_y) = ( min_{γ ∈ Π(1/n, 1/m)} Σ_ij γ_ij ‖x_i − y_j‖² )^{1/2}

    solved by POT's network simplex (``ot.emd2``, numItermax = 1e7). If the solver stops before
    optimality (POT only warns) a :class:`ConvergenceError` is raised. Each side above
    ``max_points`` is replaced by a fixed-seed subsample (see :func:`subsample`). Returns W2, not
    its square. Cost: O(n² ) memory (≈ 40 n² bytes), 5–7 s at n = 5 000 on 2 cores.
    """
    x = as_points(x, "x")
    y = as_points(y, "y", dim=x.shape[1])
    x = subsample(x, max_points, seed, _KEY_W2)
    y = subsample(y, max_points, seed, _KEY_W2 + 100)
    cost = _sq_cost(x, y)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value, log = ot.emd2([], [], cost, numItermax=_num_iter_max, log=True)
    messages = [str(w.message) for w in caught if "numItermax" in str(w.message)]
    if log.get("result_code", 1) != 1 or messages:
        reason = log.get("warning") or (messages[0] if messages else "solver did not converge")
        raise ConvergenceError(
            f"w2: ot.emd2 did not reach optimality ({reason}; n={x.shape[0]}, m={y.shape[0]}, "
            f"numItermax={_num_iter_max})"
        )
    return math.sqrt(max(float(value), 0.0))


def _projections(d: int, n_projections: int, seed: int) -> np.ndarray:
    """n_projections directions uniform on the sphere S^{d−1}, shape (d, L), from our own seeded
    generator (POT's ``seed=`` reseeds numpy's *global* generator, so we never use it)."""
    rng = np.random.default_rng([seed, _KEY_SW2])
    p = rng.standard_normal((d, n_projections))
    return p / np.linalg.norm(p, axis=0, keepdims=True)


def _quantile_grid(n: int, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Common refinement of the quantile steps of two uniform empirical laws of sizes n, m.

    On (B_{k−1}, B_k]/(n m), with B the sorted union of {a m} and {b n}, the quantile functions
    are the order statistics x_(ix_k) and y_(iy_k). Returns (ix, iy, dt) with dt = interval
    lengths (summing to 1).
    """
    b = np.union1d(np.arange(n + 1, dtype=np.int64) * m, np.arange(m + 1, dtype=np.int64) * n)
    lo = b[:-1]
    return lo // m, lo // n, np.diff(b) / (float(n) * m)


def sw2(
    x,
    y,
    *,
    n_projections: int = SW2_PROJECTIONS,
    seed: int = 0,
    chunk: int = SW2_CHUNK,
) -> float:
    """Sliced 2-Wasserstein distance with L = n_projections fixed seeded directions θ_l:

        SW2(μ_x, μ_y) = ( (1/L) Σ_l W2²(θ_l·μ_x, θ_l·μ_y) )^{1/2}
        W2²(θ·μ_x, θ·μ_y) = ∫_0^1 (F_x^{-1}(t) − F_y^{-1}(t))² dt   (sorted projections)

    The value of ``ot.sliced_wasserstein_distance(x, y, projections=θ)`` (checked in the tests),
    computed here with numpy's sort on the exact common quantile grid of the two uniform laws:
    POT's general weighted 1-D solver took 28 s for n = 10⁵, L = 500, this takes about 2 s.
    Projections come in chunks of at most ``chunk`` projected values per side. Returns SW2.
    """
    x = as_points(x, "x")
    y = as_points(y, "y", dim=x.shape[1])
    n, m = x.shape[0], y.shape[0]
    proj = _projections(x.shape[1], n_projections, seed)
    xt, yt = np.ascontiguousarray(x.T), np.ascontiguousarray(y.T)
    grid = None if n == m else _quantile_grid(n, m)
    step = max(1, chunk // max(n, m))
    total = 0.0
    for start in range(0, n_projections, step):
        pt = np.ascontiguousarray(proj[:, start : start + step].T)  # (l, d)
        xs = pt @ xt  # (l, n), C-contiguous: one projection per row
        ys = pt @ yt
        xs.sort(axis=1)
        ys.sort(axis=1)
        if grid is None:
            xs -= ys
            total += float(np.sum(xs * xs)) / n
        else:
            ix, iy, dt = grid
            diff = xs[:, ix] - ys[:, iy]
            total += float(np.sum((diff * diff) @ dt))
    return math.sqrt(max(total / n_projections, 0.0))


def sw2_pot(x, y, *, n_projections: int = SW2_PROJECTIONS, seed: int = 0) -> float:
    """Reference implementation of :func:`sw2` by ``ot.sliced_wasserstein_distance`` with the
    same projections (slow and memory-hungry for large n: ≈ 200 bytes per projected value)."""
    x = as_points(x, "x")
    y = as_points(y, "y", dim=x.shape[1])
    proj = _projections(x.shape[1], n_projections, seed)
    return float(ot.sliced_wasserstein_distance(x, y, projections=proj, p=2))


def mmd_bandwidth(reference, *, max_points: int = BANDWIDTH_POINTS, seed: int = 0) -> float:
    """Median heuristic from the reference set only:

        s = median_{i < j} ‖r_i − r_j‖

    over a fixed-seed subsample of at most ``max_points`` reference points (order-independent,
    see :func:`subsample`); used as the Gaussian kernel exp(−‖a − b‖² / (2 s²)) of :func:`mmd2`.
    """
    r = subsample(as_points(reference, "reference"), max_points, seed, _KEY_BW)
    s = float(np.median(pdist(r)))
    if not s > 0:
        raise ConfigError("reference set: median pairwise distance is 0 (repeated points?)")
    return s


def mmd2(x, y, *, bandwidth: float | Sequence[float]) -> float:
    """Unbiased MMD² (U-statistic) with the Gaussian kernel, summed over the bandwidths s_b:

        k(a, b) = Σ_b exp(−‖a − b‖² / (2 s_b²))
        MMD²_u = 1/(n(n−1)) Σ_{i≠j} k(x_i, x_j) + 1/(m(m−1)) Σ_{i≠j} k(y_i, y_j)
                 − 2/(n m) Σ_{i,j} k(x_i, y_j)

    Pair sums by :func:`gauss_pair_sum` (the i ≠ j sums are the full sums minus the diagonal's
    n terms of 1 per bandwidth), O(n + m) memory beyond one block. Can be slightly negative
    (unbiased). With several bandwidths it is the sum of the single-scale values.
    """
    x = as_points(x, "x")
    y = as_points(y, "y", dim=x.shape[1])
    s = _bandwidths(bandwidth)
    n, m = x.shape[0], y.shape[0]
    kxx = (gauss_pair_sum(x, x, s) - n * len(s)) / (n * (n - 1))
    kyy = (gauss_pair_sum(y, y, s) - m * len(s)) / (m * (m - 1))
    kxy = gauss_pair_sum(x, y, s) / (n * m)
    return float(kxx + kyy - 2.0 * kxy)


def energy(x, y) -> float:
    """Energy distance (U-statistic form; the MMD² of the distance kernel):

        E = 2/(n m) Σ_{i,j} ‖x_i − y_j‖ − 1/(n(n−1)) Σ_{i≠j} ‖x_i − x_j‖
            − 1/(m(m−1)) Σ_{i≠j} ‖y_i − y_j‖

    Fused Numba pair sums, O(n + m) memory. Zero in expectation for equal laws.
    """
    x = as_points(x, "x")
    y = as_points(y, "y", dim=x.shape[1])
    n, m = x.shape[0], y.shape[0]
    dxx = 2.0 * np.sum(_kernels.dist_self_rowsums(x)) / (n * (n - 1))
    dyy = 2.0 * np.sum(_kernels.dist_self_rowsums(y)) / (m * (m - 1))
    dxy = np.sum(_kernels.dist_cross_rowsums(x, y)) / (n * m)
    return float(2.0 * dxy - dxx - dyy)


def ksd(
    x,
    score: Callable[[np.ndarray], np.ndarray],
    *,
    c: float = 1.0,
    beta: float = KSD_BETA,
    statistic: str = "u",
) -> float:
    """Squared kernel Stein discrepancy with the IMQ base kernel k(a, b) = (c² + ‖a − b‖²)^β,
    β ∈ (−1, 0), and the Langevin Stein kernel u (see ``_kernels.imq_stein_self_rowsums``):

        KSD²_u = 1/(n(n−1)) Σ_{i≠j} u(x_i, x_j)                      (statistic "u", unbiased)
        KSD²_V = 1/n² Σ_{i,j} u(x_i, x_j)                              (statistic "v")
               = ((n−1)/n) KSD²_u + 1/n² Σ_i (‖s(x_i)‖² c^{2β} − 2βd c^{2β−2})

    with s = ∇log π = ``score``. Needs only the score of π (no reference set). KSD²_u ≈ 0 (either
    sign) for iid draws of π; KSD²_V = ‖(1/n) Σ_i u(x_i, ·)‖² in the Stein kernel's RKHS is never
    negative, which is what a particle set (not iid: interacting particles can push KSD²_u far
    below 0) must be judged by when the smallest value is chosen.
    """
    x = as_points(x, "x")
    if not (-1.0 < beta < 0.0) or not c > 0:
        raise ConfigError(f"ksd: need c > 0 and -1 < beta < 0, got c={c!r}, beta={beta!r}")
    if statistic not in ("u", "v"):
        raise ConfigError(f"ksd: statistic must be 'u' or 'v', got {statistic!r}")
    s = as_points(score(x), "score(x)", dim=x.shape[1])
    if s.shape[0] != x.shape[0]:
        raise ConfigError(f"ksd: score returned {s.shape[0]} rows for {x.shape[0]} points")
    n, d = x.shape
    off = 2.0 * np.sum(_kernels.imq_stein_self_rowsums(x, s, float(c * c), float(beta)))
    if statistic == "u":
        return float(off / (n * (n - 1)))
    c2 = float(c * c)
    diagonal = np.sum(s * s) * c2 ** beta - 2.0 * beta * d * n * c2 ** (beta - 1.0)
    return float((off + diagonal) / (n * n))


def sinkhorn(
    x, y, *, reg: float, max_points: int = SINKHORN_MAX_POINTS, seed: int = 0
) -> float:
    """Debiased Sinkhorn divergence on the squared Euclidean cost (POT):

        S_ε(μ, ν) = OT_ε(μ, ν) − ½ OT_ε(μ, μ) − ½ OT_ε(ν, ν)

    (``ot.bregman.empirical_sinkhorn_divergence``, plain Sinkhorn iterations, stopThr 1e-6).
    A secondary metric: slower than exact W2 at low bias (docs/performance.md). Each side above
    ``max_points`` is a fixed-seed subsample, as in :func:`w2`.
    """
    x = subsample(as_points(x, "x"), max_points, seed, _KEY_SINK)
    y = subsample(as_points(y, "y", dim=x.shape[1]), max_points, seed, _KEY_SINK + 100)
    value = ot.bregman.empirical_sinkhorn_divergence(  # POT warns if it stops unconverged
        x, y, reg, metric="sqeuclidean", method="sinkhorn", numIterMax=2000, stopThr=1e-6
    )
    return float(value)


def copy_ratio(x, train_x, fresh) -> float:
    """Copying score: mean distance from each particle to its nearest training point, divided
    by the same mean for ``fresh`` independent draws of π (same size as x):

        copy = mean_i min_m ‖x_i − t_m‖ / mean_i min_m ‖f_i − t_m‖

    Below 1 means the particles sit closer to the training set than draws of π do (copying).
    Uses scipy's cKDTree.
    """
    x = as_points(x, "x")
    t = as_points(train_x, "training set", dim=x.shape[1])
    f = as_points(fresh, "fresh draws", dim=x.shape[1])
    tree = cKDTree(t)
    dx = tree.query(x, k=1)[0].mean()
    df = tree.query(f, k=1)[0].mean()
    return float(dx / df) if df > 0 else math.inf


# ---------------------------------------------------------------------------------------------
# The paper's metric definitions (reported beside ours, never used for ranking)
# ---------------------------------------------------------------------------------------------


def pooled_median_bandwidth(x, y, *, max_points: int = 2 * BANDWIDTH_POINTS, seed: int = 0
                            ) -> float:
    """The paper's bandwidth rule: the median heuristic on the evaluated pooled cloud,

        s = median_{i < j} ‖z_i − z_j‖,   z = x ∪ y  (particles and reference together)

    over a fixed-seed, order-independent subsample of at most ``max_points`` pooled points (see
    :func:`subsample`). Flaw: s depends on the particles being evaluated, so two methods are
    scored with different kernels, and a cloud that spreads out widens its own kernel.
    """
    z = np.concatenate([as_points(x, "x"), as_points(y, "y", dim=np.shape(x)[1])])
    s = float(np.median(pdist(subsample(z, max_points, seed, _KEY_PAPER_BW))))
    if not s > 0:
        raise ConfigError("paper_mmd: median pairwise distance of the pooled cloud is 0")
    return s


def paper_mmd(x, y, *, bandwidth: float | None = None, seed: int = 0) -> float:
    """The paper's MMD: the biased V-statistic with the Gaussian kernel, as a square root,

        k(a, b) = exp(−‖a − b‖² / (2 s²)),   s = :func:`pooled_median_bandwidth` (x, y)
        MMD_b² = 1/n² Σ_{i,j} k(x_i, x_j) + 1/m² Σ_{i,j} k(y_i, y_j)
                 − 2/(n m) Σ_{i,j} k(x_i, y_j)

    and returns MMD_b (all pairs, diagonals included; MMD_b² clipped at 0). Flaws, which is
    why it only stands beside our ``mmd2``: the diagonal terms add a positive bias of order
    1/n + 1/m, so exact draws of π do not score 0 and the value depends on the particle count;
    the bandwidth depends on the evaluated cloud (see :func:`pooled_median_bandwidth`).
    ``bandwidth`` fixes s instead. Pair sums by :func:`gauss_pair_sum`.
    """
    x = as_points(x, "x")
    y = as_points(y, "y", dim=x.shape[1])
    s = _bandwidths(pooled_median_bandwidth(x, y, seed=seed) if bandwidth is None else bandwidth)
    n, m = x.shape[0], y.shape[0]
    kxx = gauss_pair_sum(x, x, s) / (n * n)
    kyy = gauss_pair_sum(y, y, s) / (m * m)
    kxy = gauss_pair_sum(x, y, s) / (n * m)
    return math.sqrt(max(float(kxx + kyy - 2.0 * kxy), 0.0))


def paper_sw(x, y) -> float:
    """The paper's sliced W2: :func:`sw2` with L = ``PAPER_SW_PROJECTIONS`` (128) directions from
    the fixed seed ``PAPER_SW_SEED``, the same directions for every method and run. Flaw: 128
    random directions are a Monte Carlo estimate whose projection noise grows with the dimension
    (our ``sw2`` uses 500), and a fixed set of directions can miss a discrepancy orthogonal to
    all of them."""
    return sw2(x, y, n_projections=PAPER_SW_PROJECTIONS, seed=PAPER_SW_SEED)


def coverage(x, centres, *, radius: float = COVERAGE_RADIUS) -> float:
    """The paper's coverage: the percentage of particles within ``radius`` (0.4) of any well
    centre c_k,

        coverage = 100 · (1/n) Σ_i 1[ min_k ‖x_i − c_k‖ ≤ radius ]

    Flaw: it is one-sided and rewards over-concentration. π itself puts only a fraction of its
    mass in those discs (0.3808 on the quadruple well, so exact draws score about 38 %), and
    particles piled onto the centres score 100 %. Our task metric ``well_mass_error`` is the
    two-sided version, |share − π-mass|. Higher is better only in the paper's reading.
    """
    x = as_points(x, "x")
    c = np.asarray(centres, dtype=np.float64)
    if c.ndim != 2 or c.shape[1] != x.shape[1] or c.shape[0] == 0:
        raise ConfigError(f"coverage: centres must be a (K, {x.shape[1]}) array, got {c.shape}")
    d2 = np.min(cdist(x, c, "sqeuclidean"), axis=1)
    return 100.0 * float(np.mean(d2 <= radius * radius))




# ---------------------------------------------------------------------------------------------
# Moments and mode weights (meaningful in high dimension, where distances between clouds are
# dominated by their own sampling noise)
# ---------------------------------------------------------------------------------------------


def mean_error(x, mean) -> float:
    """Euclidean error of the particles' mean,

        mean_error = ‖ (1/n) Σ_i x_i − E_π x ‖

    with ``mean`` = E_π x, shape (d,). For exact draws of π its expectation is about
    sqrt(tr Σ_π / n) (the noise floor measures it)."""
    x = as_points(x, "x")
    m = np.asarray(mean, dtype=np.float64)
    if m.shape != (x.shape[1],) or not np.all(np.isfinite(m)):
        raise ConfigError(f"mean_error: the mean must be a finite ({x.shape[1]},) vector, "
                          f"got shape {m.shape}")
    return float(np.linalg.norm(x.mean(axis=0) - m))


def cov_error(x, cov) -> float:
    """Relative Frobenius error of the particles' covariance,

        cov_error = ‖ Ĉ − Σ_π ‖_F / ‖ Σ_π ‖_F,   Ĉ = 1/(n−1) Σ_i (x_i − x̄)(x_i − x̄)ᵀ

    with ``cov`` = Σ_π, shape (d, d) and not zero."""
    x = as_points(x, "x")
    d = x.shape[1]
    c = np.asarray(cov, dtype=np.float64)
    if c.shape != (d, d) or not np.all(np.isfinite(c)):
        raise ConfigError(f"cov_error: the covariance must be a finite ({d}, {d}) matrix, "
                          f"got shape {c.shape}")
    scale = float(np.linalg.norm(c))
    if not scale > 0:
        raise ConfigError("cov_error: the target covariance is zero")
    emp = np.atleast_2d(np.cov(x, rowvar=False, ddof=1))
    return float(np.linalg.norm(emp - c)) / scale


def mode_weight_error(x, modes, weights) -> float:
    """Total-variation distance between the particles' shares of the modes' nearest-point
    cells and the modes' weights w_k (Σ w_k = 1),

        mode_weight_error = ½ Σ_k | (1/n) #{i : argmin_j ‖x_i − m_j‖ = k} − w_k |

    in [0, 1]: 0 when every mode holds its share, 1 − w_k when all particles sit in mode k.
    Exact draws score the cells' leakage (mass of a component beyond its cell) plus noise."""
    x = as_points(x, "x")
    m = np.asarray(modes, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if m.ndim != 2 or m.shape[1] != x.shape[1] or m.shape[0] == 0:
        raise ConfigError(f"mode_weight_error: modes must be a (K, {x.shape[1]}) array, "
                          f"got {m.shape}")
    if w.shape != (m.shape[0],) or np.any(w < 0) or abs(w.sum() - 1.0) > 1e-9:
        raise ConfigError(f"mode_weight_error: weights must be {m.shape[0]} non-negative "
                          "numbers summing to 1")
    nearest = np.argmin(cdist(x, m, "sqeuclidean"), axis=1)
    share = np.bincount(nearest, minlength=m.shape[0]) / x.shape[0]
    return 0.5 * float(np.abs(share - w).sum())
