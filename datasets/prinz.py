"""Prinz's 1-D four-well potential, π ∝ exp(−V/T):
V(x) = 4 (x⁸ + 0.8 e^{−80 x²} + 0.2 e^{−80 (x − 0.5)²} + 0.5 e^{−40 (x + 0.5)²}).

Minima near −0.739, −0.224, 0.269, 0.673; barriers (local maxima) near −0.502, 0.000, 0.502.
Trajectories: Euler–Maruyama for dX = −V'(X) dt + √(2T) dW (|V''| reaches ≈ 512 near 0, so the
sub-step lag / n_sub = 2e-4 keeps δ|V''| ≈ 0.1), ``n_chains`` chains started from exact draws.
Reference draws: inverse CDF tabulated on [−1.6, 1.6] with 200 001 points (outside, the density
is below e^{−300}); exact up to the O(h²) grid error of the trapezoid CDF.
Eigenvalues λ_1..λ_20: a conservative finite-difference solve of L f = −π⁻¹ (π f')' on
[−1.6, 1.6] with 8 000 cells and reflecting ends (``kswgd.core.exact.fd_generator_spectrum``,
error O(h²)); the eigenfunctions (``oracle`` LAWGD) come from the default grid Galerkin of
``Dataset``.
Initial particles: uniform on the leftmost basin [−1, −0.6].
Task metric ``basin_tv``: TV between the particles' shares of the four basins (cut at the
three local maxima of V) and their exact π-masses (quadrature).
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
from scipy import integrate, optimize

from kswgd.core.exact import fd_generator_spectrum
from kswgd.helpers import LangevinDataset, basin_tv, inverse_cdf_1d
from kswgd.params import ConfigError, Interval

_LO, _HI = -1.6, 1.6
_N_EIGENVALUES = 20   # the finite-difference table of eigenvalues


def prinz_potential(x: np.ndarray) -> np.ndarray:
    """V(x) elementwise."""
    return 4.0 * (x**8 + 0.8 * np.exp(-80 * x * x) + 0.2 * np.exp(-80 * (x - 0.5) ** 2)
                  + 0.5 * np.exp(-40 * (x + 0.5) ** 2))


def prinz_grad(x: np.ndarray) -> np.ndarray:
    """V'(x) elementwise."""
    return 4.0 * (8 * x**7 - 128 * x * np.exp(-80 * x * x)
                  - 32 * (x - 0.5) * np.exp(-80 * (x - 0.5) ** 2)
                  - 40 * (x + 0.5) * np.exp(-40 * (x + 0.5) ** 2))


class Prinz(LangevinDataset):
    name = "prinz"
    description = "Prinz 1-D four-well potential; Euler–Maruyama chains, inverse-CDF reference"
    parameters = {"temperature": 1.0, "lag": 0.01, "n_sub": 50, "burn_in": 200, "n_chains": 20,
                  "init_lo": -1.0, "init_hi": -0.6}
    constraints = {
        "temperature": Interval(float, 0, None, closed="neither"),
        "lag": Interval(float, 0, None, closed="neither"),
        "n_sub": Interval(int, 1, None),
        "burn_in": Interval(int, 0, None),
        "n_chains": Interval(int, 1, None),
        "init_lo": Interval(float, None, None),
        "init_hi": Interval(float, None, None),
    }
    reference_note = "inverse CDF on a 200 001-point grid over [-1.6, 1.6] (exact to ~1e-10)"
    default_sizes = {"n_train": 5000, "n_reference": 2000, "n_particles": 500}

    @property
    def dim(self) -> int:
        return 1

    @property
    def beta(self) -> float:
        return 1.0 / self.params["temperature"]

    def potential(self, x: np.ndarray) -> np.ndarray:
        return prinz_potential(x[:, 0])

    def grad_potential(self, x: np.ndarray) -> np.ndarray:
        return prinz_grad(x)

    def log_z(self) -> float:
        val, _ = integrate.quad(lambda t: np.exp(-self.beta * prinz_potential(t)), _LO, _HI,
                                points=[-0.74, -0.5, -0.22, 0.0, 0.27, 0.5, 0.67], limit=200,
                                epsabs=1e-13, epsrel=1e-12)
        return float(np.log(val))

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return inverse_cdf_1d(lambda t: -self.beta * prinz_potential(t), _LO, _HI, n, rng)[:, None]

    @cached_property
    def _fd_eigenvalues(self) -> np.ndarray:
        return fd_generator_spectrum(self.log_density, _LO, _HI, 8000, _N_EIGENVALUES)

    def eigenvalues(self, r: int) -> np.ndarray:
        """λ_1..λ_r (r ≤ 20) by finite differences on 8 000 cells of [−1.6, 1.6] (module
        docstring). One solve of fixed size serves every r: the bisection's result moves by
        ~1e-9 relative with the number of eigenvalues asked for, and eigenvalues(3) must be
        eigenvalues(8)[:3]."""
        if r > _N_EIGENVALUES:
            raise ConfigError(f"prinz: eigenvalues are tabulated for r <= {_N_EIGENVALUES}, "
                              f"not {r}")
        return self._fd_eigenvalues[:r].copy()

    def initial(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(self.params["init_lo"], self.params["init_hi"], (n, 1))

    @cached_property
    def barriers(self) -> np.ndarray:
        """The three local maxima of V (basin boundaries), by bounded minimisation of −V."""
        return np.array([optimize.minimize_scalar(lambda t: -prinz_potential(t), bounds=b,
                                                  method="bounded", options={"xatol": 1e-10}).x
                         for b in ((-0.65, -0.35), (-0.1, 0.1), (0.35, 0.65))])

    @cached_property
    def basin_masses(self) -> np.ndarray:
        """Exact π-mass of the four basins, by adaptive quadrature."""
        cuts = np.concatenate([[_LO], self.barriers, [_HI]])
        f = lambda t: np.exp(-self.beta * prinz_potential(t))
        m = np.array([integrate.quad(f, a, b, limit=200, epsabs=1e-13)[0]
                      for a, b in zip(cuts[:-1], cuts[1:], strict=True)])
        return m / m.sum()

    def task_metrics(self):
        def basin_tv_metric(particles: np.ndarray) -> float:
            """TV between the particles' basin shares and the exact basin masses."""
            labels = np.searchsorted(self.barriers, particles[:, 0])
            return basin_tv(labels, self.basin_masses)

        return {"basin_tv": basin_tv_metric}
