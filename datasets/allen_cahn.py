"""Stochastic Allen–Cahn equation u_t = δ Δu + (u − u³)/ε² + σ ξ on a periodic grid of [0, 1)^D.

Discretisation: ``grid`` points per side (D = ``ndim`` ∈ {1, 2}), spacing h = 1/grid, the
(2D + 1)-point Laplacian, explicit Euler–Maruyama with step ``dt``; space-time white noise on the
grid is σ √(dt / h^D) N(0, 1) per site and step (kernels in ``kswgd.core._kernels``). The lattice
system is a gradient flow du = −h^{−D} ∂E/∂u dt + σ h^{−D/2} dW, so its invariant law is
∝ exp(−2E/σ²) with E(u) = h^D Σ [δ/2 |∇_h u|² + (u² − 1)²/(4ε²)]. Defaults (1-D, 64 points,
δ = 1e-3, ε = 0.5, σ = 0.25, dt = 0.01, stiffness dt (4δ/h² + 2/ε²) ≈ 0.24) give a phase-separated
field with ≈ 10 interfaces that are created and annihilated by the noise.

Reference draws (no exact sampler): snapshots of independent runs. Each run starts from
u ~ ``init_scale`` N(0, I) (the disordered state), is burnt in for ``burn_in`` time units, then
gives ``snapshots_per_run`` snapshots ``spacing`` time units apart. Checked in the tests: the
mean phase imbalance |2·frac(u > 0) − 1| agrees between burn-ins 20 and 40 and with the
trajectory pairs. Trajectory pairs: independent runs, burnt in alike, each giving
``pairs_per_run`` consecutive pairs at lag ``lag``.

Latent: with ``latent_dim`` = k > 0 samplers see PCA coordinates z = (u − m) Wᵀ (W: the top-k
principal axes, fitted once on ``pca_fit_size`` reference fields drawn with the fixed seed
``pca_seed``, independent of the runner's seeds); ``decode(z)`` = m + z W maps back to fields.
Initial particles: encoded disordered fields ``init_scale`` N(0, I) (grid) or N(0, I) (latent
not used): see ``initial``. Task metric ``phase_fraction_error``: |mean imbalance of the decoded
particles − the same for a fixed-seed set of 1 000 reference fields|.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

from kswgd.core import _kernels
from kswgd.dataset import Dataset, TrainingData
from kswgd.helpers import kind_or_default
from kswgd.params import Choice, Interval


def phase_imbalance(u: np.ndarray) -> np.ndarray:
    """|2 · (share of sites with u > 0) − 1| per field, (n, sites) -> (n,)."""
    return np.abs(2.0 * np.mean(u > 0, axis=1) - 1.0)


class AllenCahn(Dataset):
    name = "allen_cahn"
    description = "stochastic Allen–Cahn on a periodic grid (1-D 64 default, 2-D option); PCA"
    parameters = {"ndim": 1, "grid": 64, "delta": 1e-3, "eps": 0.5, "sigma": 0.25, "dt": 0.01,
                  "burn_in": 20.0, "spacing": 2.0, "snapshots_per_run": 10, "lag": 0.1,
                  "pairs_per_run": 20, "init_scale": 0.1, "latent_dim": 0,
                  "pca_fit_size": 1000, "pca_seed": 0}
    constraints = {
        "ndim": Choice(1, 2),
        "grid": Interval(int, 3, None),
        "delta": Interval(float, 0, None, closed="neither"),
        "eps": Interval(float, 0, None, closed="neither"),
        "sigma": Interval(float, 0, None, closed="neither"),
        "dt": Interval(float, 0, None, closed="neither"),
        "burn_in": Interval(float, 0, None),
        "spacing": Interval(float, 0, None, closed="neither"),
        "snapshots_per_run": Interval(int, 1, None),
        "lag": Interval(float, 0, None, closed="neither"),
        "pairs_per_run": Interval(int, 1, None),
        "init_scale": Interval(float, 0, None, closed="neither"),
        "latent_dim": Interval(int, 0, None),
        "pca_fit_size": Interval(int, 1, None),
        "pca_seed": Interval(int, 0, None),
    }
    data_kinds = ("trajectories", "samples")
    reference_note = ("snapshots of independent Euler–Maruyama runs from disordered starts: "
                      "burn-in 20, spacing 2, 10 per run (not exact)")
    default_sizes = {"n_train": 2000, "n_reference": 2000, "n_particles": 300}

    @property
    def sites(self) -> int:
        return self.params["grid"] ** self.params["ndim"]

    @property
    def dim(self) -> int:
        return self.params["latent_dim"] or self.sites

    # ---- simulation ---------------------------------------------------------------------
    def _steps(self, t: float) -> int:
        return int(round(t / self.params["dt"]))

    def _advance(self, u: np.ndarray, n_steps: int, rng: np.random.Generator) -> np.ndarray:
        """n_steps EM steps of every chain; u: (C, sites), returns a new array."""
        p = self.params
        g, nd = p["grid"], p["ndim"]
        h = 1.0 / g
        scale = p["sigma"] * np.sqrt(p["dt"] / h**nd)
        shape = (u.shape[0],) + (g,) * nd
        v = np.ascontiguousarray(u.reshape(shape), dtype=np.float64)
        kernel = _kernels.allen_cahn_em_1d if nd == 1 else _kernels.allen_cahn_em_2d
        block = max(1, 2_000_000 // u.size)
        done = 0
        while done < n_steps:
            s = min(block, n_steps - done)
            noise = scale * rng.standard_normal((s,) + shape)
            v = kernel(v, noise, p["dt"], p["delta"], p["eps"], h)
            done += s
        return v.reshape(u.shape[0], -1)

    def _runs(self, n_runs: int, n_snap: int, gap: float, rng: np.random.Generator,
              burn_in: float | None = None) -> np.ndarray:
        """n_runs independent runs: burn-in, then n_snap snapshots ``gap`` apart.
        Returns (n_snap, n_runs, sites)."""
        p = self.params
        u = p["init_scale"] * rng.standard_normal((n_runs, self.sites))
        u = self._advance(u, self._steps(p["burn_in"] if burn_in is None else burn_in), rng)
        out = np.empty((n_snap, n_runs, self.sites))
        out[0] = u
        for k in range(1, n_snap):
            u = self._advance(u, self._steps(gap), rng)
            out[k] = u
        return out

    def draw_fields(self, n: int, rng: np.random.Generator, burn_in: float | None = None
                    ) -> np.ndarray:
        """n reference fields (snapshots of independent runs), shape (n, sites)."""
        k = self.params["snapshots_per_run"]
        snaps = self._runs(-(-n // k), k, self.params["spacing"], rng, burn_in)
        return snaps.transpose(1, 0, 2).reshape(-1, self.sites)[:n]

    # ---- latent -------------------------------------------------------------------------
    @cached_property
    def pca(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean m (sites,), axes W (k, sites)) fitted on fixed-seed reference fields."""
        k = self.params["latent_dim"]
        rng = np.random.default_rng(np.random.SeedSequence(self.params["pca_seed"]))
        u = self.draw_fields(self.params["pca_fit_size"], rng)
        m = u.mean(axis=0)
        _, _, vt = np.linalg.svd(u - m, full_matrices=False)
        return m, vt[:k]

    def encode(self, u: np.ndarray) -> np.ndarray:
        """Fields (n, sites) -> sampler coordinates: z = (u − m) Wᵀ, or u itself without PCA."""
        if not self.params["latent_dim"]:
            return np.ascontiguousarray(u)
        m, w = self.pca
        return (u - m) @ w.T

    def decode(self, z: np.ndarray) -> np.ndarray:
        """Sampler coordinates -> fields (n, sites): m + z W (identity without PCA)."""
        if not self.params["latent_dim"]:
            return np.asarray(z)
        m, w = self.pca
        return m + z @ w

    # ---- Dataset interface --------------------------------------------------------------
    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.encode(self.draw_fields(n, rng))

    def train(self, n: int, rng: np.random.Generator, kind: str | None = None) -> TrainingData:
        """Pairs (u_t, u_{t+lag}) from independent burnt-in runs, or reference-like snapshots."""
        kind = kind_or_default(kind, self.data_kinds, self.name)
        if kind == "samples":
            return TrainingData(self.draw(n, rng))
        p = self.params
        k = p["pairs_per_run"]
        snaps = self._runs(-(-n // k), k + 1, p["lag"], rng)
        x = snaps[:-1].transpose(1, 0, 2).reshape(-1, self.sites)[:n]
        y = snaps[1:].transpose(1, 0, 2).reshape(-1, self.sites)[:n]
        return TrainingData(self.encode(x), self.encode(y), lag=p["lag"],
                            info={"pairs_per_run": k})

    def initial(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Disordered fields init_scale · N(0, I) on the grid, encoded to the latent if any."""
        return self.encode(self.params["init_scale"] * rng.standard_normal((n, self.sites)))

    @cached_property
    def reference_imbalance(self) -> float:
        """Mean phase imbalance of 1 000 reference fields drawn with a fixed seed."""
        rng = np.random.default_rng(np.random.SeedSequence([self.params["pca_seed"], 1]))
        return float(phase_imbalance(self.draw_fields(1000, rng)).mean())

    def task_metrics(self):
        def phase_fraction_error(particles: np.ndarray) -> float:
            """|mean |2 frac(u > 0) − 1| of the decoded particles − reference value|."""
            return abs(float(phase_imbalance(self.decode(particles)).mean())
                       - self.reference_imbalance)

        return {"phase_fraction_error": phase_fraction_error}
