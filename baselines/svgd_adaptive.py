"""SVGD with per-coordinate adaptive steps: AdaGrad with momentum and Adam.

Both move particles along the SVGD direction φ of ``baselines/svgd.py`` (Liu & Wang 2016,
"Stein Variational Gradient Descent", NeurIPS; median-heuristic RBF kernel, the dataset's exact
score), rescaled coordinate by coordinate and particle by particle, t = 1, 2, ... counting the
steps since ``setup``:

``svgd_adagrad``, the optimiser of Liu & Wang's published SVGD code (α = ``alpha`` = 0.9,
δ = ``fudge`` = 1e-6 as there):

    G₁ = φ₁²,   G_t = α G_{t−1} + (1 − α) φ_t²,   x ← x + ε φ_t / (δ + √G_t)

``svgd_adam`` (Kingma & Ba 2015, "Adam: a method for stochastic optimization", ICLR; β₁ = 0.9,
β₂ = 0.999, ϵ = 1e-8, m₀ = v₀ = 0):

    m_t = β₁ m_{t−1} + (1 − β₁) φ_t,   v_t = β₂ v_{t−1} + (1 − β₂) φ_t²,
    x ← x + ε (m_t / (1 − β₁ᵗ)) / (√(v_t / (1 − β₂ᵗ)) + ϵ)

ε = ``step``. Its default, 0.05, is not the original code's 1e-3: that code runs thousands of
iterations, and suites choose the step by their own rule anyway. Early on |φ/√G| ≈ 1, so ε is
roughly each coordinate's displacement per step. The state restarts when the particle count
changes. ``baselines/svgd.py`` with ``optimizer = "adagrad" | "adam"`` runs the same updates
with these constants fixed; these plug-ins make the constants parameters.
"""

from __future__ import annotations

import numpy as np

from kswgd.baselines.svgd import median_bandwidth, svgd_direction
from kswgd.dataset import move
from kswgd.params import ConfigError, choice_error
from kswgd.sampler import Sampler


class AdaptiveSVGD(Sampler):
    """SVGD direction φ with a per-coordinate preconditioner (subclasses: ``precondition``).

    Shared parameters: ``step`` = ε, ``backend`` and ``median_subsample`` as in svgd.
    """

    name = ""  # a base, not registered
    parameters = {"step": 0.05, "backend": "auto", "median_subsample": 0}
    uses = ("score",)
    data_kind = None

    def __init__(self, **params):
        super().__init__(**params)
        if self.params["backend"] not in ("auto", "numba", "numpy"):
            raise choice_error("SVGD backend", self.params["backend"], ("auto", "numba", "numpy"))

    def setup(self, dataset, train, rng):
        super().setup(dataset, train, rng)
        if dataset.score is None:
            raise ConfigError(f"{self.name} needs the score of dataset {dataset.name!r}")
        self._score = dataset.score
        self._state: dict[str, np.ndarray] = {}
        self._t = 0
        self._bw2 = np.nan
        self._phi_norm = np.nan

    def precondition(self, phi: np.ndarray, t: int) -> np.ndarray:
        """The rescaled direction at step t (≥ 1), updating ``self._state``."""
        raise NotImplementedError

    def step(self, x, rng):
        x = np.ascontiguousarray(x, dtype=np.float64)
        self._bw2 = median_bandwidth(x, self.params["median_subsample"])
        phi = svgd_direction(x, self._score(x), self._bw2, self.params["backend"])
        self._phi_norm = float(np.sqrt(np.mean(np.sum(phi * phi, axis=1))))
        if any(v.shape != phi.shape for v in self._state.values()):
            self._state.clear()  # the particle count changed: restart the optimiser
            self._t = 0
        self._t += 1
        return move(x, self.params["step"] * self.precondition(phi, self._t), self.manifold)

    def diagnostics(self):
        """b² of the last step and the RMS norm of φ (→ 0 at a fixed point)."""
        return {"bandwidth2": float(self._bw2), "phi_rms": self._phi_norm}

    def grad_evals_per_step(self) -> int:
        """One score evaluation per particle per step."""
        return 1


class SVGDAdaGrad(AdaptiveSVGD):
    """SVGD with AdaGrad with momentum (the original SVGD code's optimiser): ``alpha`` = α,
    ``fudge`` = δ; see the module docstring."""

    name = "svgd_adagrad"
    description = "SVGD with the original code's AdaGrad (momentum 0.9, fudge 1e-6)"
    parameters = {**AdaptiveSVGD.parameters, "alpha": 0.9, "fudge": 1e-6}

    def __init__(self, **params):
        super().__init__(**params)
        if not 0.0 <= self.params["alpha"] < 1.0 or not self.params["fudge"] > 0:
            raise ConfigError(f"svgd_adagrad needs 0 ≤ alpha < 1 and fudge > 0, got "
                              f"alpha={self.params['alpha']}, fudge={self.params['fudge']}")

    def precondition(self, phi, t):
        a, g2 = self.params["alpha"], phi * phi
        g = self._state["g"] = g2 if t == 1 else a * self._state["g"] + (1.0 - a) * g2
        return phi / (self.params["fudge"] + np.sqrt(g))


class SVGDAdam(AdaptiveSVGD):
    """SVGD with Adam: ``beta1``, ``beta2``, ``eps``; see the module docstring."""

    name = "svgd_adam"
    description = "SVGD with Adam (0.9, 0.999, 1e-8), bias-corrected"
    parameters = {**AdaptiveSVGD.parameters, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}

    def __init__(self, **params):
        super().__init__(**params)
        p = self.params
        if not (0.0 <= p["beta1"] < 1.0 and 0.0 <= p["beta2"] < 1.0 and p["eps"] > 0):
            raise ConfigError(f"svgd_adam needs 0 ≤ beta1, beta2 < 1 and eps > 0, got "
                              f"beta1={p['beta1']}, beta2={p['beta2']}, eps={p['eps']}")

    def precondition(self, phi, t):
        b1, b2, st = self.params["beta1"], self.params["beta2"], self._state
        m = st["m"] = b1 * st.get("m", 0.0) + (1.0 - b1) * phi
        v = st["v"] = b2 * st.get("v", 0.0) + (1.0 - b2) * phi * phi
        return (m / (1.0 - b1**t)) / (np.sqrt(v / (1.0 - b2**t)) + self.params["eps"])
