"""Parallel sweeps: the same numbers serially, with --jobs 2 and on a Dask LocalCluster; a
killed --jobs sweep resumes with every run exactly once; a lost worker's run is retried once,
then failed with the reason (and no other run is lost with it); a grid of many tiny runs is
skipped whole on the second call."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pytest

from kswgd import registry
from kswgd.engine import store
from kswgd.engine.driver import run_suite
from kswgd.engine.executors import DaskExecutor, ProcessExecutor, SerialExecutor
from kswgd.engine.spec import CLOCK_COLUMNS
from kswgd.engine.suite import load_suite

SUITE = """
name = "par"
root_seed = 11
repetitions = 3
n_particles = 50
n_steps = 100
n_checkpoints = 2
n_train = 300
n_reference = 100
metrics = ["w2", "mmd2"]
floor_seeds = 2
step_grid = [0.05, 0.2]

[[datasets]]
name = "gaussian"
params = { d = 2 }

[[methods]]
name = "ula"

[[methods]]
name = "kswgd"
params = { rank = 5, n_features = 40 }
"""

#: Columns that hold wall-clock times and the peak memory (a worker's first run also counts its
#: lazy imports): the only ones allowed to differ between backends.
CLOCK = (*CLOCK_COLUMNS, "peak_mb")


def _write(tmp_path, text, name="s.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def _tidy(out):
    rows = store.load_rows(out)
    keep = [c for c in rows.columns if c not in CLOCK]
    return rows[keep].sort_values(["run_id", "iteration"]).reset_index(drop=True)


def _env():
    return {**os.environ, "OMP_WAIT_POLICY": "passive"}


@pytest.fixture(scope="module")
def pool():
    """Two worker processes shared by the tests (spawning them is the slow part)."""
    with ProcessExecutor(2, 1) as executor:
        yield executor


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The suite file and its serial results."""
    folder = tmp_path_factory.mktemp("reference")
    suite = _write(folder, SUITE)
    with SerialExecutor(1) as executor:
        run_suite(load_suite(str(suite)), folder / "serial", log=lambda s: None,
                  executor=executor)
    return suite, folder / "serial"


def test_serial_jobs_and_dask_give_identical_numbers(tmp_path, pool, reference):
    pytest.importorskip("distributed")
    path, serial = reference
    suite = load_suite(str(path))
    outs = {"serial": serial, "jobs": tmp_path / "jobs", "dask": tmp_path / "dask"}
    run_suite(suite, outs["jobs"], log=lambda s: None, executor=pool)
    with DaskExecutor("local:2", 1) as executor:
        run_suite(suite, outs["dask"], log=lambda s: None, executor=executor)
    ref = _tidy(outs["serial"])
    # a pilot may fail (a diverging step is what the protocol finds out); test runs may not
    assert len(ref) and (ref.loc[ref["repetition"] >= 0, "status"] == "ok").all()
    metric_cols = ["w2", "mmd2"] + [c for c in ref.columns if c.startswith(("diag.", "health."))]
    for name in ("jobs", "dask"):
        got = _tidy(outs[name])
        assert list(got["run_id"]) == list(ref["run_id"])
        # exact equality, NaN in the same places (health.max_step at iteration 0)
        for col in metric_cols:
            assert np.array_equal(got[col].to_numpy(), ref[col].to_numpy(), equal_nan=True), col
        pd.testing.assert_frame_equal(got, ref[got.columns], check_exact=True)
        mans = store.load_manifests(outs[name]).values()
        assert {m["backend"]["kind"] for m in mans} == {name}
        assert {m["threads"]["per_run"] for m in mans} == {1}
        assert {m["threads"]["numba"] for m in mans} == {1}
        assert all(b == 1 for m in mans for b in m["threads"]["blas"])
    # the floors and tuning records are the same files' contents too (but for the clocks)
    def unclocked(path):
        rec = json.loads(path.read_text())
        if isinstance(rec, dict) and "pilots" in rec:
            rec.pop("pilot_seconds")
            for p in rec["pilots"]:
                p.pop("seconds")
        return rec

    for sub in ("floors", "tuning"):
        assert any((outs["serial"] / sub).iterdir())
        for path in (outs["serial"] / sub).iterdir():
            assert unclocked(outs["jobs"] / sub / path.name) == unclocked(path)
            assert unclocked(outs["dask"] / sub / path.name) == unclocked(path)


