"""Run specs, run identity, the results API, leaderboard groups, the step rule's grid
extension, run health, and the run command's bad inputs and interruptions (through the real
entry point)."""

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import cdist

from kswgd import registry
from kswgd.core.health import AWAY_FACTOR, health, training_index
from kswgd.engine import store
from kswgd.engine.driver import run_suite
from kswgd.engine.plan import plan_suite
from kswgd.engine.search import MAX_GRID_EXTENSIONS, TuningSearch
from kswgd.engine.spec import CLOCK_COLUMNS
from kswgd.engine.suite import load_suite
from kswgd.engine.tuning import Pilot, stranded
from kswgd.params import ConfigError
from kswgd.reports.leaderboard import comparable_groups, leaderboard

SUITE = """
name = "small"
root_seed = 3
repetitions = 2
n_particles = {n}
n_steps = 12
n_checkpoints = 2
n_train = 400
n_reference = 150
metrics = ["w2", "mmd2"]
floor_seeds = 2

[[datasets]]
name = "gaussian"
params = {{ d = 1 }}

[[methods]]
name = "ula"
params = {{ step = 0.1 }}
"""

PLUGIN = '''
"""A test plug-in: x <- x - h x (deterministic drift towards 0)."""
from kswgd.sampler import Sampler


class Drift(Sampler):
    name = "drift"
    parameters = {"step": 0.1}
    uses = ()
    data_kind = None

    def step(self, x, rng):
        return x - self.params["step"] * x
'''


