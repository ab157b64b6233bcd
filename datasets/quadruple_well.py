"""Quadruple well V(x, y) = (x² − 1)² + (y² − 1)², π ∝ exp(−V) on R² (the paper's setting).

Training trajectories: overdamped Langevin dX = −∇V dt + √2 dW by Euler–Maruyama; a saved
point every Δt = ``lag`` (0.01), made of ``n_sub`` (10) sub-steps of 1e-3; ``burn_in`` (1 000)
saved points discarded; start x₀ ~ 0.5 N(0, I). Pairs are consecutive saved points, so the lag
is Δt. By default there is ONE chain (the paper's), whose n + 1 saved points give n pairs;
``n_chains`` > 1 splits the pairs over independent chains (each with its own burn-in).
Note that Euler–Maruyama at this step has a small O(δ) bias in its invariant law.

Reference draws are exact: π factorises into two independent 1-D laws ∝ exp(−(x² − 1)²),
each drawn by rejection from N(0, 1) with the bound
max_x [−(x² − 1)² + x²/2] = 0.5625 (reached at x² = 5/4).

Initial particles: uniform on [−2, 2]² minus the discs of radius 0.4 around the wells (±1, ±1).
Task metric ``well_mass_error``: |share of particles within 0.4 of a well centre − π-mass of
those discs|, the mass computed by quadrature (≈ 0.3808).
"""

from __future__ import annotations

from functools import cache

import numpy as np
from scipy import integrate

from kswgd.dataset import Dataset, TrainingData
from kswgd.helpers import (
    chain_lengths,
    fraction_near,
    kind_or_default,
    langevin_em,
    pairs_from_chains,
    rejection_gaussian_1d,
    uniform_box_minus_discs,
)
from kswgd.params import Interval

WELLS = np.array([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])
WELL_RADIUS = 0.4
_LOG_BOUND = 0.5625  # max_x −(x²−1)² + x²/2


def _log_f1(x: np.ndarray) -> np.ndarray:
    """1-D factor log f(x) = −(x² − 1)²."""
    return -((x * x - 1.0) ** 2)


@cache
def log_z1() -> float:
    """log ∫_R exp(−(x² − 1)²) dx (adaptive quadrature); log Z of π is twice this."""
    val, _ = integrate.quad(lambda t: np.exp(-((t * t - 1.0) ** 2)), -np.inf, np.inf,
                            epsabs=1e-13, epsrel=1e-12)
    return float(np.log(val))


@cache
def exact_well_mass(radius: float = WELL_RADIUS, n_rho: int = 64, n_theta: int = 256) -> float:
    """π-mass of the four discs of ``radius`` around (±1, ±1), by quadrature.

    By symmetry it is 4 ∫_0^radius ∫_0^{2π} f(1 + ρ cos t) f(1 + ρ sin t) ρ dt dρ / Z₁², with
    Gauss–Legendre nodes in ρ and the (spectrally accurate) periodic trapezoid rule in t.
    """
    nodes, weights = np.polynomial.legendre.leggauss(n_rho)
    rho = 0.5 * radius * (nodes + 1.0)
    w_rho = 0.5 * radius * weights
    t = np.linspace(0.0, 2 * np.pi, n_theta, endpoint=False)
    x = 1.0 + rho[:, None] * np.cos(t)[None, :]
    y = 1.0 + rho[:, None] * np.sin(t)[None, :]
    integrand = np.exp(_log_f1(x) + _log_f1(y)) * rho[:, None]
    inner = integrand.sum(axis=1) * (2 * np.pi / n_theta)
    return float(4.0 * np.dot(w_rho, inner) * np.exp(-2.0 * log_z1()))


class QuadrupleWell(Dataset):
    name = "quadruple_well"
    description = "V=(x²-1)²+(y²-1)²; Euler–Maruyama trajectory (paper), exact reference draws"
    parameters = {
        "lag": 0.01,
        "n_sub": 10,
        "burn_in": 1000,
        "n_chains": 1,
        "x0_scale": 0.5,
        "init_half_width": 2.0,
        "init_radius": WELL_RADIUS,
    }
    constraints = {
        "lag": Interval(float, 0, None, closed="neither"),
        "n_sub": Interval(int, 1, None),
        "burn_in": Interval(int, 0, None),
        "n_chains": Interval(int, 1, None),
        "x0_scale": Interval(float, 0, None, closed="neither"),
        "init_half_width": Interval(float, 0, None, closed="neither"),
        "init_radius": Interval(float, 0, None, closed="neither"),
    }
    data_kinds = ("trajectories", "samples")
    reference_note = "exact: product of two 1-D rejection samplers for exp(-(x^2-1)^2)"
    default_sizes = {"n_train": 9999, "n_reference": 2000, "n_particles": 2627}
    well_centres = WELLS

    @property
    def dim(self) -> int:
        return 2

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Exact independent draws of π, shape (n, 2)."""
        flat = rejection_gaussian_1d(_log_f1, _LOG_BOUND, 2 * n, rng)
        return flat.reshape(n, 2)

    def train(self, n: int, rng: np.random.Generator, kind: str | None = None) -> TrainingData:
        """n trajectory pairs at lag Δt (see the module docstring), or n exact static draws."""
        kind = kind_or_default(kind, self.data_kinds, self.name)
        if kind == "samples":
            return TrainingData(self.draw(n, rng))
        p = self.params
        x0 = p["x0_scale"] * rng.standard_normal((p["n_chains"], 2))
        traj = langevin_em(self.grad_potential, x0, p["lag"], p["n_sub"],
                           chain_lengths(n, p["n_chains"]), p["burn_in"], rng)
        return pairs_from_chains(traj, n, p["lag"], n_chains=p["n_chains"])

    def initial(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Uniform on [−a, a]² minus the discs of radius ``init_radius`` around the wells."""
        p = self.params
        return uniform_box_minus_discs(n, rng, p["init_half_width"], WELLS, p["init_radius"])

    def potential(self, x: np.ndarray) -> np.ndarray:
        """V(x) = Σ_i (x_i² − 1)², shape (N,)."""
        return np.sum((x * x - 1.0) ** 2, axis=1)

    def grad_potential(self, x: np.ndarray) -> np.ndarray:
        """∇V(x) = 4 x (x² − 1) componentwise, shape (N, 2)."""
        return 4.0 * x * (x * x - 1.0)

    def score(self, x: np.ndarray) -> np.ndarray:
        """∇ log π = −∇V."""
        return -self.grad_potential(x)

    def log_density(self, x: np.ndarray) -> np.ndarray:
        """Normalised log π = −V − 2 log Z₁."""
        return -self.potential(x) - 2.0 * log_z1()

    def task_metrics(self):
        mass = exact_well_mass()

        def well_mass_error(particles: np.ndarray) -> float:
            """|share within 0.4 of (±1, ±1) − exact π-mass of those discs| (two-sided)."""
            return abs(fraction_near(particles, WELLS, WELL_RADIUS) - mass)

        return {"well_mass_error": well_mass_error}
