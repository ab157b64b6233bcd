"""The bandwidth rules of every kernel in the package, in one place.

All but the median rule scale the spread of the data, s̄ = mean over coordinates of the
standard deviation (:func:`mean_std`), by a power of the sample count:

    kde_bandwidth  (silverman)  b = s̄ (4 / ((d + 2) n))^{1/(d+4)}    KDE of the density
    kde_bandwidth  (score)      b = s̄ (4 / ((d + 2) n))^{1/(d+6)}    KDE of the score ∇p/p
    scott_bandwidth             b = s̄ n^{−1/(d+4)}                   SVGD's KDE score
    landmark_bandwidth          σ = s̄ (4/(d + 2))^{1/(d+4)} F^{−1/(d+4)}  rbf bumps on F landmarks
    diffusion_bandwidth         s = s̄ n^{−1/(m+6)}                   diffusion maps, m intrinsic
    median_distance             ε = median_{i≠j} ‖x_i − x_j‖          kernel EDMD

Each rule keeps its own order of floating-point operations (the fitted numbers of earlier
releases are reproduced bit for bit), which is why the first four are not one function.
"""

from __future__ import annotations

import numpy as np

from kswgd.core.data import as_points
from kswgd.params import choice_error


def mean_std(x: np.ndarray) -> float:
    """s̄ = mean_a std(x_a): the spread every rule below scales."""
    return float(np.mean(x.std(axis=0)))


def kde_bandwidth(x: np.ndarray, rule: str = "silverman") -> float:
    """A Gaussian-KDE bandwidth b = s̄ · (4 / ((d + 2) n))^{1/(d + q)}.

    ``rule='silverman'`` (q = 4): Silverman's normal-reference rule, AMISE-optimal for the
    density. ``rule='score'`` (q = 6): the n^{−1/(d+6)} rate that is AMISE-optimal for the
    density's gradient (Chacón, Duong & Wand 2011), hence for a score ŝ = ∇p̂/p̂; it is wider
    (2-D OU, n = 10 000: 0.32 against 0.22), which tames the score's noise at sparse points.
    Neither is the median rule b² = median ‖x_i − x_j‖², which is so wide that the KDE score is
    little more than a pull to the mean (docs/design.md, 'The score')."""
    if rule not in ("silverman", "score"):
        raise choice_error("KDE bandwidth rule", rule, ["silverman", "score"])
    x = as_points(x)
    n, d = x.shape
    q = 4 if rule == "silverman" else 6
    return mean_std(x) * (4.0 / ((d + 2) * n)) ** (1.0 / (d + q))


def scott_bandwidth(x: np.ndarray) -> float:
    """Scott's rule σ = s̄ · n^{−1/(d+4)} (SVGD's KDE score, ``kde_bandwidth`` = 0)."""
    x = as_points(x)
    n, d = x.shape
    return mean_std(x) * n ** (-1.0 / (d + 4))


def landmark_bandwidth(x: np.ndarray, n_landmarks: int) -> float:
    """σ = s̄ · (4/(d + 2))^{1/(d+4)} · F^{−1/(d+4)} for F Gaussian bumps: Silverman's rule
    with the landmarks as the sample (the ``rbf`` dictionary's default)."""
    d = as_points(x).shape[1]
    return mean_std(x) * (4 / (d + 2)) ** (1 / (d + 4)) * n_landmarks ** (-1 / (d + 4))


def diffusion_bandwidth(x: np.ndarray, intrinsic_dim: int | None = None) -> float:
    """The default diffusion-map bandwidth s = s̄ · n^{−1/(m + 6)}.

    n = the number of samples, m = the intrinsic dimension (d in R^d). n^{−1/(m+6)} balances the
    O(s²) bias of the α = ½ graph generator against its O(n^{−1/2} s^{−(m/2+1)}) variance. On
    OU with n = 3 000 it gives s = 0.32 (docs/design.md: s = 0.3 → λ̂ = 1.04, 1.96, 2.73;
    s = 0.1 adds spurious near-zero modes).
    """
    x = as_points(x)
    m = x.shape[1] if intrinsic_dim is None else int(intrinsic_dim)
    return mean_std(x) * len(x) ** (-1.0 / (m + 6))


def median_distance(x: np.ndarray, max_points: int = 4000) -> float:
    """The median heuristic: median_{i≠j} ‖x_i − x_j‖ over the samples (all ordered pairs; the
    first ``max_points`` samples when there are more, a deterministic subset)."""
    from scipy.spatial.distance import pdist

    x = as_points(x)[:max_points]
    return float(np.median(pdist(x)))
