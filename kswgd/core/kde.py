"""The Gaussian kernel density estimate and its score (bandwidth rules: kswgd.core.bandwidths).

    p̂(x) ∝ Σ_j exp(−‖x − x_j‖²/(2b²)),
    ŝ(x) = ∇ log p̂(x) = Σ_j k(x, x_j)(x_j − x) / (b² Σ_j k(x, x_j))

Used by the ``kde-pairs`` estimator (leave-one-out at the samples) and by SVGD with
``score='kde'``.
"""

from __future__ import annotations

import numpy as np

from kswgd.core import _kernels
from kswgd.core.data import as_points
from kswgd.params import ConfigError


def kde_score(points: np.ndarray, samples: np.ndarray, bandwidth: float,
              block_entries: int = 4_000_000, leave_one_out: bool = False) -> np.ndarray:
    """Score of the Gaussian KDE p̂(x) ∝ Σ_j exp(−‖x − x_j‖²/(2b²)):

        ŝ(x) = Σ_j k(x, x_j)(x_j − x) / (b² Σ_j k(x, x_j))

    in row blocks (rows rescaled so that far points do not underflow). With
    ``leave_one_out`` (``points`` must be ``samples``), the score at x_i omits j = i:
    ŝ₋ᵢ(x_i) = Σ_{j≠i} k_ij (x_j − x_i) / (b² Σ_{j≠i} k_ij). The self term adds 1 to the
    denominator and nothing to the numerator, so the plain score shrinks towards 0 where x_i has
    few neighbours (the tails). For an isolated x_i (every k_ij, j ≠ i, underflows) the row is
    rescaled by exp(min_j‖x_i − x_j‖²/(2b²)) first, which leaves the ratio unchanged: the score
    points to the nearest samples instead of falling back to 0. Returns (N, d).
    """
    points, samples = as_points(points), as_points(samples)
    if leave_one_out and points.shape != samples.shape:
        raise ConfigError("a leave-one-out KDE score needs points == samples")
    out = np.empty_like(points)
    step = max(1, block_entries // len(samples))
    for i in range(0, len(points), step):
        if leave_one_out:
            pb = points[i : i + step]
            kb = _kernels.gauss_features(pb, samples, bandwidth)
            kb[np.arange(len(pb)), np.arange(i, i + len(pb))] = 0.0
            tot = kb.sum(axis=1)
            bad = np.flatnonzero(tot <= np.finfo(float).tiny)   # isolated: all k_ij underflow
            for r in bad:                   # the leave-one-out kernel, rescaled so its largest
                d2 = np.sum((samples - pb[r]) ** 2, axis=1)          # entry is 1 (no underflow)
                d2[i + r] = np.inf
                kb[r] = np.exp(-(d2 - d2.min()) / (2 * bandwidth**2))
                tot[r] = kb[r].sum()
        else:
            kb = _kernels.gauss_features_rowshift(points[i : i + step], samples, bandwidth)
            tot = kb.sum(axis=1)
        out[i : i + step] = (kb @ samples / tot[:, None] - points[i : i + step])
    return out / bandwidth**2
