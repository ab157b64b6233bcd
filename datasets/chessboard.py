"""Chessboard: uniform law on the 8 "black" cells of a 4 × 4 board on [−2, 2]² (cells (i, j)
with i + j even, i, j = 0..3 from the lower left). Static samples only, no density gradient
(the density is piecewise constant), exact draws. Initial particles: N(0, init_scale² I).
Task metrics: ``off_board`` (share of particles outside the black cells; 0 for π) and
``cell_tv`` (TV between the particles' shares of the 8 black cells and 1/8, off-board particles
counted as a ninth cell of mass 0).
"""

from __future__ import annotations

import numpy as np

from kswgd.dataset import Dataset, TrainingData
from kswgd.helpers import basin_tv, kind_or_default
from kswgd.params import Interval

_CELLS = np.array([(i, j) for i in range(4) for j in range(4) if (i + j) % 2 == 0])


class Chessboard(Dataset):
    name = "chessboard"
    description = "uniform on the black cells of a 4x4 board on [-2,2]²; static samples"
    parameters = {"init_scale": 0.5}
    constraints = {
        "init_scale": Interval(float, 0, None, closed="neither"),
    }
    data_kinds = ("samples",)

    @property
    def dim(self) -> int:
        return 2

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        c = _CELLS[rng.integers(0, len(_CELLS), n)]
        return c - 2.0 + rng.random((n, 2))

    def train(self, n: int, rng: np.random.Generator, kind: str | None = None) -> TrainingData:
        kind_or_default(kind, self.data_kinds, self.name)
        return TrainingData(self.draw(n, rng))

    def initial(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.params["init_scale"] * rng.standard_normal((n, 2))

    def log_density(self, x: np.ndarray) -> np.ndarray:
        """log(1/8) on the black cells (total area 8), −inf elsewhere."""
        return np.where(self.cell_index(x) < 8, -np.log(8.0), -np.inf)

    @staticmethod
    def cell_index(x: np.ndarray) -> np.ndarray:
        """Index 0..7 of the black cell holding each point, 8 if none."""
        ij = np.floor(x + 2.0).astype(int)
        inside = np.all((ij >= 0) & (ij <= 3), axis=1) & (ij.sum(axis=1) % 2 == 0)
        lookup = {tuple(c): k for k, c in enumerate(_CELLS)}
        return np.array([lookup[tuple(t)] if ok else 8 for t, ok in zip(ij, inside, strict=True)],
                        dtype=int)

    def task_metrics(self):
        def off_board(particles: np.ndarray) -> float:
            return float(np.mean(self.cell_index(particles) == 8))

        def cell_tv(particles: np.ndarray) -> float:
            return basin_tv(self.cell_index(particles), np.append(np.full(8, 1 / 8), 0.0))

        return {"off_board": off_board, "cell_tv": cell_tv}