def _default_sigint():
    """SIGINT back to its default in the child: a test run started in the background (``&``)
    inherits SIGINT ignored, and Python then never turns it into a KeyboardInterrupt (the
    sweep would finish despite the signal and exit 0)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _kill_jobs_sweep(suite, out, sig, delay, total):
    """Start `kswgd run --jobs 2` in its own process group, wait for its first stored run and
    ``delay`` seconds more (or until half of the ``total`` runs are stored, so that a fast
    machine cannot finish the sweep before the signal), then send ``sig`` to the whole group
    (driver and workers)."""
    proc = subprocess.Popen([sys.executable, "-m", "kswgd.cli", "run", "--suite", str(suite),
                             "--out", str(out), "--jobs", "2"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env(),
                            start_new_session=True, preexec_fn=_default_sigint)
    t0 = time.time()
    while not list((out / "runs").glob("*/manifest.json")) and time.time() - t0 < 90:
        time.sleep(0.02)
    t1 = time.time()
    while (time.time() - t1 < delay
           and len(list((out / "runs").glob("*/manifest.json"))) < total // 2):
        time.sleep(0.005)
    os.killpg(proc.pid, sig)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_killed_jobs_sweep_resumes_with_every_run_once(tmp_path, sig, pool, reference):
    suite, ref = reference
    out = tmp_path / "out"
    delay = np.random.default_rng(int(sig)).uniform(0.0, 0.5)
    code, err = _kill_jobs_sweep(suite, out, sig, delay, len(store.finished_ids(ref)))
    if sig == signal.SIGINT:
        assert code == 130 and "Traceback" not in err, err
        assert "run the same command to resume" in err.strip().splitlines()[-1]
    else:
        assert code == -signal.SIGKILL
    before = {rid: store.run_dir(out, rid).joinpath("manifest.json").read_bytes()
              for rid in store.finished_ids(out)}
    assert before and len(before) < len(store.finished_ids(ref))
    logs = []
    run_suite(load_suite(str(suite)), out, log=logs.append, executor=pool)
    # runs stored before the kill were not computed again; the rest once each
    assert sum("done before" in ln for ln in logs) == len(before)
    for rid, manifest in before.items():
        assert store.run_dir(out, rid).joinpath("manifest.json").read_bytes() == manifest
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    runs = sorted(p.name for p in (out / "runs").iterdir())
    assert runs == store.finished_ids(out) == store.finished_ids(ref)
    for rid in runs:
        assert sorted(p.name for p in store.run_dir(out, rid).iterdir()) == sorted(
            p.name for p in store.run_dir(ref, rid).iterdir())
    pd.testing.assert_frame_equal(_tidy(out), _tidy(ref)[_tidy(out).columns])


CRASH = '''
"""Test plug-in: a sampler whose step kills its own process (a worker lost mid-run), always
or only the first time (when its marker file does not exist yet)."""
import os
from pathlib import Path

from kswgd.sampler import Sampler


class Crash(Sampler):
    name = "crash"
    parameters = {"step": 0.1, "marker": ""}
    uses = ()
    data_kind = None

    def step(self, x, rng):
        marker = self.params["marker"]
        if not marker or not Path(marker).exists():
            if marker:
                Path(marker).write_text("died once")
            os._exit(3)
        return x - self.params["step"] * x
'''


def _crash_suite(tmp_path, label, params):
    """ula and one crash method, one repetition each, fixed steps."""
    text = GRID.format(reps=1).replace("n_steps = 5", "n_steps = 20") + textwrap.dedent(f"""
        [[methods]]
        name = "crash"
        label = "{label}"
        params = {params}
        """)
    return load_suite(str(_write(tmp_path, text, f"{label}.toml")))


def test_a_lost_worker_is_retried_once_alone_then_a_failed_run(tmp_path, monkeypatch):
    (tmp_path / "plug" / "baselines").mkdir(parents=True)
    (tmp_path / "plug" / "baselines" / "crash.py").write_text(CRASH)
    monkeypatch.setenv("KSWGD_PLUGIN_PATH", str(tmp_path / "plug"))  # workers read it at import
    registry.samplers.cache_clear()
    marker = tmp_path / "marker"
    try:
        finals = {}
        for label, params in [("always", "{}"), ("once", f'{{ marker = "{marker}" }}')]:
            logs = []
            with ProcessExecutor(2, 1) as executor:  # new workers see the plug-in folder
                run_suite(_crash_suite(tmp_path, label, params), tmp_path / label,
                          log=logs.append, executor=executor)
            finals[label] = store.load_final(tmp_path / label).set_index("label")
            # only the crashing run is sent again: a dying worker takes no other run with it
            assert sum("submitted again" in ln for ln in logs) == 1
    finally:
        monkeypatch.delenv("KSWGD_PLUGIN_PATH")
        registry.samplers.cache_clear()
    always, once = finals["always"], finals["once"]
    assert always.loc["always", "status"] == "failed"
    assert "worker lost 2 times" in always.loc["always", "reason"]
    assert "WorkerLost" in always.loc["always", "reason"]
    assert "exit status 3" in always.loc["always", "reason"]  # the plug-in's os._exit(3)
    assert marker.read_text() == "died once"
    assert once.loc["once", "status"] == "ok"  # its second attempt succeeded
    # the sweep went on: the run in flight beside a dying worker finished
    assert always.loc["ula", "status"] == "ok" and once.loc["ula", "status"] == "ok"



def test_a_lost_dask_worker_is_retried_once_then_a_failed_run(tmp_path, monkeypatch):
    pytest.importorskip("distributed")
    (tmp_path / "plug" / "baselines").mkdir(parents=True)
    (tmp_path / "plug" / "baselines" / "crash.py").write_text(CRASH)
    monkeypatch.setenv("KSWGD_PLUGIN_PATH", str(tmp_path / "plug"))  # the workers inherit it
    registry.samplers.cache_clear()
    logs = []
    try:
        with DaskExecutor("local:2", 1) as executor:
            run_suite(_crash_suite(tmp_path, "always", "{}"), tmp_path / "out",
                      log=logs.append, executor=executor)
    finally:
        monkeypatch.delenv("KSWGD_PLUGIN_PATH")
        registry.samplers.cache_clear()
    final = store.load_final(tmp_path / "out").set_index("label")
    assert final.loc["always", "status"] == "failed"
    assert "worker lost 2 times" in final.loc["always", "reason"]
    assert "KilledWorker" in final.loc["always", "reason"]
    assert final.loc["ula", "status"] == "ok"
    assert sum("submitted again" in ln for ln in logs) == 1

GRID = """
name = "grid"
root_seed = 1
repetitions = {reps}
n_particles = 10
n_steps = 5
n_checkpoints = 1
n_train = 20
n_reference = 30
metrics = ["w2"]
floor_seeds = 1

