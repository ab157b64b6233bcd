"""Peak memory of a run (kswgd.engine.memory.PeakMemory): the peak of arrays allocated while
measuring, the excluded callback's own peak and its leftovers left out, and tracemalloc
restored to how it was."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest

from kswgd.engine.memory import MB, PeakMemory

#: Python objects the test itself creates (frames, ints, the ndarray headers) stay far below this.
SLACK_MB = 0.25


def _block(mb: float) -> np.ndarray:
    """A numpy array of exactly ``mb`` MiB, every page written."""
    return np.ones(int(mb * MB) // 8)


def test_peak_is_the_largest_live_allocation_while_measuring_without_the_callback():
    was = tracemalloc.is_tracing()     # an interrupted in-process sweep of an earlier test
    memory = PeakMemory()              # may have left tracing on: stop() restores the state
    assert math.isnan(memory.peak_mb()) and memory.stop() is None
    kept = []

    def callback():                      # metrics: a 32 MiB temporary and a 4 MiB leftover
        tmp = _block(32)
        kept.append(_block(4))
        del tmp
        return memory.peak_mb()

    callback = memory.track(callback)
    a = _block(8)
    b = _block(4)                        # 12 MiB live at once
    del a, b
    seen = callback()
    assert seen == pytest.approx(12, abs=SLACK_MB)
    c = _block(10)                       # 10 MiB on top of the callback's 4 MiB leftover
    assert memory.peak_mb() == pytest.approx(12, abs=SLACK_MB)
    d = _block(6)                        # now 16 MiB of the run's own
    del c, d
    assert memory.stop() == pytest.approx(16, abs=SLACK_MB)
    assert tracemalloc.is_tracing() == was
    assert memory.stop() == memory.stop()  # stopping twice gives the same value


def test_a_process_already_tracing_keeps_tracing():
    tracemalloc.start()
    try:
        memory = PeakMemory()
        memory.track(lambda: None)
        x = _block(3)
        assert memory.stop() == pytest.approx(3, abs=SLACK_MB)
        assert tracemalloc.is_tracing()
        del x
    finally:
        tracemalloc.stop()


def test_arrays_of_numba_kernels_are_counted():
    from kswgd.core import _kernels

    n, f, d = 100_000, 2, 10
    x, z, psi, beta = np.zeros((n, d)), np.zeros((f, d)), np.zeros((n, f)), np.ones(f)
    _kernels.gauss_grad_dot(x[:4], z, psi[:4], beta, 1.0)     # compiled before measuring
    memory = PeakMemory()
    memory.track(lambda: None)
    out = _kernels.gauss_grad_dot(x, z, psi, beta, 1.0)      # its (n, d) output: 7.6 MiB
    assert memory.stop() == pytest.approx(out.nbytes / MB, abs=SLACK_MB)
