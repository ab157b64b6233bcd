"""The sweep progress reporter: plain lines off a terminal, the time-left arithmetic, the bar."""

import io

import pytest

from kswgd.reports.progress import Progress, format_seconds


class FakeClock:
    """A clock the test advances by hand (no real timing)."""

    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_format_seconds_minutes_and_hours():
    assert format_seconds(None) == "?"
    assert format_seconds(0) == "0:00"
    assert format_seconds(59.6) == "1:00"
    assert format_seconds(61) == "1:01"
    assert format_seconds(3600 + 2 * 60 + 3) == "1:02:03"


def test_eta_is_mean_duration_times_remaining_runs_over_workers():
    clock = FakeClock()
    p = Progress(10, io.StringIO(), clock=clock, workers=2)
    assert p.eta() is None  # nothing finished: no estimate
    p.skipped("a")  # skipped runs cost nothing and do not enter the mean
    p.finished("b", "ok", 4.0)
    p.finished("c", "failed", 8.0)
    # mean 6 s × (10 − 3) remaining / 2 workers
    assert p.eta() == pytest.approx(6.0 * 7 / 2)
    for k in range(7):
        p.finished(f"r{k}", "ok", 6.0)
    assert p.eta() == 0.0
    clock.now += 42.0
    assert p.elapsed() == pytest.approx(42.0)


def test_plain_mode_prints_one_line_per_run_with_counts_and_time_left():
    clock = FakeClock()
    stream = io.StringIO()  # not a terminal: plain mode
    with Progress(4, stream, clock=clock) as p:
        p.started("gaussian kswgd rep 0")  # nothing printed at the start of a run
        clock.now += 10.0
        p.finished("gaussian kswgd rep 0", "ok", 10.0)
        p.skipped("gaussian ula rep 0")
        p.started("gaussian svgd rep 0")
        clock.now += 20.0
        p.finished("gaussian svgd rep 0", "failed", 20.0)
    lines = stream.getvalue().splitlines()
    assert lines == [
        "[1/4] gaussian kswgd rep 0: ok in 10.0 s · 0 failed · elapsed 0:10 · left 0:30",
        "[2/4] gaussian ula rep 0: done before · 0 failed · elapsed 0:10 · left 0:20",
        "[3/4] gaussian svgd rep 0: failed in 20.0 s · 1 failed · elapsed 0:30 · left 0:15",
    ]


def test_live_mode_draws_a_bar_and_keeps_failures_visible():
    stream = io.StringIO()
    clock = FakeClock()
    with Progress(3, stream, clock=clock, live=True) as p:
        p.started("x")
        p.finished("x", "ok", 1.0)
        p.finished("y", "failed", 3.0)
        p.skipped("z")
    out = stream.getvalue()
    assert "3/3" in out and "1 failed" in out
    assert "y: failed in 3.0 s" in out


def test_bad_totals_are_rejected():
    with pytest.raises(ValueError, match="total"):
        Progress(-1, io.StringIO())
    with pytest.raises(ValueError, match="workers"):
        Progress(3, io.StringIO(), workers=0)


def test_skipped_runs_are_counted_apart_from_failures_and_cost_no_time():
    clock = FakeClock()
    stream = io.StringIO()
    p = Progress(5, stream, clock=clock)
    p.finished("circle svgd rep 0", "skipped", 0.0)   # cannot run: stored at once
    p.finished("circle ula rep 0", "skipped", 0.0)
    p.finished("circle kswgd rep 0", "ok", 10.0)
    p.finished("circle dmps rep 0", "failed", 0.0)    # failed without running (all pilots)
    assert (p.failed, p.skipped_count, p.done) == (1, 2, 4)
    # only the run that ran enters the mean: 10 s × 1 remaining
    assert p.eta() == pytest.approx(10.0)
    lines = stream.getvalue().splitlines()
    assert lines[1] == ("[2/5] circle ula rep 0: skipped · 0 failed · 2 skipped · "
                        "elapsed 0:00 · left ?")
    assert lines[3].endswith("1 failed · 2 skipped · elapsed 0:00 · left 0:10")


def test_a_failed_pilot_is_counted_apart_from_failed_runs():
    from kswgd.engine.driver import describe
    from kswgd.engine.spec import RunSpec

    spec = RunSpec.make(suite="s", dataset="gaussian", dataset_params={}, method="ula",
                        method_params={"step": 9.0}, label="ula", n_particles=10, n_steps=5,
                        n_train=10, n_reference=10, checkpoints=[0, 5], metrics=[],
                        floor_seeds=1, repetition=-1, pilot=True, root_seed=0, data_kind=None)
    stream = io.StringIO()
    with Progress(2, stream, clock=FakeClock()) as p:
        p.finished(describe(spec), "failed", 1.0)          # a diverging pilot step
        p.finished(describe(spec.with_repetition(0)), "failed", 1.0)   # a failed test run
    assert p.failed == 1 and p.pilots_failed == 1
    assert "1 failed · 1 pilots failed" in stream.getvalue().splitlines()[-1]
