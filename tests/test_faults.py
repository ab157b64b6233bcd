"""Faults of a sweep, through the real ``kswgd run`` (a subprocess, as a user runs it) with a
test plug-in on KSWGD_PLUGIN_PATH: a run over its time limit, plug-in code that exits or raises
KeyboardInterrupt, the driver killed (SIGKILL) or stopped (SIGTERM), two sweeps on one folder.

The plug-in's step misbehaves at step ``at`` (a fixed, known step), so every reason stored is
checked against an exact string."""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import pytest
from test_cli_errors import _COMMAND, kswgd_cli

from kswgd import registry
from kswgd.engine import store
from kswgd.engine.driver import SweepInterrupted, run_suite
from kswgd.engine.executors import SerialExecutor
from kswgd.engine.plan import plan_suite
from kswgd.engine.suite import load_suite

PLUGIN = '''
"""Test plug-in: a sampler that misbehaves at step ``at`` (``mode``), or sleeps every step."""
import os
import signal
import time

from kswgd.sampler import Sampler


class Boom(BaseException):
    """A BaseException that is neither SystemExit nor KeyboardInterrupt."""


class Faulty(Sampler):
    name = "faulty"
    parameters = {"step": 0.1, "mode": "ok", "at": 3, "sleep": 0.0}
    uses = ()
    data_kind = None

    def setup(self, dataset, train, rng):
        self.k = 0

    def step(self, x, rng):
        self.k += 1
        mode = self.params["mode"]
        if self.k == self.params["at"]:
            if mode == "hang":
                time.sleep(1e6)
            elif mode == "exit":
                raise SystemExit(4)
            elif mode == "ctrlc":
                raise KeyboardInterrupt
            elif mode == "boom":
                raise Boom("plug-in bug")
            elif mode == "sigint":  # a genuine Ctrl-C to the process running this step
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(5)
        time.sleep(self.params["sleep"])
        return x - self.params["step"] * x
'''

HEAD = """
name = "faults"
root_seed = 1
repetitions = 1
n_particles = 10
n_steps = 6
n_checkpoints = 1
n_train = 20
n_reference = 30
metrics = ["w2"]
floor_seeds = 1
{extra}

[[datasets]]
name = "gaussian"
params = {{ d = 1 }}

[[methods]]
name = "ula"
params = {{ step = 0.1 }}
"""


def _method(label: str, params: str) -> str:
    return f'\n[[methods]]\nname = "faulty"\nlabel = "{label}"\nparams = {params}\n'


@pytest.fixture
def plug(tmp_path, monkeypatch):
    """The test plug-in on KSWGD_PLUGIN_PATH, for subprocesses and for this process."""
    (tmp_path / "plug" / "baselines").mkdir(parents=True)
    (tmp_path / "plug" / "baselines" / "faulty.py").write_text(PLUGIN)
    monkeypatch.setenv("KSWGD_PLUGIN_PATH", str(tmp_path / "plug"))
    registry.samplers.cache_clear()
    yield
    monkeypatch.delenv("KSWGD_PLUGIN_PATH")
    registry.samplers.cache_clear()


def _suite(tmp_path, methods: str, extra: str = "") -> Path:
    path = tmp_path / "s.toml"
    path.write_text(textwrap.dedent(HEAD.format(extra=extra)) + methods)
    return path


def _finals(out: Path) -> dict[str, tuple[str, str | None]]:
    """label -> (status, reason) of every stored run."""
    return {m["spec"]["label"]: (m["status"], m["reason"])
            for m in store.load_manifests(out).values()}


def _run(tmp_path, *args: str) -> subprocess.CompletedProcess:
    return kswgd_cli("run", "--suite", "s.toml", "--out", "out", "--quiet", *args,
                     cwd=tmp_path, status=0)


# -- time limit ---------------------------------------------------------------------------------

@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_step_that_never_returns_is_stopped_at_the_limit_and_stored_failed(tmp_path, plug,
                                                                             jobs):
    # the suite says 3600 s; the command line's 1 s wins. The hanging step is step 3, so the
    # stored reason is exact; the sweep goes on (ula ok) and ends well before a second limit.
    _suite(tmp_path, _method("hang", '{ mode = "hang" }'), "time_limit = 3600")
    t0 = time.monotonic()
    proc = _run(tmp_path, "--jobs", jobs, "--time-limit", "1")
    seconds = time.monotonic() - t0
    finals = _finals(tmp_path / "out")
    assert finals["hang"] == ("failed", "exceeded the time limit of 1 s at step 3")
    assert finals["ula"] == ("ok", None)
    assert "exceeded the time limit of 1 s at step 3" in proc.stdout  # listed under the board
    assert seconds < 100, seconds  # stopped: the suite alone would let it hang for 3600 s


