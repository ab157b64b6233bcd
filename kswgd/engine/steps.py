"""The step-size rule: pilots over a grid, extended at its edges, and the choice.

When a suite gives ``step_grid`` and a method's parameters do not fix ``step``, one pilot run
per grid value is scored and the step with the smallest pilot score is chosen
(:func:`choose_step`); :class:`StepSearch` is the rule as a state machine, so the driver can
run the grid's pilots in parallel.
"""
from __future__ import annotations

from kswgd.engine.plan import MethodPlan

#: The step-size rule extends its grid at most this many times in all (both sides together).
MAX_GRID_EXTENSIONS = 2


class StepSearch:
    """The step-size rule of one method plan as a state machine, so its pilots can run in
    parallel: the grid's pilots are independent; once all have reported, :meth:`next_step`
    gives the grid extension to try (one at a time, each depending on the previous scores) or
    None when the choice is made. The rule is described at :func:`choose_step_pilots`."""

    def __init__(self, mp: MethodPlan):
        self.mp = mp
        self.scores: dict[float, float] = {}
        self.reasons: dict[float, str] = {}
        self.waiting = len(mp.grid)
        self.extensions = 0
        grid = sorted(mp.grid)
        self.single = len(grid) == 1
        self.up = grid[-1] / grid[-2] if len(grid) > 1 else 3.0
        self.down = grid[1] / grid[0] if len(grid) > 1 else 3.0

    def record(self, step: float, value: float | None, why: str | None) -> None:
        if value is None:
            self.reasons[step] = why
        else:
            self.scores[step] = value
        self.waiting -= 1

    def next_step(self) -> float | None:
        """The next pilot step beyond the edge of the steps tried, or None (done)."""
        if self.waiting or self.extensions >= MAX_GRID_EXTENSIONS:
            return None
        best = choose_step(self.scores)
        tried = sorted(set(self.scores) | set(self.reasons))
        if best is None:                     # every pilot failed: try a smaller step
            if not tried:
                return None
            step = float(f"{tried[0] / self.down:.6g}")
        elif len(tried) < 2 and not self.single:
            return None
        elif best == tried[-1]:
            step = float(f"{tried[-1] * self.up:.6g}")
        elif best == tried[0]:
            step = float(f"{tried[0] / self.down:.6g}")
        else:
            return None
        self.extensions += 1
        self.waiting += 1
        return step


def choose_step(scores: dict[float, float]) -> float | None:
    """The step with the smallest pilot score (ties: the larger step); None if no score."""
    if not scores:
        return None
    best = min(scores.values())
    return max(h for h, v in scores.items() if v == best)


def choose_step_pilots(mp: MethodPlan, score):
    """Run the pilots of the step-size rule one after another: every step of the grid, then,
    while the best step is the largest (smallest) step tried, one more step beyond it at the
    grid's outer ratio (the ratio of its two outermost steps on that side, 3 for a one-step
    grid), at most MAX_GRID_EXTENSIONS times in all; while every pilot has failed, one more
    step below the smallest. ``score(spec)`` gives (value, None) or
    (None, reason). Returns ({step: score}, {step: failure reason}). The driver runs the same
    rule (:class:`StepSearch`) with the grid's pilots in parallel."""
    search = StepSearch(mp)
    for h in mp.grid:
        search.record(h, *score(mp.pilot(h)))
    while (h := search.next_step()) is not None:
        search.record(h, *score(mp.pilot(h)))
    return search.scores, search.reasons
