"""Verification of the spectral estimators against known spectra (issue 3's table).

Reference values: analytic spectra (OU, circle, sphere) from the datasets, and for 1-D
potentials a fine finite-difference solve of the generator (:func:`fd_generator_spectrum`).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg


def fd_generator_spectrum(log_density, lower: float, upper: float, n: int, rank: int):
    """λ_1..λ_rank of L f = −π⁻¹ (π f')' on [lower, upper] with reflecting ends.

    Conservative finite differences on n + 1 nodes x_i (spacing h), π at nodes and midpoints:
    (L f)_i = −[π_{i+½}(f_{i+1} − f_i) − π_{i−½}(f_i − f_{i−1})] / (h² π_i), symmetrised by
    π_i^{1/2} into a tridiagonal matrix (error O(h²)). The zero mode is excluded.
    """
    x = np.linspace(lower, upper, n + 1)
    h = x[1] - x[0]
    shift = float(np.max(log_density(x[:, None])))
    p = np.exp(log_density(x[:, None]) - shift)
    pm = np.exp(log_density((0.5 * (x[:-1] + x[1:]))[:, None]) - shift)
    diag = np.zeros(n + 1)
    diag[:-1] += pm
    diag[1:] += pm
    diag /= h * h * p
    off = -pm / (h * h * np.sqrt(p[:-1] * p[1:]))
    lam = scipy.linalg.eigh_tridiagonal(diag, off, select="i", select_range=(0, rank),
                                        eigvals_only=True)
    return lam[1:]
