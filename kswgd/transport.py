"""Diagnostics of the spectral transport (docs/design.md, 'The transport').

The transport itself is ``Spectrum.transport_velocity`` (kswgd.spectrum) applied by
``SpectralSampler.step`` (kswgd.sampler). Here: the spectral residual and the dissipation rate.
"""

from __future__ import annotations

import numpy as np


def spectral_residual(c: np.ndarray) -> float:
    """S = Σ_k c_k², with c_k = mean_j φ_k(x_j) ≈ ⟨ρ − 1, φ_k⟩_π (zero at μ = π)."""
    return float(np.dot(c, c))


def dissipation_rate(s_prev: float, s_next: float, step: float) -> float:
    """−log(S_{n+1}/S_n) / (2h): ≈ 1 under exact eigenpairs (the constant-dissipation claim)."""
    if s_prev <= 0 or s_next <= 0:
        return float("nan")
    return float(-np.log(s_next / s_prev) / (2.0 * step))
