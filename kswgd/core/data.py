"""The data containers the numerical core works on: training data, manifolds, a manifold step.

Plain records, imported by the estimators and samplers alike; plug-ins reach them through
``kswgd.dataset`` (or ``from kswgd import TrainingData, Manifold, move``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Manifold:
    """A compact embedded manifold M ⊂ R^d with the maps samplers need.

    project(x): nearest point of M, (N, d) -> (N, d).
    tangent(x, v): orthogonal projection P_x v of vectors v onto T_x M, (N, d) -> (N, d).
    retract(x): map points near M back onto M (default: ``project``).
    """

    name: str
    project: Callable[[np.ndarray], np.ndarray]
    tangent: Callable[[np.ndarray, np.ndarray], np.ndarray]
    intrinsic_dim: int

    def retract(self, x: np.ndarray) -> np.ndarray:
        return self.project(x)

    def distance(self, x: np.ndarray) -> np.ndarray:
        """Euclidean distance from each point to M, shape (N,)."""
        return np.linalg.norm(x - self.project(x), axis=1)


def as_points(x: np.ndarray) -> np.ndarray:
    """x as a C-contiguous float64 (N, d) array (ValueError otherwise): the cheap conversion of
    the numerical hot paths. User input is validated by ``kswgd.core.metrics.as_points``
    (n ≥ 2 finite rows, one-line ConfigError) before it gets here."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"points must be an (N, d) array, got shape {x.shape}")
    return x


def move(x: np.ndarray, dx: np.ndarray, manifold: Manifold | None) -> np.ndarray:
    """x + dx in R^d; on a manifold, retract(x + P_x dx) (tangent step, then retraction)."""
    if manifold is None:
        return x + dx
    return manifold.retract(x + manifold.tangent(x, dx))


@dataclass
class TrainingData:
    """What samplers may learn from.

    x: (M, d) static samples of π, or the start points of trajectory pairs.
    y: (M, d) end points of the pairs after lag ``lag``, or None for static samples only.
    """

    x: np.ndarray
    y: np.ndarray | None = None
    lag: float | None = None
    info: dict = field(default_factory=dict)

    @property
    def has_pairs(self) -> bool:
        return self.y is not None
