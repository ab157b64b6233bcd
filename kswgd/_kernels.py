"""Every Numba kernel of the project lives here (one home; everything else calls these).

Conventions: inputs are C-contiguous float64 arrays validated by the Python wrapper that calls
the kernel; kernels trust their inputs. Each kernel has ``cache=True``; ``parallel=True`` with
``prange`` over particles where the per-particle work is large enough. No BLAS inside a prange
body. Each kernel's docstring gives the formula and the shapes; each has a plain-numpy twin in
the tests.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


# ---------------------------------------------------------------------------------------------
# SVGD (baselines/svgd.py)
# ---------------------------------------------------------------------------------------------


@njit(cache=True, parallel=True, fastmath=True)
def svgd_direction(x, s, bw2):
    """SVGD direction with the RBF kernel k(x, y) = exp(−‖x − y‖² / (2 b²)), b² = ``bw2``:

        φ_i = (1/N) Σ_j [k(x_j, x_i) s_j + ∇_{x_j} k(x_j, x_i)]
            = (1/N) [Σ_j k_ij (s_j − x_j / b²) + x_i Σ_j k_ij / b²]

    x: (N, d) particles, s: (N, d) scores s(x_j). Returns (N, d). O(N² d) time, O(N d) memory:
    no (N, N) matrix and no (N, N, d) tensor. Each i sums over j in a fixed order (deterministic).
    """
    n, d = x.shape
    out = np.empty((n, d))
    inv = 1.0 / bw2
    for i in prange(n):
        ksum = 0.0
        for a in range(d):
            out[i, a] = 0.0
        for j in range(n):
            d2 = 0.0
            for a in range(d):
                t = x[i, a] - x[j, a]
                d2 += t * t
            k = np.exp(-0.5 * inv * d2)
            ksum += k
            for a in range(d):
                out[i, a] += k * (s[j, a] - x[j, a] * inv)
        for a in range(d):
            out[i, a] = (out[i, a] + x[i, a] * ksum * inv) / n
    return out
