"""Helpers a dataset or sampler plug-in may import (public; docs/plugins.md lists them).

Everything here is plain numpy and takes its randomness from a ``numpy.random.Generator``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from kswgd.dataset import Dataset, TrainingData

Array = np.ndarray


def rejection_gaussian_1d(
    log_f: Callable[[Array], Array],
    log_bound: float,
    n: int,
    rng: np.random.Generator,
    loc: float = 0.0,
    scale: float = 1.0,
) -> Array:
    """Exact draws of p(x) ∝ exp(log_f(x)) by rejection from the proposal N(loc, scale²).

    Requires log_f(x) + (x − loc)²/(2 scale²) ≤ log_bound for every x (the caller proves it);
    a proposal x is accepted with probability exp(log_f(x) + (x − loc)²/(2 scale²) − log_bound).
    Returns shape (n,).
    """
    out = np.empty(n)
    filled = 0
    while filled < n:
        m = max(64, 3 * (n - filled))
        z = rng.standard_normal(m)
        x = loc + scale * z
        log_acc = log_f(x) + 0.5 * z * z - log_bound
        keep = x[np.log(rng.random(m)) < log_acc]
        take = min(n - filled, keep.size)
        out[filled : filled + take] = keep[:take]
        filled += take
    return out


def inverse_cdf_1d(
    log_f: Callable[[Array], Array], lo: float, hi: float, n: int, rng: np.random.Generator,
    n_grid: int = 200_001,
) -> Array:
    """Draws of p(x) ∝ exp(log_f(x)) on [lo, hi] by inverting the tabulated CDF.

    The density is tabulated on a uniform grid of ``n_grid`` points, the CDF by the trapezoid
    rule, and u ~ U(0, 1) is mapped through the piecewise-linear inverse CDF. Exact up to the
    grid discretisation (error O(h²) in the CDF) and the truncation to [lo, hi]. Shape (n,).
    """
    grid = np.linspace(lo, hi, n_grid)
    lf = log_f(grid)
    dens = np.exp(lf - lf.max())
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (dens[1:] + dens[:-1]) * np.diff(grid))])
    cdf /= cdf[-1]
    return np.interp(rng.random(n), cdf, grid)


def langevin_em(
    grad_v: Callable[[Array], Array],
    x0: Array,
    dt: float,
    n_sub: int,
    n_save: int,
    burn_in: int,
    rng: np.random.Generator,
    beta: float = 1.0,
) -> Array:
    """Overdamped Langevin dX = −β∇V dt + √2 dW (π ∝ e^{−βV}, generator Δ − β∇V·∇ as in
    docs/design.md, 'The objects') by Euler–Maruyama, all chains at once.

    One saved step = ``n_sub`` Euler sub-steps of length δ = dt / n_sub:
    x ← x − β ∇V(x) δ + √(2δ) ξ. The first ``burn_in`` saved steps are discarded.
    x0: (C, d) chain starts. Returns (n_save, C, d): the saved states after burn-in.
    """
    x = np.array(x0, dtype=float)
    delta = dt / n_sub
    noise_scale = np.sqrt(2.0 * delta)
    drift = beta * delta
    out = np.empty((n_save,) + x.shape)
    block = max(1, 4096 // max(1, x.size))  # saved steps of noise drawn at once
    step = 0
    total = burn_in + n_save
    while step < total:
        nb = min(block, total - step)
        noise = noise_scale * rng.standard_normal((nb, n_sub) + x.shape)
        for b in range(nb):
            for s in range(n_sub):
                x = x - drift * grad_v(x) + noise[b, s]
            if step + b >= burn_in:
                out[step + b - burn_in] = x
        step += nb
    return out


def pairs_from_chains(traj: Array, n: int, lag: float, **info) -> TrainingData:
    """Consecutive saved points of (T, C, d) chains as n pairs (x_m, y_m) at lag ``lag``.

    Pairs are taken chain by chain (all of chain 0, then chain 1, ...), first n kept.
    """
    x = np.concatenate([traj[:-1, c] for c in range(traj.shape[1])])[:n]
    y = np.concatenate([traj[1:, c] for c in range(traj.shape[1])])[:n]
    return TrainingData(np.ascontiguousarray(x), np.ascontiguousarray(y), lag=lag, info=info)


def chain_lengths(n: int, n_chains: int) -> int:
    """Saved points per chain so that n_chains chains give at least n consecutive pairs."""
    return -(-n // n_chains) + 1


def fraction_near(x: Array, centres: Array, radius: float) -> float:
    """Share of the rows of x within ``radius`` (Euclidean) of any row of ``centres``."""
    d2 = ((x[:, None, :] - centres[None, :, :]) ** 2).sum(-1)
    return float(np.mean(d2.min(axis=1) <= radius * radius))


def uniform_box_minus_discs(
    n: int, rng: np.random.Generator, half_width: float, centres: Array, radius: float
) -> Array:
    """Uniform law on [−a, a]^d minus the balls of ``radius`` around ``centres`` (rejection)."""
    d = centres.shape[1]
    out = np.empty((0, d))
    while out.shape[0] < n:
        x = rng.uniform(-half_width, half_width, size=(2 * n + 16, d))
        d2 = ((x[:, None, :] - centres[None, :, :]) ** 2).sum(-1)
        out = np.concatenate([out, x[d2.min(axis=1) > radius * radius]])
    return out[:n]


def kind_or_default(kind: str | None, kinds: tuple[str, ...], owner: str) -> str:
    """Validate the ``kind`` argument of ``train`` (None → the first available kind)."""
    from kswgd.params import choice_error

    kind = kind or kinds[0]
    if kind not in kinds:
        raise choice_error(f"data kind of {owner}", kind, kinds)
    return kind


def unit_rows(x: Array) -> Array:
    """x / |x| row-wise (the nearest point of the unit sphere); a zero row maps to e_1."""
    r = np.linalg.norm(x, axis=1, keepdims=True)
    out = np.divide(x, r, out=np.zeros_like(x, dtype=float), where=r > 0)
    out[r[:, 0] == 0, 0] = 1.0
    return out


def tangent_sphere(x: Array, v: Array) -> Array:
    """P_x v = v − (v·n) n with n = x/|x|: projection onto the tangent space of the sphere."""
    n = unit_rows(x)
    return v - np.sum(v * n, axis=1, keepdims=True) * n


def histogram_tv(values: Array, edges: Array, probs: Array) -> float:
    """½ Σ_b |n_b / N − p_b|: total variation between a histogram and bin probabilities."""
    counts, _ = np.histogram(values, bins=edges)
    return 0.5 * float(np.abs(counts / max(1, values.size) - probs).sum())


class LangevinDataset(Dataset):
    """Shared body of the potential-based datasets: π ∝ exp(−β V), trajectories by
    :func:`langevin_em`. Subclasses define ``potential``, ``grad_potential``, ``draw``,
    ``chain_start`` and ``log_z`` and the parameters ``lag``, ``n_sub``, ``burn_in``,
    ``n_chains`` (and optionally ``beta``, default 1)."""

    data_kinds = ("trajectories", "samples")

    @property
    def beta(self) -> float:
        return float(self.params.get("beta", 1.0))

    def grad_potential(self, x: Array) -> Array:
        raise NotImplementedError

    def chain_start(self, n_chains: int, rng: np.random.Generator) -> Array:
        """Starting points of the training chains (default: exact draws of π)."""
        return self.draw(n_chains, rng)

    def log_z(self) -> float:
        """log ∫ exp(−β V) (by quadrature in the subclass)."""
        raise NotImplementedError

    def score(self, x: Array) -> Array:
        """∇ log π = −β ∇V."""
        return -self.beta * self.grad_potential(x)

    def log_density(self, x: Array) -> Array:
        """Normalised log π = −β V − log Z."""
        return -self.beta * self.potential(x) - self.log_z()

    def train(self, n: int, rng: np.random.Generator, kind: str | None = None) -> TrainingData:
        """n consecutive-point pairs of ``n_chains`` Euler–Maruyama chains (after burn-in),
        or n exact static draws for kind="samples"."""
        kind = kind_or_default(kind, self.data_kinds, self.name)
        if kind == "samples":
            return TrainingData(self.draw(n, rng))
        p = self.params
        x0 = self.chain_start(p["n_chains"], rng)
        traj = langevin_em(self.grad_potential, x0, p["lag"], p["n_sub"],
                           chain_lengths(n, p["n_chains"]), p["burn_in"], rng, beta=self.beta)
        return pairs_from_chains(traj, n, p["lag"], n_chains=p["n_chains"])


def basin_tv(labels: Array, masses: Array) -> float:
    """½ Σ_b |share of particles with label b − exact π-mass of basin b|."""
    share = np.bincount(labels, minlength=masses.size) / max(1, labels.size)
    return 0.5 * float(np.abs(share - masses).sum())
