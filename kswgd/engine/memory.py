"""Peak memory of a run's fit and sampling, measured with :mod:`tracemalloc`.

What is counted: every block allocated through Python's allocators after tracking starts and
still alive at the moment of the peak. numpy registers its array buffers with tracemalloc and
Numba's runtime allocates the arrays of jitted code through Python's raw allocator, so both are
seen. The peak of a run is

    peak = max over t of  traced(t) − traced(start) − excluded(t)

where ``excluded(t)`` is the net growth of traced memory inside the excluded callbacks so far
(the metrics and health checks at each checkpoint, whose matrices against the reference are the
harness's cost, not the sampler's); the peak inside those callbacks is left out too.

What is missed: memory allocated in C or C++ with ``malloc``/``new`` behind Python's back
(LAPACK workspaces of ``numpy.linalg`` and scipy, OpenBLAS buffers, POT's and cKDTree's C++
structures), thread stacks, and the inputs that existed before tracking began (the training
data, the reference): ``peak_mb`` is what the sampler allocates on top of its inputs. The
measurement is per process: two runs in threads of one process would be counted together (the
executors run one run per process at a time).
"""

from __future__ import annotations

import functools
import math
import tracemalloc
from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable)
MB = 2.0 ** 20


class PeakMemory:
    """Peak traced memory (MiB) between :meth:`track` and :meth:`stop`, leaving out the calls of
    the callback :meth:`track` wraps. Starts tracemalloc if it is not on, and stops it again
    only then (a process already tracing, e.g. ``python -X tracemalloc``, keeps tracing)."""

    def __init__(self) -> None:
        self.peak = 0.0          # bytes, over the measured segments
        self.base = 0            # traced bytes when tracking began
        self.excluded = 0        # net traced growth inside excluded calls
        self.owner = False       # whether this object started tracemalloc
        self.state = "idle"      # idle → measuring ⇄ paused → stopped

    def track(self, callback: F) -> F:
        """Start measuring now; return ``callback`` wrapped so that its calls are not measured
        (nor their net allocations counted afterwards)."""
        self.owner = not tracemalloc.is_tracing()
        if self.owner:
            tracemalloc.start(1)
        self.base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        self.state = "measuring"

        @functools.wraps(callback)
        def excluded(*args, **kwargs):
            before = self._pause()
            try:
                return callback(*args, **kwargs)
            finally:
                self._resume(before)

        return excluded  # type: ignore[return-value]

    def _pause(self) -> int:
        current, peak = tracemalloc.get_traced_memory()
        if self.state == "measuring":
            self.peak = max(self.peak, peak - self.base - self.excluded)
            self.state = "paused"
        return current

    def _resume(self, before: int) -> None:
        if self.state != "paused":
            return
        self.excluded += tracemalloc.get_traced_memory()[0] - before
        tracemalloc.reset_peak()
        self.state = "measuring"

    def peak_mb(self) -> float:
        """The peak so far in MiB (NaN before :meth:`track`)."""
        if self.state == "idle":
            return math.nan
        if self.state == "measuring":
            self.peak = max(self.peak, tracemalloc.get_traced_memory()[1] - self.base
                            - self.excluded)
        return self.peak / MB

    def stop(self) -> float | None:
        """End the measurement; the peak in MiB, or None when it never started."""
        if self.state == "idle":
            return None
        if self.state != "stopped":
            value = self.peak_mb()
            if self.owner and tracemalloc.is_tracing():
                tracemalloc.stop()
            self.state = "stopped"
            self.value = value
        return self.value


__all__ = ["PeakMemory"]
