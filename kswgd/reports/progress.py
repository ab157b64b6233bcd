"""Progress of a sweep: runs finished of the total, failures, skipped runs (a method that cannot
run on a dataset), elapsed time and time left.

On a terminal a live bar (tqdm); otherwise (CI, a log file, a pipe) one plain line per finished
or skipped run, so a log reads as a record of the sweep.

The time left is estimated from the durations of the runs that actually ran (runs finished
before, skipped runs and failures stored without running cost nothing and are left out of the
average):

    left = mean(durations of runs that ran) × (total − done) / workers

where ``done`` counts every run accounted for and ``workers`` is the number of runs that
execute at the same time. No estimate is given before the first run has finished.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from kswgd.engine.driver import PILOT_TAG


def format_seconds(seconds: float | None) -> str:
    """``h:mm:ss`` (or ``m:ss`` under an hour); ``?`` when unknown."""
    if seconds is None:
        return "?"
    s = max(0, int(round(seconds)))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    """Report a sweep's progress on ``stream``.

    ``started(desc)`` when a run begins, ``finished(desc, status, seconds)`` when it ends
    (``status`` "ok", "skipped" — it cannot run, counted apart — or anything else, counted
    as a failure; ``seconds`` 0 for a result stored without running), ``skipped(desc)`` for
    a run that was finished before; ``close()`` at the end (or use it as a context manager).
    ``clock`` (monotonic seconds) is injectable for tests; ``live`` defaults to whether
    ``stream`` is a terminal.
    """

    def __init__(self, total: int, stream: TextIO | None = None, *, workers: int = 1,
                 clock: Callable[[], float] = time.monotonic, live: bool | None = None):
        if total < 0 or workers < 1:
            raise ValueError(f"need total >= 0 and workers >= 1, got {total}, {workers}")
        self.total, self.workers, self.clock = int(total), int(workers), clock
        self.stream = sys.stderr if stream is None else stream
        self.done = self.failed = self.skipped_count = self.done_before = 0
        self.pilots_failed = 0   # failed pilots exclude a configuration; no run failed
        self.durations: list[float] = []
        self.t0 = clock()
        if live is None:
            isatty = getattr(self.stream, "isatty", None)
            live = bool(isatty and isatty())
        self._bar = None
        if live:
            from tqdm import tqdm

            # tqdm's own rate and remaining time would count skipped runs (instantaneous):
            # the bar shows ours instead.
            self._bar = tqdm(total=self.total, file=self.stream, unit="run", leave=True,
                             dynamic_ncols=True,
                             bar_format="{desc}{percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt}"
                                        " {postfix}")
            self._bar.set_postfix_str(self._status(), refresh=True)

    # --- the arithmetic -------------------------------------------------------------------
    def elapsed(self) -> float:
        """Seconds since the reporter was created."""
        return self.clock() - self.t0

    def eta(self) -> float | None:
        """Estimated seconds left: mean finished duration × remaining runs / workers."""
        if not self.durations:
            return None if self.done < self.total else 0.0
        remaining = max(self.total - self.done, 0)
        return sum(self.durations) / len(self.durations) * remaining / self.workers

    def _status(self) -> str:
        skipped = f" · {self.skipped_count} skipped" if self.skipped_count else ""
        if self.pilots_failed:
            skipped += f" · {self.pilots_failed} pilots failed"
        return (f"{self.failed} failed{skipped} · elapsed {format_seconds(self.elapsed())} · "
                f"left {format_seconds(self.eta())}")

    # --- events ---------------------------------------------------------------------------
    def started(self, desc: str) -> None:
        """A run has begun (shown on the live bar; plain mode prints one line per end)."""
        if self._bar is not None:
            self._bar.set_description_str(f"{desc} ", refresh=True)

    def finished(self, desc: str, status: str, seconds: float) -> None:
        """A run has ended with ``status`` after ``seconds`` of wall-clock."""
        self.done += 1
        if status == "skipped":
            self.skipped_count += 1
            self._emit(f"{desc}: skipped")
            return
        if seconds > 0:
            self.durations.append(float(seconds))
        if status != "ok" and PILOT_TAG in desc:
            self.pilots_failed += 1
        elif status != "ok":
            self.failed += 1
        self._emit(f"{desc}: {status} in {seconds:.1f} s", alert=status != "ok")

    def skipped(self, desc: str) -> None:
        """A run was finished before (nothing to compute; not counted as skipped)."""
        self.done += 1
        self.done_before += 1
        self._emit(f"{desc}: done before")

    def grow(self, n: int = 1) -> None:
        """``n`` runs more than announced (a step grid extended past its edge)."""
        self.total += int(n)
        if self._bar is not None:
            self._bar.total = self.total
            self._bar.refresh()

    def _emit(self, what: str, alert: bool = False) -> None:
        if self._bar is not None:
            if alert:  # a failure stays visible above the bar
                self._bar.write(what, file=self.stream)
            self._bar.set_postfix_str(self._status(), refresh=False)
            self._bar.update(1)
            return
        width = len(str(self.total))
        print(f"[{self.done:{width}d}/{self.total}] {what} · {self._status()}",
              file=self.stream, flush=True)

    def close(self) -> None:
        """End the bar (live mode); in plain mode, nothing more is printed."""
        if self._bar is not None:
            self._bar.set_description_str("", refresh=False)
            self._bar.set_postfix_str(self._status(), refresh=True)
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


__all__ = ["Progress", "format_seconds"]