[[datasets]]
name = "gaussian"
params = {{ d = 1 }}

[[methods]]
name = "ula"
params = {{ step = 0.1 }}
"""


def test_a_grid_of_tiny_runs_with_two_jobs_is_skipped_whole_the_second_time(tmp_path):
    suite = _write(tmp_path, GRID.format(reps=100))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "kswgd.cli", "run", "--suite", str(suite), "--out", str(out),
           "--jobs", "2"]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=_env())
    assert first.returncode == 0, first.stderr
    assert first.stderr.count(": ok in") == 100  # stderr is a pipe: one line per run
    assert len(store.finished_ids(out)) == 100
    manifests = store.load_manifests(out)
    assert {m["status"] for m in manifests.values()} == {"ok"}
    assert {m["backend"]["workers"] for m in manifests.values()} == {2}
    stamp = {rid: store.run_dir(out, rid).joinpath("manifest.json").stat().st_mtime_ns
             for rid in manifests}
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=_env())
    assert second.returncode == 0, second.stderr
    assert second.stderr.count("done before") == 100
    assert ": ok in" not in second.stderr
    assert stamp == {rid: store.run_dir(out, rid).joinpath("manifest.json").stat().st_mtime_ns
                     for rid in stamp}
    assert second.stdout == first.stdout  # the same leaderboard


def test_progress_grows_with_a_grid_extension_and_counts_every_run(tmp_path):
    """The driver reports each run once to the progress display, and one more per pilot added
    by the step rule's grid extension: the plain lines end at [total/total]."""
    import io

    from kswgd.reports.progress import Progress

    text = GRID.format(reps=2).replace("params = { step = 0.1 }", "params = {}")
    text = text.replace("floor_seeds = 1", "floor_seeds = 1\nstep_grid = [1e-4, 3e-4]")
    suite = load_suite(str(_write(tmp_path, text)))
    stream = io.StringIO()
    made = []

    def progress(total):
        made.append(Progress(total, stream, live=False))
        return made[0]

    run_suite(suite, tmp_path / "out", log=lambda s: None, progress=progress)
    lines = stream.getvalue().splitlines()
    n_runs = len(store.finished_ids(tmp_path / "out"))
    assert made[0].total == n_runs == len(lines) > 4  # 2 grid pilots + extensions + 2 reps
    assert lines[-1].startswith(f"[{n_runs}/{n_runs}]")
