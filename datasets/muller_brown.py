"""Müller–Brown potential at a moderate temperature: π ∝ exp(−β V), β = 0.05 by default.

V(x, y) = Σ_{i=1..4} A_i exp(a_i (x − x_i)² + b_i (x − x_i)(y − y_i) + c_i (y − y_i)²) with
A = (−200, −100, −170, 15), a = (−1, −1, −6.5, 0.7), b = (0, 0, 11, 0.6),
c = (−10, −10, −6.5, 0.7), x_i = (1, 0, −0.5, −1), y_i = (0, 0.5, 1.5, 1).
Minima ≈ (−0.558, 1.442) V = −146.7, (0.623, 0.028) V = −108.2, (−0.050, 0.467) V = −80.8;
at β = 0.05 the highest barrier is ≈ 5 kT.

Reference draws: rejection from the uniform law on a box B with envelope exp(−β(V_min − 1)),
V_min from numerical minimisation (the margin 1 keeps the bound valid). B is the bounding box
of {β (V − V_min) < 40} on a 0.005 grid of [−5, 5]², plus 0.1: the π-mass outside B is below
e^{−40}·area, i.e. the draws are exact up to a truncation of ~1e−16. Checked in the tests
against basin masses from grid quadrature.
Trajectories: Euler–Maruyama for dX = −β∇V dt + √2 dW, ``n_chains`` chains from exact draws.
Initial particles: N((0.62, 0.03), 0.05² I), in the middle-depth well.
Task metric ``basin_tv``: TV between the shares of the three Voronoi cells of the minima and
their π-masses (midpoint quadrature on a 1 200² grid of B).
"""

from __future__ import annotations

from functools import cache, cached_property

import numpy as np
from scipy import optimize

from kswgd.helpers import LangevinDataset, basin_tv
from kswgd.params import Floats, Interval

_A = np.array([-200.0, -100.0, -170.0, 15.0])
_a = np.array([-1.0, -1.0, -6.5, 0.7])
_b = np.array([0.0, 0.0, 11.0, 0.6])
_c = np.array([-10.0, -10.0, -6.5, 0.7])
_X = np.array([1.0, 0.0, -0.5, -1.0])
_Y = np.array([0.0, 0.5, 1.5, 1.0])


def mb_potential(x: np.ndarray) -> np.ndarray:
    """V at the rows of x, (N, 2) -> (N,)."""
    dx = x[:, :1] - _X
    dy = x[:, 1:2] - _Y
    return (_A * np.exp(_a * dx * dx + _b * dx * dy + _c * dy * dy)).sum(axis=1)


def mb_grad(x: np.ndarray) -> np.ndarray:
    """∇V: Σ_i A_i e_i (2 a_i dx + b_i dy, b_i dx + 2 c_i dy), (N, 2) -> (N, 2)."""
    dx = x[:, :1] - _X
    dy = x[:, 1:2] - _Y
    e = _A * np.exp(_a * dx * dx + _b * dx * dy + _c * dy * dy)
    gx = (e * (2 * _a * dx + _b * dy)).sum(1)
    gy = (e * (_b * dx + 2 * _c * dy)).sum(1)
    return np.column_stack([gx, gy])


@cache
def _minima() -> np.ndarray:
    starts = [(-0.55, 1.44), (0.62, 0.03), (-0.05, 0.47)]
    f = lambda p: float(mb_potential(p[None])[0])
    g = lambda p: mb_grad(p[None])[0]
    return np.array([optimize.minimize(f, s, jac=g, tol=1e-12).x for s in starts])


@cache
def _box(beta: float) -> tuple[float, float, float, float]:
    g = np.linspace(-5.0, 5.0, 2001)
    xx, yy = np.meshgrid(g, g, indexing="ij")
    v = mb_potential(np.column_stack([xx.ravel(), yy.ravel()])).reshape(xx.shape)
    keep = beta * (v - v.min()) < 40.0
    return (xx[keep].min() - 0.1, xx[keep].max() + 0.1, yy[keep].min() - 0.1, yy[keep].max() + 0.1)


class MullerBrown(LangevinDataset):
    name = "muller_brown"
    description = "Müller–Brown potential at beta=0.05; EM chains, exact rejection reference"
    parameters = {"beta": 0.05, "lag": 0.01, "n_sub": 20, "burn_in": 100, "n_chains": 20,
                  "init_loc": (0.62, 0.03), "init_scale": 0.05}
    constraints = {
        "beta": Interval(float, 0, None, closed="neither"),
        "lag": Interval(float, 0, None, closed="neither"),
        "n_sub": Interval(int, 1, None),
        "burn_in": Interval(int, 0, None),
        "n_chains": Interval(int, 1, None),
        "init_loc": Floats(2),
        "init_scale": Interval(float, 0, None, closed="neither"),
    }
    reference_note = "rejection from uniform on a box holding all but ~1e-16 of the mass"
    default_sizes = {"n_train": 5000, "n_reference": 2000, "n_particles": 500}

    @property
    def dim(self) -> int:
        return 2

    def potential(self, x: np.ndarray) -> np.ndarray:
        return mb_potential(x)

    def grad_potential(self, x: np.ndarray) -> np.ndarray:
        return mb_grad(x)

    @property
    def minima(self) -> np.ndarray:
        """The three local minima, (3, 2)."""
        return _minima()

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        x0, x1, y0, y1 = _box(self.beta)
        log_top = -self.beta * (mb_potential(self.minima).min() - 1.0)
        out = np.empty((0, 2))
        while out.shape[0] < n:
            m = 64 * (n - out.shape[0]) + 64
            cand = np.column_stack([rng.uniform(x0, x1, m), rng.uniform(y0, y1, m)])
            acc = np.log(rng.random(m)) < -self.beta * mb_potential(cand) - log_top
            out = np.concatenate([out, cand[acc]])
        return out[:n]

    def initial(self, n: int, rng: np.random.Generator) -> np.ndarray:
        p = self.params
        loc = np.asarray(p["init_loc"], dtype=float)
        return loc + p["init_scale"] * rng.standard_normal((n, 2))

    def _labels(self, x: np.ndarray) -> np.ndarray:
        return ((x[:, None, :] - self.minima[None]) ** 2).sum(-1).argmin(axis=1)

    @cached_property
    def _quadrature(self) -> tuple[np.ndarray, float]:
        x0, x1, y0, y1 = _box(self.beta)
        k = 1200
        hx, hy = (x1 - x0) / k, (y1 - y0) / k
        gx = x0 + hx * (np.arange(k) + 0.5)
        gy = y0 + hy * (np.arange(k) + 0.5)
        pts = np.column_stack([np.repeat(gx, k), np.tile(gy, k)])
        v = mb_potential(pts)
        w = np.exp(-self.beta * (v - v.min()))
        masses = np.bincount(self._labels(pts), weights=w, minlength=3)
        log_z = float(np.log(w.sum() * hx * hy) - self.beta * v.min())
        return masses / masses.sum(), log_z

    @property
    def basin_masses(self) -> np.ndarray:
        """π-mass of the Voronoi cells of the three minima (midpoint quadrature)."""
        return self._quadrature[0]

    def log_z(self) -> float:
        return self._quadrature[1]

    def task_metrics(self):
        def basin_tv_metric(particles: np.ndarray) -> float:
            """TV between the particles' shares of the three cells and their π-masses."""
            return basin_tv(self._labels(particles), self.basin_masses)

        return {"basin_tv": basin_tv_metric}
