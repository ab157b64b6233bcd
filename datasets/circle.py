"""Uniform law on the unit circle S¹ ⊂ R² (``circle``) and on the upper half circle
(``semicircle``).

Dynamics: Brownian motion with generator the Laplace–Beltrami operator Δ = d²/dθ², i.e.
dθ = √2 dW. Its transition is exact: θ_τ = θ_0 + √(2τ) ξ. Spectrum of L = −Δ on S¹: λ = k²
with eigenfunctions √2 cos kθ, √2 sin kθ (each k ≥ 1 twice).

``semicircle``: the arc θ ∈ [0, π] with reflecting ends (Neumann). Its Brownian motion is the
circle's folded back onto [0, π] (θ ↦ θ mod 2π, then 2π − θ if θ > π), still exact; spectrum
λ = k², eigenfunctions √2 cos kθ (each once).

Initial particles (the paper's): uniform in angle on the small arc {y > 0.95}.
Task metrics: ``manifold_distance`` (mean Euclidean distance to the curve) and ``angle_tv``
(total variation between the θ-histogram, ``n_bins`` bins, and the uniform law).
"""

from __future__ import annotations

import numpy as np

from kswgd.core import exact
from kswgd.dataset import Dataset, Manifold, TrainingData
from kswgd.helpers import histogram_tv, kind_or_default
from kswgd.helpers import tangent_sphere as _tangent_circle
from kswgd.helpers import unit_rows as _unit
from kswgd.params import Interval


def _project_arc(x: np.ndarray) -> np.ndarray:
    """Nearest point of the closed upper half circle: x/|x| if y ≥ 0, else the nearer end."""
    out = _unit(x)
    below = out[:, 1] < 0
    out[below] = np.column_stack([np.sign(x[below, 0]) + (x[below, 0] == 0), np.zeros(below.sum())])
    return out


class Circle(Dataset):
    name = "circle"
    description = "uniform on the unit circle in R²; exact Brownian pairs"
    parameters = {"lag": 0.05, "init_y_min": 0.95, "n_bins": 36}
    constraints = {
        "lag": Interval(float, 0, None, closed="neither"),
        "init_y_min": Interval(float, -1, 1, closed="left"),
        "n_bins": Interval(int, 1, None),
    }
    data_kinds = ("trajectories", "samples")
    default_sizes = {"n_train": 500, "n_reference": 2000, "n_particles": 80}
    arc = 2 * np.pi  # angular length of the support, starting at θ = 0
    reflecting = False  # reflecting ends at θ = 0 and θ = arc (the semicircle)

    @property
    def dim(self) -> int:
        return 2

    @staticmethod
    def embed(theta: np.ndarray) -> np.ndarray:
        """θ ↦ (cos θ, sin θ), shape (N, 2)."""
        return np.column_stack([np.cos(theta), np.sin(theta)])

    @staticmethod
    def angle(x: np.ndarray) -> np.ndarray:
        """θ = atan2(y, x) in [0, 2π)."""
        return np.mod(np.arctan2(x[:, 1], x[:, 0]), 2 * np.pi)

    def _fold(self, theta: np.ndarray) -> np.ndarray:
        return theta

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.embed(rng.uniform(0.0, self.arc, n))

    def train(self, n: int, rng: np.random.Generator, kind: str | None = None) -> TrainingData:
        """x ~ π; y = the exact Brownian transition at lag τ: θ_y = θ_x + √(2τ) ξ (folded)."""
        kind = kind_or_default(kind, self.data_kinds, self.name)
        theta = rng.uniform(0.0, self.arc, n)
        if kind == "samples":
            return TrainingData(self.embed(theta))
        tau = self.params["lag"]
        theta_y = self._fold(theta + np.sqrt(2 * tau) * rng.standard_normal(n))
        return TrainingData(self.embed(theta), self.embed(theta_y), lag=tau)

    def initial(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Uniform in angle on the arc {y > init_y_min}."""
        a = np.arcsin(self.params["init_y_min"])
        return self.embed(rng.uniform(a, np.pi - a, n))

    def log_density(self, x: np.ndarray) -> np.ndarray:
        """log of the uniform density w.r.t. arc length, −log(length); x assumed on the curve."""
        return np.full(x.shape[0], -np.log(self.arc))

    def exact_spectrum(self, rank, *, degree=8, n_basis=0, grid=0, tol=1e-10):
        """Fourier modes √2 cos kθ, √2 sin kθ, λ = k² (each k ≥ 1 twice; the semicircle keeps
        the cosines); closed form, the resolution arguments are not used."""
        return exact.fourier_spectrum(rank, semicircle=self.reflecting)

    def eigenvalues(self, r: int) -> np.ndarray:
        """λ of :meth:`exact_spectrum`."""
        return self.exact_spectrum(r).eigenvalues

    @property
    def manifold(self) -> Manifold:
        return Manifold("circle", _unit, _tangent_circle, 1)

    def task_metrics(self):
        man = self.manifold
        edges = np.linspace(0.0, self.arc, self.params["n_bins"] + 1)
        probs = np.diff(edges) / self.arc

        def manifold_distance(particles: np.ndarray) -> float:
            """Mean Euclidean distance of the particles to the curve."""
            return float(man.distance(particles).mean())

        def angle_tv(particles: np.ndarray) -> float:
            """TV between the θ-histogram of the particles and the uniform law on the support."""
            return histogram_tv(self.angle(man.project(particles)), edges, probs)

        return {"manifold_distance": manifold_distance, "angle_tv": angle_tv}


class Semicircle(Circle):
    name = "semicircle"
    description = "uniform on the upper half circle; exact reflected Brownian pairs"
    arc = np.pi
    reflecting = True

    def _fold(self, theta: np.ndarray) -> np.ndarray:
        """Reflect at 0 and π: θ mod 2π, then 2π − θ above π."""
        t = np.mod(theta, 2 * np.pi)
        return np.where(t > np.pi, 2 * np.pi - t, t)

    @property
    def manifold(self) -> Manifold:
        return Manifold("semicircle", _project_arc, _tangent_circle, 1)