def test_a_slow_run_in_this_process_stops_before_the_first_step_past_its_limit(tmp_path, plug):
    # In-process (no worker to kill) the limit is checked before each step. Each step sleeps
    # 0.25 s, so before step k at least 0.25 (k − 1) s have passed: with a 1 s limit the check
    # fires at k ≤ 6 (1.25 s > 1 s), and not before k = 2 unless the set-up alone took 1 s.
    suite = load_suite(str(_suite(tmp_path, _method("slow", "{ sleep = 0.25, at = 0 }"))))
    with SerialExecutor(1) as executor:
        run_suite(suite, tmp_path / "out", log=lambda s: None, executor=executor, time_limit=1)
    status, reason = _finals(tmp_path / "out")["slow"]
    prefix = "exceeded the time limit of 1 s at step "
    assert status == "failed" and reason.startswith(prefix), reason
    assert 2 <= int(reason.removeprefix(prefix)) <= 6


def test_the_time_limit_is_not_part_of_any_run_id(tmp_path, plug):
    ids = []
    for extra in ("", "time_limit = 5", "time_limit = 0.5"):
        plan = plan_suite(load_suite(str(_suite(tmp_path, _method("x", "{}"), extra))))
        ids.append([s.run_id for mp in plan.methods for s in mp.runs()])
    assert ids[0] == ids[1] == ids[2] and len(set(ids[0])) == 2


@pytest.mark.parametrize("args,extra,needle", [
    (("--time-limit", "0"), "", "--time-limit: must be a positive number of seconds"),
    (("--time-limit", "soon"), "", "--time-limit: expected a number of seconds"),
    ((), "time_limit = -3", "time_limit must be a finite number > 0"),
    ((), 'time_limit = "1h"', "time_limit must be a finite number > 0"),
])
def test_a_bad_time_limit_is_one_line_before_any_work(tmp_path, args, extra, needle):
    _suite(tmp_path, "", extra)
    err = kswgd_cli("run", "--suite", "s.toml", "--out", "out", *args, cwd=tmp_path).stderr
    assert needle in err
    assert not (tmp_path / "out").exists()


# -- exits and interrupts raised by plug-in code --------------------------------------------

FAULTS = (_method("exit", '{ mode = "exit" }') + _method("ctrlc", '{ mode = "ctrlc" }')
          + _method("boom", '{ mode = "boom" }'))
REASONS = {"exit": "SystemExit: plug-in code exited (status 4)",
           "ctrlc": "KeyboardInterrupt raised by plug-in code (no Ctrl-C arrived)",
           "boom": "Boom: plug-in bug", "ula": None}


def test_plugin_exits_and_interrupts_are_failed_runs_and_the_sweep_goes_on(tmp_path, plug):
    _suite(tmp_path, FAULTS)
    _run(tmp_path)
    finals = _finals(tmp_path / "out")
    assert finals == {k: ("ok" if v is None else "failed", v) for k, v in REASONS.items()}


def test_plugin_exits_in_this_process_are_failed_runs_too(tmp_path, plug):
    suite = load_suite(str(_suite(tmp_path, FAULTS)))
    with SerialExecutor(1) as executor:
        run_suite(suite, tmp_path / "out", log=lambda s: None, executor=executor)
    finals = _finals(tmp_path / "out")
    assert finals == {k: ("ok" if v is None else "failed", v) for k, v in REASONS.items()}


def test_a_genuine_ctrl_c_during_plugin_code_still_stops_the_sweep(tmp_path, plug):
    # the same step sends a real SIGINT to this process: not a failed run but an interrupt,
    # and the run is not stored (it resumes)
    suite = load_suite(str(_suite(tmp_path, _method("sig", '{ mode = "sigint" }'))))
    # Ctrl-C as an interactive terminal delivers it, whatever this test process inherited (a
    # test run started with `&` ignores SIGINT, and a sweep keeps an ignored SIGINT ignored)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with SerialExecutor(1) as executor, pytest.raises(SweepInterrupted):
            run_suite(suite, tmp_path / "out", log=lambda s: None, executor=executor)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert "sig" not in _finals(tmp_path / "out")


# -- the driver dies or is stopped ------------------------------------------------------------

