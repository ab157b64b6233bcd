"""Dictionaries ψ: R^d → R^F with analytic Jacobians (docs/design.md, 'The estimators').

Every dictionary contains the constant function as column 0. A dictionary is configured by
plain parameters, then ``fit(x, rng)`` fixes what depends on the data (centring and scaling,
landmarks, random frequencies). After fitting:

- ``dict(x)`` returns Ψ, shape (N, F);
- ``partial(x, a)`` returns ∂Ψ/∂x_a, shape (N, F);
- ``grad_dot(x, beta, psi=None)`` returns Σ_j β_j ∇ψ_j(x_i), shape (N, d), in O(N F d) time
  without an (N, F, d) tensor;
- ``transport(x, xi, lam)`` returns the spectral transport of φ = Ψ Ξ (the hot loop).
"""

from __future__ import annotations

import itertools

import numpy as np

from kswgd.core import _kernels
from kswgd.core.bandwidths import landmark_bandwidth, mean_std, median_distance
from kswgd.core.data import as_points
from kswgd.params import choice_error


class Dictionary:
    """Base class: see the module docstring for the contract."""

    name = ""

    def fit(self, x: np.ndarray, rng: np.random.Generator | None = None) -> Dictionary:
        raise NotImplementedError

    @property
    def n_features(self) -> int:
        raise NotImplementedError

    def __call__(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def partial(self, x: np.ndarray, a: int) -> np.ndarray:
        raise NotImplementedError

    def grad_dot(self, x: np.ndarray, beta: np.ndarray, psi: np.ndarray | None = None):
        """Σ_j β_j ∇ψ_j(x_i), (N, d), one partial matrix at a time."""
        x = as_points(x)
        return np.stack([self.partial(x, a) @ beta for a in range(x.shape[1])], axis=1)

    def transport(self, x: np.ndarray, xi: np.ndarray, lam: np.ndarray):
        """The rank-r transport of φ_k = Ψ ξ_k (docs/design.md, 'The transport'):

            c = Ξᵀ mean_i ψ(x_i),   β = Ξ (c / λ),   v_i = Σ_j β_j ∇ψ_j(x_i)

        from one N × F feature matrix. xi: (F, r), lam: (r,). Returns v (N, d) and c (r,)."""
        psi = self(x)
        c = psi.mean(axis=0) @ xi
        beta = xi @ (c / lam)
        return self.grad_dot(x, beta, psi=psi), c

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        """Jψ as an (N, F, d) tensor: for small inputs (tests, Dirichlet-form blocks) only."""
        x = as_points(x)
        return np.stack([self.partial(x, a) for a in range(x.shape[1])], axis=2)

    def info(self) -> dict:
        return {"dictionary": self.name, "n_features": self.n_features}


class Poly(Dictionary):
    """Tensor polynomials of total degree ≤ p in the standardised coordinates u = (x − m)/s.

    basis="hermite": ψ_α(x) = Π_a He_{α_a}(u_a) (probabilists' Hermite, He_n' = n He_{n−1});
    basis="monomial": ψ_α(x) = Π_a u_a^{α_a}. α runs over multi-indices with |α| ≤ p, α = 0 first
    (the constant). F = C(p + d, d). m and s are the data's mean and std (``standardize=False``
    keeps m = 0, s = 1).
    """

    name = "poly"

    def __init__(self, degree: int = 6, basis: str = "hermite", standardize: bool = True):
        if basis not in ("hermite", "monomial"):
            raise choice_error("poly basis", basis, ["hermite", "monomial"])
        self.degree, self.basis, self.standardize = int(degree), basis, standardize

    def fit(self, x, rng=None):
        x = as_points(x)
        d = x.shape[1]
        self.mean_ = x.mean(axis=0) if self.standardize else np.zeros(d)
        self.scale_ = x.std(axis=0) if self.standardize else np.ones(d)
        self.scale_[self.scale_ == 0] = 1.0
        alphas = [a for s in range(self.degree + 1) for a in _compositions(s, d)]
        self.alphas_ = np.array(alphas, dtype=np.int64).reshape(len(alphas), d)
        return self

    @property
    def n_features(self):
        return len(self.alphas_)

    def _univariate(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Values P_n(u) and derivatives P_n'(u) for n = 0..p; shapes (p + 1, N, d)."""
        p = self.degree
        val = np.empty((p + 1,) + u.shape)
        der = np.zeros_like(val)
        val[0] = 1.0
        if p >= 1:
            val[1] = u
            der[1] = 1.0
        for n in range(1, p):
            if self.basis == "hermite":
                val[n + 1] = u * val[n] - n * val[n - 1]
            else:
                val[n + 1] = u * val[n]
        for n in range(2, p + 1):
            der[n] = n * val[n - 1]
        return val, der

    def _tables(self, x):
        """P_n(u_ia) and P_n'(u_ia), (p + 1, N, d), for the standardised points."""
        return self._univariate((as_points(x) - self.mean_) / self.scale_)

    def _product(self, val, der, a: int | None) -> np.ndarray:
        """Π_b T_b[α_jb, i, b] as an (N, F) array, T_b = der for b = a, else val; accumulated one
        coordinate at a time (never an (F, N, d) tensor)."""
        out = np.ones((val.shape[1], self.n_features))
        for b in range(val.shape[2]):
            out *= (der if b == a else val)[self.alphas_[:, b], :, b].T
        return out

    def __call__(self, x):
        val, der = self._tables(x)
        return self._product(val, der, None)

    def partial(self, x, a):
        val, der = self._tables(x)
        return self._product(val, der, a) / self.scale_[a]

    def grad_dot(self, x, beta, psi=None):
        """Σ_j β_j ∇ψ_j(x_i), (N, d): the univariate tables once, one (N, F) product a
        coordinate."""
        val, der = self._tables(x)
        return np.stack([self._product(val, der, a) @ beta / self.scale_[a]
                         for a in range(val.shape[2])], axis=1)

    def info(self):
        return {**super().info(), "degree": self.degree, "basis": self.basis}


def _compositions(total: int, d: int):
    """Multi-indices α ∈ N^d with |α| = total, in lexicographic order (largest first)."""
    for cut in itertools.combinations(range(total + d - 1), d - 1):
        bounds = (-1,) + cut + (total + d - 1,)
        yield tuple(bounds[k + 1] - bounds[k] - 1 for k in range(d))


RBF_RULES = ("silverman", "median")


class RBF(Dictionary):
    """The constant plus F − 1 Gaussian bumps ψ_j(x) = exp(−‖x − z_j‖²/(2σ²)) on landmarks z_j.

    landmarks="random" (default): a seeded random subset of the data; "kmeans": centres of
    seeded k-means (k-means++ seeding, then Lloyd iterations), which cover the data in
    proportion to its mass; "farthest": greedy farthest-point sampling from a seeded start (even
    coverage of the support, tails included); "kmeans++": the k-means++ seeding alone (D²
    sampling, which favours outliers); "all": every data point (F − 1 = M).
    Why random stays the default (2-D OU, 4 000 pairs, edmd, seeds 0 and 1, rule bandwidth):
    random landmarks gave no localised mode at F = 200 and 400 (λ̂_1..λ̂_5 within 4–13 %),
    while k-means and farthest-point landmarks, which also cover the sparse tails, put bumps
    where a handful of samples sit and gave localised tail modes (λ̂ as low as 0.01, ℓ ≈ 1) at
    F = 400 and on seed 1 at F = 200; they need a larger ``tol`` (1e-4) or a wider bandwidth.
    bandwidth σ = 0 selects the rule σ = s̄ · (4/(d + 2))^{1/(d+4)} · (F − 1)^{−1/(d+4)}
    (Silverman's rule applied to the landmarks; s̄ = mean coordinate std of the data;
    :func:`kswgd.core.bandwidths.landmark_bandwidth`).
    """

    name = "rbf"

    def __init__(self, n_features: int = 400, bandwidth: float = 0.0, landmarks: str = "random",
                 bandwidth_rule: str = "silverman", bandwidth_factor: float = 1.0):
        if landmarks not in LANDMARKS:
            raise choice_error("landmark rule", landmarks, LANDMARKS)
        if bandwidth_rule not in RBF_RULES:
            raise choice_error("rbf bandwidth rule", bandwidth_rule, RBF_RULES)
        self.n_bumps, self.bandwidth, self.landmarks = int(n_features), float(bandwidth), landmarks
        self.bandwidth_rule, self.bandwidth_factor = bandwidth_rule, float(bandwidth_factor)

    def fit(self, x, rng=None):
        x = as_points(x)
        rng = np.random.default_rng(0) if rng is None else rng
        m = len(x)
        k = min(self.n_bumps, m)
        if self.landmarks == "all" or k == m:
            self.centres_ = x.copy()
        elif self.landmarks == "random":
            self.centres_ = x[np.sort(rng.choice(m, size=k, replace=False))]
        elif self.landmarks == "kmeans":
            self.centres_ = kmeans_lloyd(x, k, rng)
        elif self.landmarks == "farthest":
            self.centres_ = farthest_points(x, k, rng)
        else:
            self.centres_ = kmeans_pp(x, k, rng)
        f = len(self.centres_)
        if self.bandwidth > 0:
            self.sigma_ = self.bandwidth
        elif self.bandwidth_rule == "median":
            self.sigma_ = self.bandwidth_factor * median_distance(x)
        else:
            self.sigma_ = landmark_bandwidth(x, f)
        return self

    @property
    def n_features(self):
        return len(self.centres_) + 1

    def __call__(self, x):
        x = as_points(x)
        out = np.empty((len(x), len(self.centres_) + 1))
        out[:, 0] = 1.0
        _kernels.gauss_features(x, self.centres_, self.sigma_, out=out[:, 1:])
        return out

    def partial(self, x, a):
        x = as_points(x)
        bumps = _kernels.gauss_features(x, self.centres_, self.sigma_)
        diff = x[:, a : a + 1] - self.centres_[None, :, a]
        return np.hstack([np.zeros((len(x), 1)), -diff * bumps / self.sigma_**2])

    def grad_dot(self, x, beta, psi=None):
        x = as_points(x)
        bumps = psi[:, 1:] if psi is not None else _kernels.gauss_features(
            x, self.centres_, self.sigma_
        )
        return self._bump_grad_dot(x, beta, bumps)

    def _bump_grad_dot(self, x, beta, bumps):
        """Σ_j β_j ∇ψ_j(x_i) = −(x_i Σ_j β_j ψ_ij − Σ_j β_j ψ_ij z_j)/σ² from the bumps ψ_ij
        (j ≥ 1, any row stride): one product with d + 1 columns."""
        b = np.asarray(beta[1:], dtype=np.float64)
        m = bumps @ np.column_stack([b, b[:, None] * self.centres_])
        return -(x * m[:, :1] - m[:, 1:]) / self.sigma_**2

    def transport(self, x, xi, lam):
        """:meth:`Dictionary.transport` with the bumps as one contiguous N × (F − 1) matrix (the
        constant column's mean is 1 and its gradient 0): numpy's exp into a contiguous array is
        about 1.3× faster than into the strided view ``Ψ[:, 1:]``."""
        x = as_points(x)
        n, f = len(x), len(self.centres_)
        buf = self.__dict__.get("_buffer")
        if buf is None or buf.size < n * f:     # reused from step to step: a fresh N × F array
            buf = self.__dict__["_buffer"] = np.empty(n * f)   # costs its page faults each time
        bumps = _kernels.gauss_features(x, self.centres_, self.sigma_,
                                        out=buf[: n * f].reshape(n, f))
        mean = np.empty(bumps.shape[1] + 1)
        mean[0] = 1.0
        mean[1:] = bumps.mean(axis=0)
        c = mean @ xi
        beta = xi @ (c / lam)
        return self._bump_grad_dot(x, beta, bumps), c

    def info(self):
        rule = ("given" if self.bandwidth > 0 else self.bandwidth_rule if self.bandwidth_rule
                == "silverman" else f"{self.bandwidth_factor:g} x median distance")
        return {**super().info(), "bandwidth": self.sigma_, "bandwidth_rule": rule,
                "landmarks": self.landmarks}

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_buffer", None)             # the transport's scratch matrix
        return state


class KernelSections(RBF):
    """The constant plus the Gaussian kernel sections at every training point (kernel EDMD):

        ψ_j(x) = k(x, x_j) = exp(−‖x − x_j‖²/(2ε²)),   j = 1..n

    ``normalize="diffusion-map"`` uses the α = ½ density-normalised kernel instead (the
    paper's variant of kernel EDMD), with q(x) = (1/n) Σ_l k(x, x_l) and q_j = q(x_j):

        ψ_j(x) = k(x, x_j) / √(q(x) q_j),
        Σ_j β_j ∇ψ_j(x) = q(x)^{−1/2} ∇S(x) − ½ q(x)^{−3/2} S(x) ∇q(x),
        S = Σ_j k(·, x_j) β_j q_j^{−1/2}

    where ∇S and ∇q are the Gaussian-bump sums of ``_kernels.gauss_grad_dot``: a step still
    costs one N × n kernel matrix and a few mat-vecs, O(N n d), never an (N, n, d) tensor.
    """

    name = "kernel"

    def __init__(self, bandwidth: float, normalize: str = "none"):
        if normalize not in ("none", "diffusion-map"):
            raise choice_error("kernel normalisation", normalize, ["none", "diffusion-map"])
        if not bandwidth > 0:
            raise ValueError(f"the kernel bandwidth must be positive, got {bandwidth}")
        super().__init__(n_features=0, bandwidth=bandwidth, landmarks="all")
        self.normalize = normalize

    def fit(self, x, rng=None):
        self.centres_ = as_points(x).copy()
        self.sigma_ = self.bandwidth
        if self.normalize == "diffusion-map":
            self.qsqrt_ = np.sqrt(_kernels.gauss_features(self.centres_, self.centres_,
                                                          self.sigma_).mean(axis=1))
        return self

    def _density(self, kmat):
        return np.maximum(kmat.mean(axis=1), np.finfo(float).tiny)   # q(x), never 0

    def __call__(self, x):
        if self.normalize == "none":
            return super().__call__(x)
        x = as_points(x)
        kmat = _kernels.gauss_features(x, self.centres_, self.sigma_)
        kmat /= np.sqrt(self._density(kmat))[:, None]
        kmat /= self.qsqrt_[None, :]
        return np.hstack([np.ones((len(x), 1)), kmat])

    def partial(self, x, a):
        if self.normalize == "none":
            return super().partial(x, a)
        x = as_points(x)
        kmat = _kernels.gauss_features(x, self.centres_, self.sigma_)
        q = self._density(kmat)
        diff = x[:, a : a + 1] - self.centres_[None, :, a]
        dk = -diff * kmat / self.sigma_**2                       # ∂k/∂x_a
        dq = dk.mean(axis=1)
        out = (dk / np.sqrt(q)[:, None] - 0.5 * kmat * (dq / q**1.5)[:, None]) / self.qsqrt_
        return np.hstack([np.zeros((len(x), 1)), out])

    def transport(self, x, xi, lam):
        if self.normalize == "none":
            return super().transport(x, xi, lam)
        return Dictionary.transport(self, x, xi, lam)

    def grad_dot(self, x, beta, psi=None):
        if self.normalize == "none":
            return super().grad_dot(x, beta, psi)
        x = as_points(x)
        kmat = _kernels.gauss_features(x, self.centres_, self.sigma_)
        q = self._density(kmat)
        n = len(self.centres_)
        b = np.ascontiguousarray(beta[1:] / self.qsqrt_, dtype=np.float64)
        s = kmat @ b
        grad_s = _kernels.gauss_grad_dot(x, self.centres_, kmat, b, self.sigma_)
        grad_q = _kernels.gauss_grad_dot(x, self.centres_, kmat, np.full(n, 1.0 / n),
                                         self.sigma_)
        return grad_s / np.sqrt(q)[:, None] - 0.5 * (s / q**1.5)[:, None] * grad_q

    def info(self):
        return {**super().info(), "kernel": "gaussian", "normalize": self.normalize}


LANDMARKS = ("kmeans", "farthest", "random", "kmeans++", "all")


def kmeans_lloyd(x: np.ndarray, k: int, rng: np.random.Generator, max_iter: int = 50,
                 max_points: int = 50_000) -> np.ndarray:
    """Centres of k-means: k-means++ seeding, then Lloyd iterations (scikit-learn's KMeans, one
    initialisation, seeded from ``rng``), minimising Σ_m min_j ‖x_m − z_j‖². Above
    ``max_points`` samples, fitted on a seeded subsample of that size."""
    from sklearn.cluster import KMeans

    if len(x) > max_points:
        x = x[np.sort(rng.choice(len(x), size=max_points, replace=False))]
    seed = int(rng.integers(2**31 - 1))
    km = KMeans(n_clusters=k, init="k-means++", n_init=1, max_iter=max_iter, random_state=seed)
    return np.ascontiguousarray(km.fit(x).cluster_centers_, dtype=np.float64)


def farthest_points(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Greedy farthest-point sampling: a seeded first point, then each next one the sample
    farthest from those chosen, z_{j+1} = argmax_m min_{i ≤ j} ‖x_m − z_i‖."""
    idx = [int(rng.integers(len(x)))]
    d2 = np.sum((x - x[idx[0]]) ** 2, axis=1)
    for _ in range(1, k):
        j = int(np.argmax(d2))
        idx.append(j)
        d2 = np.minimum(d2, np.sum((x - x[j]) ** 2, axis=1))
    return x[np.array(idx)]


def kmeans_pp(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding (Arthur & Vassilvitskii 2007): each new centre drawn ∝ D(x)²."""
    m = len(x)
    idx = [int(rng.integers(m))]
    d2 = np.sum((x - x[idx[0]]) ** 2, axis=1)
    for _ in range(1, k):
        total = d2.sum()
        j = int(rng.choice(m, p=d2 / total)) if total > 0 else int(rng.integers(m))
        idx.append(j)
        d2 = np.minimum(d2, np.sum((x - x[j]) ** 2, axis=1))
    return x[np.array(idx)]


class RFF(Dictionary):
    """The constant plus D random Fourier features ψ_j(x) = √2 cos(ω_jᵀ x + b_j) (Rahimi & Recht),
    ω_j ~ N(0, σ⁻² I), b_j ~ U[0, 2π), drawn from the ``fit`` generator (seeded). They
    approximate the Gaussian kernel of bandwidth σ; σ = 0 selects σ = s̄ (the mean coordinate
    std of the data). ∂ψ_j/∂x_a = −√2 sin(ω_jᵀ x + b_j) ω_ja.
    """

    name = "rff"

    def __init__(self, n_features: int = 400, bandwidth: float = 0.0):
        self.n_freq, self.bandwidth = int(n_features), float(bandwidth)

    def fit(self, x, rng=None):
        x = as_points(x)
        rng = np.random.default_rng(0) if rng is None else rng
        d = x.shape[1]
        self.sigma_ = self.bandwidth if self.bandwidth > 0 else mean_std(x)
        self.omega_ = rng.standard_normal((self.n_freq, d)) / self.sigma_
        self.phase_ = rng.uniform(0.0, 2 * np.pi, self.n_freq)
        return self

    @property
    def n_features(self):
        return self.n_freq + 1

    def _arg(self, x):
        return as_points(x) @ self.omega_.T + self.phase_

    def __call__(self, x):
        arg = self._arg(x)
        return np.hstack([np.ones((len(arg), 1)), np.sqrt(2.0) * np.cos(arg)])

    def partial(self, x, a):
        arg = self._arg(x)
        return np.hstack([np.zeros((len(arg), 1)),
                          -np.sqrt(2.0) * np.sin(arg) * self.omega_[:, a]])

    def grad_dot(self, x, beta, psi=None):
        sin = np.sin(self._arg(x))
        return -np.sqrt(2.0) * (sin * beta[1:]) @ self.omega_

    def info(self):
        return {**super().info(), "bandwidth": self.sigma_}


class Cosine(Dictionary):
    """Tensor Neumann cosines on a box [a, b] ⊂ R^d (the constant is k = 0):

        ψ_k(x) = Π_a cos(k_a π (x_a − a_a) / (b_a − a_a)),   k ∈ {0..K−1}^d,   F = K^d

    A smooth basis complete in H¹ of the box, used by the ``oracle`` Galerkin on a grid; outside
    the box each coordinate is clipped to it (zero normal derivative beyond the faces). The box
    is given (``lower``, ``upper``) or, by ``fit``, the data's range widened by ``margin`` × range
    on each side.
    """

    name = "cosine"

    def __init__(self, n_features: int = 40, lower=None, upper=None, margin: float = 0.1):
        self.per_axis, self.margin = int(n_features), float(margin)
        self.lower = None if lower is None else np.atleast_1d(np.asarray(lower, dtype=float))
        self.upper = None if upper is None else np.atleast_1d(np.asarray(upper, dtype=float))

    def fit(self, x, rng=None):
        x = as_points(x)
        d = x.shape[1]
        if self.lower is not None and self.upper is not None:
            lo, hi = self.lower, self.upper
        else:
            lo, hi = x.min(axis=0), x.max(axis=0)
            pad = self.margin * (hi - lo)
            lo, hi = lo - pad, hi + pad
        self.lower_ = np.broadcast_to(lo, (d,)).astype(float)
        self.upper_ = np.broadcast_to(hi, (d,)).astype(float)
        grids = np.meshgrid(*[np.arange(self.per_axis)] * d, indexing="ij")
        k = np.stack([g.ravel() for g in grids], axis=1)
        self.freqs_ = k[np.argsort(k.sum(axis=1), kind="stable")]
        return self

    @property
    def n_features(self):
        return len(self.freqs_)

    def _factors(self, x):
        w = np.pi / (self.upper_ - self.lower_)                     # (d,)
        # outside the box the basis is continued as constant along the exited axis (x clipped
        # to the box): its normal derivative is then 0, as on the box's faces (Neumann), so a
        # point that left the box is not pushed further out by the mirrored cosines
        arg = (np.clip(as_points(x), self.lower_, self.upper_) - self.lower_) * w   # (N, d)
        ks = np.arange(self.per_axis)
        c = np.cos(arg[:, :, None] * ks)                            # (N, d, K)
        s = -np.sin(arg[:, :, None] * ks) * ks * w[None, :, None]   # d/dx of each factor
        return c, s

    def __call__(self, x):
        c, _ = self._factors(x)
        out = np.ones((c.shape[0], self.n_features))
        for a in range(c.shape[1]):
            out *= c[:, a, self.freqs_[:, a]]
        return out

    def partial(self, x, a):
        c, s = self._factors(x)
        out = s[:, a, self.freqs_[:, a]].copy()
        for b in range(c.shape[1]):
            if b != a:
                out *= c[:, b, self.freqs_[:, b]]
        return out

    def info(self):
        return {**super().info(), "per_axis": self.per_axis,
                "box": [self.lower_.tolist(), self.upper_.tolist()]}


DICTIONARIES = {"poly": Poly, "rbf": RBF, "rff": RFF, "cosine": Cosine}


def make_dictionary(name: str, *, n_features: int = 400, bandwidth: float = 0.0,
                    degree: int = 6, landmarks: str = "random", bandwidth_rule: str = "silverman",
                    bandwidth_factor: float = 1.0, **extra) -> Dictionary:
    """Build an (unfitted) dictionary by name from the flat parameters samplers carry
    (``bandwidth_rule`` and ``bandwidth_factor`` are the rbf's, ignored by the others)."""
    if name == "poly":
        return Poly(degree=degree, **extra)
    if name == "rbf":
        return RBF(n_features=n_features, bandwidth=bandwidth, landmarks=landmarks,
                   bandwidth_rule=bandwidth_rule, bandwidth_factor=bandwidth_factor)
    if name == "cosine":
        return Cosine(n_features=n_features, **extra)
    if name in DICTIONARIES:
        return DICTIONARIES[name](n_features=n_features, bandwidth=bandwidth, **extra)
    raise choice_error("dictionary", name, DICTIONARIES)


__all__ = ["Dictionary", "Poly", "RBF", "KernelSections", "kmeans_lloyd", "farthest_points",
           "RFF", "Cosine", "DICTIONARIES", "make_dictionary",
           "kmeans_pp"]
