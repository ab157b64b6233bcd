"""Uniform law on the unit sphere S² ⊂ R³.

Reference draws: normalised standard Gaussians (exact). Trajectory pairs: x ~ π, then Brownian
motion with generator Δ_{S²} over lag τ, approximated by ``n_sub`` geodesic-random-walk steps
x ← (x + √(2δ) P_x ξ) / |x + √(2δ) P_x ξ|, δ = τ / n_sub, P_x = I − x xᵀ. The normalisation
supplies the Itô drift −2x δ of dX = √2 P_X dW − 2X dt to first order. The step kernel is
rotation-invariant and symmetric in (x, y), so π stays exactly invariant; only the transition
law carries an O(δ) error.

Spectrum of L = −Δ_{S²}: λ = l(l + 1) with multiplicity 2l + 1 (coordinates x_i are the l = 1
eigenfunctions, so E[x·y] = e^{−2τ} for an exact pair).
Initial particles: uniform on the polar cap {z > init_z_min}.
Task metrics: ``manifold_distance`` and ``z_tv`` (TV of the z-histogram against the uniform law
on [−1, 1], Archimedes' theorem).
"""

from __future__ import annotations

import numpy as np

from kswgd.core import exact
from kswgd.dataset import Dataset, Manifold, TrainingData
from kswgd.helpers import histogram_tv, kind_or_default
from kswgd.helpers import tangent_sphere as _tangent_circle
from kswgd.helpers import unit_rows as _unit
from kswgd.params import Interval


class Sphere(Dataset):
    name = "sphere"
    description = "uniform on the unit sphere S² in R³; geodesic random-walk pairs"
    parameters = {"lag": 0.05, "n_sub": 10, "init_z_min": 0.95, "n_bins": 20}
    constraints = {
        "lag": Interval(float, 0, None, closed="neither"),
        "n_sub": Interval(int, 1, None),
        "init_z_min": Interval(float, -1, 1, closed="left"),
        "n_bins": Interval(int, 1, None),
    }
    data_kinds = ("trajectories", "samples")
    default_sizes = {"n_train": 1000, "n_reference": 2000, "n_particles": 500}

    @property
    def dim(self) -> int:
        return 3

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return _unit(rng.standard_normal((n, 3)))

    def train(self, n: int, rng: np.random.Generator, kind: str | None = None) -> TrainingData:
        kind = kind_or_default(kind, self.data_kinds, self.name)
        x = self.draw(n, rng)
        if kind == "samples":
            return TrainingData(x)
        tau, n_sub = self.params["lag"], self.params["n_sub"]
        y = brownian_sphere(x, tau, n_sub, rng)
        return TrainingData(x, y, lag=tau, info={"n_sub": n_sub})

    def initial(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Uniform on the cap z > z_min: z ~ U(z_min, 1), azimuth uniform (Archimedes)."""
        z = rng.uniform(self.params["init_z_min"], 1.0, n)
        a = rng.uniform(0.0, 2 * np.pi, n)
        s = np.sqrt(1.0 - z * z)
        return np.column_stack([s * np.cos(a), s * np.sin(a), z])

    def log_density(self, x: np.ndarray) -> np.ndarray:
        """Uniform w.r.t. surface area: −log 4π."""
        return np.full(x.shape[0], -np.log(4 * np.pi))

    def exact_spectrum(self, rank, *, degree=8, n_basis=0, grid=0, tol=1e-10):
        """Spherical harmonics from the exact polynomial Galerkin of total degree ≤ ``degree``
        (:func:`kswgd.core.exact.sphere_spectrum`): λ = l(l + 1) to rounding."""
        return exact.sphere_spectrum(rank, degree, self.manifold, tol)

    def eigenvalues(self, r: int) -> np.ndarray:
        """λ = l(l + 1), multiplicity 2l + 1, l ≥ 1 (closed form; :meth:`exact_spectrum`
        reproduces it to rounding)."""
        vals: list[float] = []
        l = 1
        while len(vals) < r:
            vals += [float(l * (l + 1))] * (2 * l + 1)
            l += 1
        return np.array(vals[:r])

    @property
    def manifold(self) -> Manifold:
        return Manifold("sphere", _unit, _tangent_circle, 2)

    def task_metrics(self):
        man = self.manifold
        nb = self.params["n_bins"]
        edges = np.linspace(-1.0, 1.0, nb + 1)
        probs = np.full(nb, 1.0 / nb)

        def manifold_distance(particles: np.ndarray) -> float:
            """Mean Euclidean distance of the particles to S²."""
            return float(man.distance(particles).mean())

        def z_tv(particles: np.ndarray) -> float:
            """TV between the histogram of z (after projection) and U(−1, 1)."""
            return histogram_tv(man.project(particles)[:, 2], edges, probs)

        return {"manifold_distance": manifold_distance, "z_tv": z_tv}


def brownian_sphere(x: np.ndarray, tau: float, n_sub: int, rng: np.random.Generator) -> np.ndarray:
    """Geodesic random walk on the unit sphere: n_sub steps of x ← normalise(x + √(2δ) P_x ξ)."""
    delta = tau / n_sub
    y = np.array(x, dtype=float)
    for _ in range(n_sub):
        y = _unit(y + np.sqrt(2 * delta) * _tangent_circle(y, rng.standard_normal(y.shape)))
    return y
