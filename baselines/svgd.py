"""Stein variational gradient descent (Liu & Wang 2016), docs/design.md, 'Baselines'.

    φ(x_i) = (1/N) Σ_j [k(x_j, x_i) s(x_j) + ∇_{x_j} k(x_j, x_i)],   x_i ← x_i + step · opt(φ)_i

RBF kernel k(x, y) = exp(−‖x − y‖² / (2 b²)), with the median heuristic of the original SVGD
code recomputed at every step: b² = med / (2 log(N + 1)), med the median of the full N × N
matrix of squared distances, diagonal zeros and both orders of each pair included (so, among
the pair distances, the quantile (N − 2)/(2(N − 1)) rather than the median over pairs i < j,
which is 4 % larger at N = 50). It is found by selection (``np.partition``) on the N(N − 1)/2
pair distances, without sorting or an N × N matrix.

``median_subsample`` = m > 0 is an opt-in: the same median over a fixed subsample of m particles
(chosen once per N with a fixed seed, independent of the run's rng). Its error is not small
where it matters: seen on a mixture at N = 2 000, a 1 000-particle subsample moved particles by
up to 4 after 50 AdaGrad steps; on a standard Gaussian at N = 5 000, b² differs by ≈ 0.3 %.

The direction is computed without an (N, N, d) tensor: a fused Numba loop for d < 10 and a
row-blocked numpy/BLAS form for d ≥ 10 (docs/performance.md: even at d = 10, BLAS 1.4–2× faster at
d = 50); both compute the same sum, and ``backend`` forces either.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from scipy.spatial.distance import pdist

from kswgd.core import _kernels
from kswgd.dataset import move
from kswgd.params import Choice, ConfigError, Interval, choice_error
from kswgd.sampler import Sampler

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


def kde_score(x: np.ndarray, data: np.ndarray, sigma: float) -> np.ndarray:
    """Score of the Gaussian KDE p̂(x) = mean_m exp(−‖x − y_m‖² / (2σ²)) of ``data`` (M, d):

        ŝ(x) = ∇ log p̂(x) = Σ_m w_m(x) (y_m − x) / σ²,   w(x) = softmax_m(−‖x − y_m‖² / (2σ²))

    x: (N, d). Returns (N, d). Rows are done in blocks of ≈ 1M kernel entries.
    """
    out = np.empty_like(x, dtype=np.float64)
    half_sq = 0.5 * np.einsum("ij,ij->i", data, data)
    block = max(64, _BLOCK_ELEMENTS // len(data))
    for lo in range(0, len(x), block):
        hi = min(lo + block, len(x))
        xb = x[lo:hi]
        e = (xb @ data.T - half_sq[None, :]) / sigma**2  # −‖x − y‖²/(2σ²) up to a row constant
        e -= e.max(axis=1, keepdims=True)
        w = np.exp(e, out=e)
        w /= w.sum(axis=1, keepdims=True)
        out[lo:hi] = (w @ data - xb) / sigma**2
    return out


def scott_bandwidth(data: np.ndarray) -> float:
    """Scott's rule σ = M^{−1/(d+4)} · (mean coordinate standard deviation of the data)."""
    m, d = data.shape
    return float(np.mean(np.std(data, axis=0)) * m ** (-1.0 / (d + 4)))


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


class SVGD(Sampler):
    """SVGD with the median-heuristic RBF kernel and the exact score of the dataset.

    Parameters: ``step`` (step size), ``optimizer`` ∈ {sgd, adagrad, adam}: sgd is
    x ← x + step φ; adagrad is the original code's (G ← α G + (1 − α) φ², α = 0.9, G₀ = φ₀²;
    x ← x + step φ / (1e-6 + √G)); adam uses β = (0.9, 0.999), ε = 1e-8 with bias correction.
    ``score`` = "exact" (the dataset's score; uses = score) or "kde" (score of a Gaussian KDE
    of the training samples, bandwidth ``kde_bandwidth``, 0 = Scott's rule; uses = samples).
    ``backend`` ∈ {auto, numba, numpy}; ``median_subsample`` as in the module docstring.
    """

    name = "svgd"
    description = "Stein variational gradient descent, RBF kernel with the median heuristic"
    parameters = {
        "step": 0.1,
        "optimizer": "sgd",
        "score": "exact",
        "kde_bandwidth": 0.0,
        "backend": "auto",
        "median_subsample": 0,
    }
    constraints = {
        "step": Interval(float, 0, None, closed="neither"),
        "optimizer": Choice("sgd", "adagrad", "adam"),
        "score": Choice("exact", "kde"),
        "kde_bandwidth": Interval(float, 0, None),
        "backend": Choice("auto", "numba", "numpy"),
        "median_subsample": Interval(int, 0, None),
    }
    uses = ("score",)
    data_kind = None

    def __init__(self, **params):
        super().__init__(**params)
        if self.params["score"] == "kde":
            self.uses = ("samples",)
            self.data_kind = "samples"

    def setup(self, dataset, train, rng):
        super().setup(dataset, train, rng)
        self._kde_sigma = None
        if self.params["score"] == "kde":
            if train is None:
                raise ConfigError("svgd with score='kde' needs training samples")
            data = np.ascontiguousarray(train.x, dtype=np.float64)
            sigma = self.params["kde_bandwidth"] or scott_bandwidth(data)
            self._kde_sigma = float(sigma)
            self._score = lambda x: kde_score(x, data, sigma)
        elif dataset.score is None:
            raise ConfigError(
                f"svgd needs the score of dataset {dataset.name!r}, which has none; "
                "use score='kde' to learn it from samples"
            )
        else:
            self._score = dataset.score
        self._state: dict[str, np.ndarray | int] = {}
        self._bw2 = np.nan
        self._phi_norm = np.nan

    def _update(self, phi: np.ndarray) -> np.ndarray:
        """The optimizer's ascent direction from φ (state kept per particle and coordinate)."""
        opt, st = self.params["optimizer"], self._state
        if opt == "sgd":
            return phi
        if st.get("shape") != phi.shape:  # fresh start (or the particle count changed)
            st.clear()
            st["shape"] = phi.shape
            st["t"] = 0
        st["t"] += 1
        if opt == "adagrad":
            g2 = phi * phi
            st["g"] = g2 if st["t"] == 1 else 0.9 * st["g"] + 0.1 * g2
            return phi / (1e-6 + np.sqrt(st["g"]))
        m = st["m"] = 0.9 * st.get("m", 0.0) + 0.1 * phi
        v = st["v"] = 0.999 * st.get("v", 0.0) + 0.001 * phi * phi
        t = st["t"]
        return (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)

    def step(self, x, rng):
        x = np.ascontiguousarray(x, dtype=np.float64)
        self._bw2 = median_bandwidth(x, self.params["median_subsample"])
        phi = svgd_direction(x, self._score(x), self._bw2, self.params["backend"])
        self._phi_norm = float(np.sqrt(np.mean(np.sum(phi * phi, axis=1))))
        return move(x, self.params["step"] * self._update(phi), self.manifold)

    def diagnostics(self):
        """b² of the last step and the RMS norm of φ (→ 0 at a fixed point)."""
        return {"bandwidth2": float(self._bw2), "phi_rms": self._phi_norm}

    def fit_info(self):
        return {
            "score": self.params["score"],
            "kde_bandwidth": self._kde_sigma,
            "median_rule": "median of the full NxN |x_i-x_j|^2 matrix / (2 log(N+1))",
            "median_subsample": self.params["median_subsample"],
            "numpy_min_dim": NUMPY_MIN_DIM,
        }