def _write(tmp_path, text, name="s.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def _cli(*args, timeout=120):
    env = {**os.environ, "OMP_WAIT_POLICY": "passive"}
    return subprocess.run([sys.executable, "-m", "kswgd.cli", *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


def test_two_budgets_in_one_folder_are_two_groups_with_budget_columns(tmp_path):
    out = tmp_path / "out"
    for n in (40, 60):
        run_suite(load_suite(str(_write(tmp_path, SUITE.format(n=n), f"s{n}.toml"))), out,
                  log=lambda s: None)
    final = store.load_final(out)
    groups = comparable_groups(final)
    assert sorted(h["n_particles"] for h, _ in groups) == [40, 60]
    assert all(len(g) == 2 and g["n_particles"].nunique() == 1 for _, g in groups)
    csv = pd.read_csv(pd.io.common.StringIO(leaderboard(out, "csv")))
    assert {"n_particles", "n_steps", "n_train", "n_reference", "dataset.d",
            "method.step", "w2", "w2_ci95"} <= set(csv.columns)
    runs = csv[csv["kind"] == "method"]
    assert sorted(runs["n_particles"]) == [40, 60] and set(runs["ok"]) == {2}
    # the interval is the Student-t one over the two repetitions
    g = final[final["n_particles"] == 40]["w2"].to_numpy()
    half = 12.706204736 * g.std(ddof=1) / np.sqrt(2)
    assert runs[runs["n_particles"] == 40]["w2_ci95"].iloc[0] == pytest.approx(half, rel=1e-6)
    board = leaderboard(out)
    assert board.count("### gaussian") == 2 and "differs in: n_particles" in board
    floors = store.load_floors(out)
    assert set(floors["kind"]) == {"noise", "data"} and set(floors["n_particles"]) == {40, 60}


def test_boards_drawn_from_rows_read_once_equal_boards_read_fresh(tmp_path):
    # report and publish read a folder once (stored_rows) and draw every group's board from it;
    # each board must equal the one read from disk for its runs alone, labels included (two ula
    # configurations share a label), and drawing must leave the shared rows untouched
    from kswgd.reports.leaderboard import leaderboard_markdown, stored_rows
    from kswgd.reports.report import folder_sources, markdown_to_html, render_report

    out = tmp_path / "out"
    extra = '\n[[methods]]\nname = "ula"\nparams = {{ step = 0.2 }}\n'
    for n in (40, 60):
        run_suite(load_suite(str(_write(tmp_path, (SUITE + extra).format(n=n), f"s{n}.toml"))),
                  out, log=lambda s: None)
    stored, floors = stored_rows(out), store.load_floors(out)
    before = stored.copy()
    groups = comparable_groups(store.load_final(out))
    assert len(groups) == 2
    for _, g in groups:
        ids = sorted(set(g["run_id"]))
        fresh = leaderboard_markdown(out, ids)
        assert "ula(step=0.1)" in fresh and "ula(step=0.2)" in fresh
        assert leaderboard_markdown(out, ids, stored=stored, floors=floors) == fresh
    assert leaderboard(out, "csv", stored=stored, floors=floors) == leaderboard(out, "csv")
    pd.testing.assert_frame_equal(stored, before)
    page = render_report(folder_sources(out))
    for _, g in groups:
        assert markdown_to_html(leaderboard_markdown(out, sorted(set(g["run_id"])))) in page


def test_run_id_ignores_the_label_and_follows_the_code(tmp_path):
    plan = plan_suite(load_suite(str(_write(tmp_path, SUITE.format(n=40)))))
    spec = plan.methods[0].base
    assert replace(spec, label="other", suite="x").run_id == spec.run_id
    assert replace(spec, code="0" * 16).run_id != spec.run_id
    assert spec.with_repetition(1).run_id != spec.run_id
    cols = spec.columns()
    assert cols["dataset.d"] == 1 and cols["method.step"] == 0.1 and cols["uses"] == "score"


def test_editing_a_plugin_reruns_its_runs_and_skips_the_others(tmp_path, monkeypatch):
    plugins = tmp_path / "plugins"
    (plugins / "baselines").mkdir(parents=True)
    source = plugins / "baselines" / "drift.py"
    source.write_text(PLUGIN)
    monkeypatch.setenv("KSWGD_PLUGIN_PATH", str(plugins))
    registry.samplers.cache_clear()
    try:
        text = SUITE.format(n=40) + '\n[[methods]]\nname = "drift"\nparams = { step = 0.2 }\n'
        suite = load_suite(str(_write(tmp_path, text)))
        out = tmp_path / "out"
        first = run_suite(suite, out, log=lambda s: None)
        source.write_text(PLUGIN + "\n# edited\n")
        registry.samplers.cache_clear()
        logs = []
        second = run_suite(suite, out, log=logs.append)
        ula = [ln for ln in logs if " ula " in ln]
        drift = [ln for ln in logs if " drift " in ln]
        assert len(ula) == 2 and all("done before" in ln for ln in ula)
        assert len(drift) == 2 and not any("done before" in ln for ln in drift)
        assert first[:2] == second[:2] and set(first[2:]).isdisjoint(second[2:])
        assert len(store.finished_ids(out)) == 6
    finally:
        monkeypatch.delenv("KSWGD_PLUGIN_PATH")
        registry.samplers.cache_clear()


def test_impossible_pairs_and_metrics_are_skipped_with_the_reason(tmp_path):
    text = SUITE.format(n=40).replace('["w2", "mmd2"]', '["w2", "ksd"]') + """
[[datasets]]
name = "chessboard"

[[methods]]
name = "kswgd"
params = { step = 0.1, rank = 2, dictionary = "poly", degree = 2 }
"""
    out = tmp_path / "out"
    run_suite(load_suite(str(_write(tmp_path, text))), out, log=lambda s: None)
    final = store.load_final(out)
    chess = final[final["dataset"] == "chessboard"]
    # ULA needs a score chessboard lacks; KSWGD learns from its samples (synthetic KDE pairs)
    assert set(chess[chess["method"] == "ula"]["status"]) == {"skipped"}
    assert set(chess[chess["method"] == "kswgd"]["status"]) == {"ok"}
    assert set(final[final["dataset"] == "gaussian"]["status"]) == {"ok"}
    board = leaderboard(out)
    assert "skipped: ula (rep 0, 1): ula uses the score" in board
    assert "metric skipped: ksd: metric 'ksd' needs a dataset with a known score" in board
    chess_ds = registry.get_dataset("chessboard")
    assert registry.incompatibility(registry.samplers()["ula"], chess_ds) is not None
    assert registry.incompatibility(registry.get_sampler("svgd", score="kde"), chess_ds) is None


def _drive(mp, score):
    """Run a tuning search with ``score(spec)`` as every pilot's validation score; returns
    the steps piloted (sorted) and the search."""
    search = TuningSearch(mp)
    specs = search.initial()
    while specs:
        for spec in specs:
            value = score(spec)
            pilot = Pilot(search.specs[spec.run_id], spec.repetition, value, np.inf,
                          spec.n_particles, failure=None if value is not None else "x")
            search.record(spec.run_id, pilot)
        specs = search.next_pilots()
    return sorted({p.config["step"] for p in search.pilots}), search


def test_step_grid_extends_at_an_edge_a_bounded_number_of_times(tmp_path):
    text = SUITE.format(n=40).replace("params = {{ step = 0.1 }}", "params = {}")
    text = text.replace("params = { step = 0.1 }", "params = {}")
    text = text.replace("floor_seeds = 2", "floor_seeds = 2\nstep_grid = [0.01, 0.1]")
    mp = plan_suite(load_suite(str(_write(tmp_path, text)))).methods[0]
    assert mp.steps == (0.01, 0.1) and mp.validation == (-1, -2)

    def score_of(best):
        return lambda spec: float((np.log(spec.method_kw["step"] / best)) ** 2)

    steps, search = _drive(mp, score_of(1.0))  # best beyond the top edge, once
    assert steps == [0.01, 0.1, 1.0, 10.0] and len(search.pilots) == 8
    assert _drive(mp, score_of(1e-3))[0] == [1e-4, 1e-3, 0.01, 0.1]  # beyond the bottom edge
    steps, _ = _drive(mp, lambda spec: -spec.method_kw["step"])
    assert len(steps) == 2 + MAX_GRID_EXTENSIONS  # always better: bounded
    steps, search = _drive(mp, score_of(0.1))  # the extension is worse: stop
    assert steps == [0.01, 0.1, 1.0] and search.choose().config["step"] == 0.1
    steps, search = _drive(mp, lambda spec: None)  # nothing counts: smaller steps, then none
    assert steps == [1e-4, 1e-3, 0.01, 0.1] and search.choose().config is None


def test_health_matches_a_brute_force_count():
    rng = np.random.default_rng(0)
    train = rng.standard_normal((300, 2))
    x = np.vstack([rng.standard_normal((50, 2)), rng.standard_normal((30, 2)) + 6.0,
                   np.repeat(rng.standard_normal((1, 2)), 20, axis=0)])
    d = cdist(train, train)
    np.fill_diagonal(d, np.inf)
    spacing = np.median(d.min(axis=1))
    tree, s = training_index(train)
    assert s == pytest.approx(spacing)
    h = health(x, tree, s)
    away = np.mean(cdist(x, train).min(axis=1) > AWAY_FACTOR * spacing)
    assert h["health.away"] == pytest.approx(away) and away >= 0.3
    assert h["health.distinct"] == 81  # 80 distinct points plus one repeated 20 times
    blind = health(x, tree, s, learns_from_data=False)  # a method that owes the data nothing
    assert np.isnan(blind["health.away"]) and not stranded(blind["health.away"])
    assert blind["health.distinct"] == 81


# ------------------------------------------------------------------------------------------
# The run command through the real entry point
# ------------------------------------------------------------------------------------------


def _one_line_error(res, code=2):
    assert res.returncode == code, res.stderr
    assert "Traceback" not in res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    return lines[-1]


def test_run_filters_and_out_are_checked_before_anything_runs(tmp_path):
    suite = _write(tmp_path, SUITE.format(n=40))
    line = _one_line_error(_cli("run", "--suite", str(suite), "--out", str(tmp_path / "o"),
                                "--method", "ulla"))
    assert "unknown method in this suite 'ulla'" in line and "did you mean 'ula'" in line
    line = _one_line_error(_cli("run", "--suite", str(suite), "--out", str(tmp_path / "o"),
                                "--dataset", "gausian"))
    assert "did you mean 'gaussian'" in line
    afile = tmp_path / "afile"
    afile.write_text("x")
    line = _one_line_error(_cli("run", "--suite", str(suite), "--out", str(afile)))
    assert "is a file" in line
    line = _one_line_error(_cli("run", "--suite", str(suite), "--out", str(afile / "sub")))
    assert "cannot write" in line
    assert not (tmp_path / "o").exists()


def test_leaderboard_compare_publish_reject_bad_inputs_and_write_nothing(tmp_path):
    missing = tmp_path / "nope"
    assert "no results folder" in _one_line_error(_cli("leaderboard", "--out", str(missing)))
    assert "no results folder" in _one_line_error(_cli("compare", str(missing), str(missing)))
    out = tmp_path / "out"
    run_suite(load_suite(str(_write(tmp_path, SUITE.format(n=40)))), out, log=lambda s: None)
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert "is a file" in _one_line_error(_cli("publish", "--out", str(out), "--to",
                                               str(afile)))
    dest = tmp_path / "dest"
    line = _one_line_error(_cli("publish", "--out", str(out), "--to", str(dest),
                                "--metrics", "w2,foo"))
    assert "'foo'" in line and "w2" in line and not dest.exists()


def _tiny_sweep(tmp_path):
    return _write(tmp_path, """
name = "tiny"
root_seed = 5
repetitions = 3
n_particles = 60
n_steps = 150
n_checkpoints = 3
n_train = 300
n_reference = 120
metrics = ["w2", "mmd2"]
floor_seeds = 2
step_grid = [0.05, 0.2]

[[datasets]]
name = "gaussian"
params = { d = 2 }

[[methods]]
name = "ula"

[[methods]]
name = "mala"
params = { step = 0.2 }
""", "tiny.toml")


def _default_sigint():
    """SIGINT back to its default in the child: a test run started in the background (``&``)
    inherits SIGINT ignored, and Python then never turns it into a KeyboardInterrupt (the
    sweep would finish despite the signal and exit 0)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt(suite, out, sig, delay):
    env = {**os.environ, "OMP_WAIT_POLICY": "passive"}
    proc = subprocess.Popen([sys.executable, "-m", "kswgd.cli", "run", "--suite", str(suite),
                             "--out", str(out), "--quiet"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=_default_sigint)
    t0 = time.time()
    while not list((out / "runs").glob("*/manifest.json")) and time.time() - t0 < 60:
        time.sleep(0.02)
    time.sleep(delay)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_interrupted_sweep_resumes_to_the_same_results(tmp_path, sig):
    suite = _tiny_sweep(tmp_path)
    ref = tmp_path / "ref"
    run_suite(load_suite(str(suite)), ref, log=lambda s: None)
    out = tmp_path / "out"
    delay = np.random.default_rng(int(sig)).uniform(0.0, 0.4)
    code, err = _interrupt(suite, out, sig, delay)
    if sig == signal.SIGINT:
        assert code == 130 and "Traceback" not in err
        line = err.strip().splitlines()[-1]
        k, n = (int(v) for v in re.fullmatch(
            r"interrupted: (\d+) of (\d+) runs finished; run the same command to resume",
            line).groups())
        assert 1 <= k < n and k == len(store.finished_ids(out))
    else:
        assert code == -signal.SIGKILL
    logs = []
    run_suite(load_suite(str(suite)), out, log=logs.append)  # resume
    assert any("done before" in ln for ln in logs)
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    runs = sorted(p.name for p in (out / "runs").iterdir())
    assert runs == store.finished_ids(out) == store.finished_ids(ref)

    def tidy(folder):
        rows = store.load_rows(folder)
        keep = [c for c in rows.columns if c not in (*CLOCK_COLUMNS, "peak_mb")]
        return rows[keep].sort_values(["run_id", "iteration"]).reset_index(drop=True)

    a, b = tidy(out), tidy(ref)
    assert a.groupby("run_id").size().equals(b.groupby("run_id").size())
    pd.testing.assert_frame_equal(a, b[a.columns])


def test_every_pilot_failing_is_a_failed_method_and_the_sweep_goes_on(tmp_path):
    text = SUITE.format(n=40).replace("floor_seeds = 2", "floor_seeds = 2\nstep_grid = [50.0]")
    text = text.replace("params = { step = 0.1 }", "params = {}") + (
        '\n[[methods]]\nname = "mala"\nparams = { step = 0.1 }\n')
    out = tmp_path / "out"
    ids = run_suite(load_suite(str(_write(tmp_path, text))), out, log=lambda s: None)
    final = store.load_final(out)
    runs = final[~final["pilot"]]
    assert set(runs["run_id"]) == set(ids) and len(ids) == 4
    ula = runs[runs["method"] == "ula"]
    assert set(ula["status"]) == {"failed"} and ula["method.step"].isna().all()
    assert all(r.startswith("no configuration counts (step=50.0: rep -1: failed (Floating")
               for r in ula["reason"])
    assert set(runs[runs["method"] == "mala"]["status"]) == {"ok"}
    assert "- failed: ula (rep 0, 1): no configuration counts" in leaderboard(out)


def test_a_failing_floor_is_a_recorded_failure(tmp_path, monkeypatch):
    import kswgd.engine.execute as runner

    def broken(*args, **kwargs):
        raise RuntimeError("no floor today")

    monkeypatch.setattr(runner, "noise_floor", broken)
    out = tmp_path / "out"
    run_suite(load_suite(str(_write(tmp_path, SUITE.format(n=40)))), out, log=lambda s: None)
    floors = store.load_floors(out)
    assert set(floors["status"]) == {"failed"} and floors["value"].isna().all()
    assert (floors["reason"] == "RuntimeError: no floor today").all()
    assert set(store.load_final(out)["status"]) == {"ok"}
    assert "failed: RuntimeError: no floor today" in leaderboard(out)


def test_a_spec_round_trips_through_its_manifest(tmp_path):
    from kswgd.engine.spec import RunSpec

    out = tmp_path / "out"
    ids = run_suite(load_suite(str(_write(tmp_path, SUITE.format(n=40)))), out,
                    log=lambda s: None)
    for rid, man in store.load_manifests(out).items():
        assert RunSpec.from_dict(man["spec"]).run_id == rid == man["run_id"]
    assert set(ids) == set(store.load_manifests(out))


def test_checkpoint_particles_are_kept_when_asked(tmp_path):
    text = SUITE.format(n=40).replace("floor_seeds = 2", 'floor_seeds = 2\nkeep_particles = '
                                                          '"checkpoints"')
    out = tmp_path / "out"
    ids = run_suite(load_suite(str(_write(tmp_path, text))), out, log=lambda s: None)
    rows = store.load_rows(out)
    for rid in ids:
        folder = store.run_dir(out, rid)
        final = np.load(folder / "particles.npy")
        its = sorted(rows[rows["run_id"] == rid]["iteration"])
        assert sorted(int(p.stem.split("_")[1]) for p in folder.glob("particles_*.npy")) == its
        np.testing.assert_array_equal(np.load(folder / f"particles_{its[-1]}.npy"), final)
    with pytest.raises(ConfigError, match="unknown keep_particles 'all'.*checkpoints"):
        plan_suite(load_suite(str(_write(tmp_path, text.replace('"checkpoints"', '"all"')))))


def test_a_failing_metric_fails_its_run_and_the_sweep_goes_on(tmp_path, monkeypatch):
    from kswgd.core import metrics

    def boom(x, ctx):
        if len(x) == 60:  # only the second budget's particles
            raise RuntimeError("metric exploded")
        return 0.0

    monkeypatch.setitem(metrics.METRICS, "boom", metrics.Metric("boom", boom, "explodes"))
    out = tmp_path / "out"
    for n in (40, 60):
        text = SUITE.format(n=n).replace('["w2", "mmd2"]', '["w2", "boom"]')
        run_suite(load_suite(str(_write(tmp_path, text, f"s{n}.toml"))), out,
                  log=lambda s: None)
    final = store.load_final(out)
    assert set(final[final["n_particles"] == 40]["status"]) == {"ok"}
    bad = final[final["n_particles"] == 60]
    assert set(bad["status"]) == {"failed"}
    assert set(bad["reason"]) == {"RuntimeError: metric exploded"}