def _children(pid: int) -> set[int]:
    """Every live descendant of ``pid`` (Linux /proc)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, todo = set(), [pid]
    while todo:
        p = todo.pop()
        kids = {c for c, pp in parents.items() if pp == p}
        found |= kids
        todo += kids
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _start_hanging_sweep(tmp_path, out="out"):
    """``kswgd run --jobs 2`` on ula and two runs that hang at steps 3 and 4: returns the driver and
    its child processes once ula is stored and a second more has passed (the hanging runs are
    then in flight: the queue holds nothing else)."""
    _suite(tmp_path, _method("h1", '{ mode = "hang" }')
           + _method("h2", '{ mode = "hang", at = 4 }'), "time_limit = 60")
    proc = subprocess.Popen([*_COMMAND, "run", "--suite", "s.toml", "--out", out, "--jobs", "2"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=lambda: signal.signal(signal.SIGINT,
                                                                        signal.SIG_DFL))
    t0 = time.monotonic()
    while time.monotonic() - t0 < 60:
        if len(list((tmp_path / out / "runs").glob("*/manifest.json"))) >= 1:  # ula stored
            break
        time.sleep(0.05)
    time.sleep(1.0)  # the hang runs are submitted next and sleep at their step 3
    workers = _children(proc.pid)
    assert proc.poll() is None and workers, proc.stderr.read() if proc.poll() else ""
    return proc, workers


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_workers_exit_within_seconds_of_their_driver_being_killed(tmp_path, plug):
    proc, workers = _start_hanging_sweep(tmp_path)
    os.kill(proc.pid, signal.SIGKILL)  # the driver only: its workers are not signalled
    t0 = time.monotonic()
    # the workers held the driver's stderr: it reaches EOF once they are all gone
    proc.communicate(timeout=10)
    while any(_alive(p) for p in workers) and time.monotonic() - t0 < 5:
        time.sleep(0.05)
    assert not [p for p in workers if _alive(p)]
    assert time.monotonic() - t0 < 5


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_sigterm_stops_the_sweep_like_ctrl_c_and_it_resumes(tmp_path, plug):
    proc, workers = _start_hanging_sweep(tmp_path)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert err.strip().splitlines()[-1].endswith("run the same command to resume")
    # the workers are killed on the way out; the kernel may reap them a moment after the
    # driver's exit on a loaded machine: the same 5 s as when the driver itself is killed
    t0 = time.monotonic()
    while any(_alive(p) for p in workers) and time.monotonic() - t0 < 5:
        time.sleep(0.05)
    assert not [p for p in workers if _alive(p)]
    assert _finals(tmp_path / "out") == {"ula": ("ok", None)}  # the hung runs are not stored
    proc = _run(tmp_path, "--time-limit", "1")  # resumes: the lock went with the driver
    finals = _finals(tmp_path / "out")
    assert finals["h1"] == ("failed", "exceeded the time limit of 1 s at step 3")
    assert finals["h2"] == ("failed", "exceeded the time limit of 1 s at step 4")


# -- one sweep per folder -----------------------------------------------------------------------

@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_a_second_sweep_on_the_same_folder_is_refused_naming_the_holder(tmp_path, plug):
    proc, _ = _start_hanging_sweep(tmp_path)
    try:
        before = sorted(p.name for p in (tmp_path / "out" / "runs").iterdir())
        err = kswgd_cli("run", "--suite", "s.toml", "--out", "out", cwd=tmp_path).stderr
        assert f"in use by another kswgd run (pid {proc.pid})" in err, err
        assert sorted(p.name for p in (tmp_path / "out" / "runs").iterdir()) == before
        # another folder is free
        kswgd_cli("run", "--suite", "s.toml", "--out", "other", "--method", "ula", "--quiet",
                  cwd=tmp_path, status=0)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=10)
    # the kernel released the killed driver's lock: the folder is usable at once
    kswgd_cli("run", "--suite", "s.toml", "--out", "out", "--method", "ula", "--quiet",
              cwd=tmp_path, status=0)


@pytest.mark.parametrize(("args", "needle"), [
    (("--scheduler", "local:x"), "worker count N"),
    (("--scheduler", "local:0"), "worker count N"),
    (("--jobs", "2", "--scheduler", "local:1"), "not both"),
    (("--scheduler", "bogus"), "such as tcp://HOST:8786"),         # no port: Dask's ValueError
    (("--scheduler", "tcp://127.0.0.1:99999"), "such as tcp://HOST:8786"),
])
def test_a_bad_backend_is_one_line_and_creates_no_results_folder(tmp_path, args, needle):
    out = tmp_path / "never"
    proc = kswgd_cli("run", "--suite", "smoke", "--out", str(out), *args, cwd=tmp_path)
    assert needle in proc.stderr
    assert not out.exists()
