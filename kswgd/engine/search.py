"""The tuning search of one method plan as a state machine, so its pilots run in parallel.

A tuned method's pilots (every configuration × step × validation repetition of its
:class:`~kswgd.engine.plan.MethodPlan`) are independent; once all have reported,
:meth:`TuningSearch.next_pilots` gives the grid extension to pilot (each depends on the
scores before it) or None, and :meth:`TuningSearch.choose` applies the protocol's selection
rule (:func:`kswgd.engine.tuning.select`). The extension keeps a step grid from cutting the
choice off at its edge: while no configuration counts, every configuration is piloted at one
step below the grid; while the chosen step is the grid's largest (smallest, with more than one
step), the chosen configuration is piloted one step beyond it, at the grid's outer ratio (3
for a one-step grid); at most :data:`MAX_GRID_EXTENSIONS` times in all.
"""
from __future__ import annotations

from kswgd.engine.plan import MethodPlan
from kswgd.engine.spec import RunSpec
from kswgd.engine.tuning import Choice, Pilot, select

#: The step grid is extended at most this many times in all (both sides together).
MAX_GRID_EXTENSIONS = 2


class TuningSearch:
    """The pilots and the choice of one tuned method plan."""

    def __init__(self, mp: MethodPlan):
        self.mp = mp
        self.steps = sorted(mp.steps)
        self._pilots: dict[str, Pilot] = {}   # pilot run id -> its record, as reported
        self.specs: dict[str, dict] = {}      # pilot run id -> its full configuration
        self.waiting = 0
        self.extensions = 0
        s = self.steps
        self.up = s[-1] / s[-2] if len(s) > 1 else 3.0
        self.down = s[1] / s[0] if len(s) > 1 else 3.0

    def _add(self, configs: list[dict]) -> list[RunSpec]:
        specs = [self.mp.pilot(c, rep) for c in configs for rep in self.mp.validation]
        for spec, (c, _) in zip(specs, [(c, r) for c in configs for r in self.mp.validation],
                                strict=True):
            self.specs[spec.run_id] = c
        self.waiting += len(specs)
        return specs

    def initial(self) -> list[RunSpec]:
        """The pilots of the whole planned grid."""
        return self._add(self.mp.grid())

    def record(self, run_id: str, pilot: Pilot) -> None:
        self._pilots[run_id] = pilot
        self.waiting -= 1

    @property
    def pilots(self) -> list[Pilot]:
        """The pilots reported so far in planned order (configuration, step, repetition), not
        in the order they finished: the choice and its tie-breaks never depend on timing."""
        return [self._pilots[rid] for rid in self.specs if rid in self._pilots]

    def choose(self) -> Choice:
        """The protocol's choice from every pilot so far; the step margin applies when the
        test fit sees more data than the pilots' (the held-out class)."""
        return select(self.pilots, margin=self.mp.held_out > 0,
                      steps=self.steps or None)

    def next_pilots(self) -> list[RunSpec] | None:
        """The pilots of the next grid extension, or None (the choice is made)."""
        if self.waiting or not self.steps or self.extensions >= MAX_GRID_EXTENSIONS:
            return None
        choice = self.choose()
        if choice.validated is None:                   # nothing counts: a smaller step
            step, configs = self.steps[0] / self.down, list(self.mp.configs)
        else:
            h = float(choice.validated["step"])
            rest = {k: v for k, v in choice.validated.items() if k != "step"}
            if h == self.steps[-1]:
                step = h * self.up
            elif h == self.steps[0] and len(self.steps) > 1:
                step = h / self.down
            else:
                return None
            configs = [rest]
        step = float(f"{step:.6g}")
        self.extensions += 1
        self.steps = sorted({*self.steps, step})
        return self._add(self.mp.grid((step,), configs))
