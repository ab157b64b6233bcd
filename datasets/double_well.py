"""Symmetric 1-D double well V(x) = h (x² − 1)², π ∝ exp(−V) (barrier height h at x = 0).

Trajectories: overdamped Langevin dX = −V'(X) dt + √2 dW by Euler–Maruyama, a saved point every
``lag`` made of ``n_sub`` sub-steps, ``burn_in`` saved points dropped, ``n_chains`` chains
(default one long chain as in the quadruple well) started from exact draws of π.
Reference draws: exact rejection from N(0, 1), using
max_x [−h (x² − 1)² + x²/2] = 1/2 + 1/(16 h) (at x² = 1 + 1/(4h)).
Initial particles: N(init_loc, init_scale²) (default: all in the left well).
Task metric ``basin_tv``: |share of particles with x > 0 − 1/2| (TV over the two basins).
"""

from __future__ import annotations

import numpy as np
from scipy import integrate

from kswgd.helpers import LangevinDataset, basin_tv, rejection_gaussian_1d
from kswgd.params import Interval


class DoubleWell(LangevinDataset):
    name = "double_well"
    description = "1-D double well h(x²-1)²; Euler–Maruyama trajectory, exact reference draws"
    parameters = {"h": 2.0, "lag": 0.01, "n_sub": 10, "burn_in": 1000, "n_chains": 1,
                  "init_loc": -1.0, "init_scale": 0.2}
    constraints = {
        "h": Interval(float, 0, None, closed="neither"),
        "lag": Interval(float, 0, None, closed="neither"),
        "n_sub": Interval(int, 1, None),
        "burn_in": Interval(int, 0, None),
        "n_chains": Interval(int, 1, None),
        "init_loc": Interval(float, None, None),
        "init_scale": Interval(float, 0, None, closed="neither"),
    }
    reference_note = "exact: rejection from N(0,1) with an analytic bound"
    default_sizes = {"n_train": 5000, "n_reference": 2000, "n_particles": 500}

    @property
    def dim(self) -> int:
        return 1

    def potential(self, x: np.ndarray) -> np.ndarray:
        """V(x) = h (x² − 1)², shape (N,)."""
        return self.params["h"] * (x[:, 0] ** 2 - 1.0) ** 2

    def grad_potential(self, x: np.ndarray) -> np.ndarray:
        """V'(x) = 4 h x (x² − 1), shape (N, 1)."""
        return 4.0 * self.params["h"] * x * (x * x - 1.0)

    def log_z(self) -> float:
        h = self.params["h"]
        val, _ = integrate.quad(lambda t: np.exp(-h * (t * t - 1.0) ** 2), -np.inf, np.inf,
                                epsabs=1e-13, epsrel=1e-12)
        return float(np.log(val))

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        h = self.params["h"]
        bound = 0.5 + 1.0 / (16.0 * h)
        return rejection_gaussian_1d(lambda t: -h * (t * t - 1.0) ** 2, bound, n, rng)[:, None]

    def initial(self, n: int, rng: np.random.Generator) -> np.ndarray:
        p = self.params
        return p["init_loc"] + p["init_scale"] * rng.standard_normal((n, 1))

    def task_metrics(self):
        def basin_tv_metric(particles: np.ndarray) -> float:
            """TV between the two-basin shares (x < 0, x > 0) and the exact (1/2, 1/2)."""
            return basin_tv((particles[:, 0] > 0).astype(int), np.array([0.5, 0.5]))

        return {"basin_tv": basin_tv_metric}
