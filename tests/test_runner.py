"""The runner end to end on a tiny suite: storage, resume, determinism, failures, errors."""

import json
import textwrap

import numpy as np
import pandas as pd
import pytest

from kswgd.cli import main
from kswgd.engine import store
from kswgd.engine.driver import run_suite
from kswgd.engine.plan import checkpoints, plan_suite
from kswgd.engine.suite import load_suite
from kswgd.engine.target import rng_for
from kswgd.params import ConfigError
from kswgd.reports.leaderboard import leaderboard_markdown

TINY = """
name = "tiny"
root_seed = 7
repetitions = 2
n_particles = 120
n_steps = 20
n_checkpoints = 3
n_train = 8000
n_reference = 300
metrics = ["w2", "mmd2"]
floor_seeds = 2

[[datasets]]
name = "gaussian"
params = { d = 1 }

[[methods]]
name = "kswgd"
params = { step = 0.5, rank = 3, dictionary = "poly", degree = 3 }

[[methods]]
name = "ula"
params = { step = 0.05 }
"""


def _suite(tmp_path, text=TINY, name="tiny.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return load_suite(str(path))


def test_run_stores_rows_manifests_and_leaderboard(tmp_path):
    out = tmp_path / "out"
    ids = run_suite(_suite(tmp_path), out, log=lambda s: None)
    assert len(ids) == 4 and len(set(ids)) == 4
    rows, manifests = store.load_rows(out), list(store.load_manifests(out).values())
    assert {m["status"] for m in manifests} == {"ok"}
    assert sorted(rows["iteration"].unique()) == checkpoints(20, 3) == [0, 7, 13, 20]
    man = manifests[0]
    for key in ("spec", "code", "git_commit", "environment", "data_hash", "reference_hash",
                "fit_seconds", "sample_seconds", "metric_info", "platform"):
        assert key in man
    # every row carries its run's platform fingerprint hash (one process: one platform)
    assert set(rows["platform"]) == {m["platform"]["hash"] for m in manifests}
    assert len(set(rows["platform"])) == 1
    kswgd_man = next(m for m in manifests if m["spec"]["method"] == "kswgd")
    assert kswgd_man["fit_info"]["estimator"] == "edmd"
    assert "diag.residual" in rows.columns
    for rid in ids:  # final particles kept, float64 (N, d)
        x = np.load(store.run_dir(out, rid) / "particles.npy")
        assert x.shape == (120, 1) and x.dtype == np.float64
    board = leaderboard_markdown(out, ids)
    assert "| kswgd | trajectories,samples |" in board and "| ula | score |" in board
    assert "*noise floor*" in board and "*data floor*" in board
    # KSWGD moves the particles from N(2, 0.3²) towards N(0, 1): W2 drops a lot
    k = rows[rows["run_id"] == kswgd_man["run_id"]].sort_values("iteration")
    assert k["w2"].iloc[-1] < 0.3 * k["w2"].iloc[0]


PROBE = ("import json; from kswgd.engine.provenance import platform_fingerprint as f; "
         "print(json.dumps(f()))")


def test_the_platform_fingerprint_sees_each_layer_of_an_imitated_cpu():
    """In a child process with numpy's AVX-512 targets off, OpenBLAS's Haswell kernels and
    Numba compiling for haswell with LLVM's haswell features, each of the three changes shows
    in the fingerprint, and so does its hash; an unchanged child gives the parent's hash."""
    import os
    import subprocess
    import sys

    knobs = ("OPENBLAS_CORETYPE", "NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES",
             "NPY_DISABLE_CPU_FEATURES", "NPY_ENABLE_CPU_FEATURES")
    base = {k: v for k, v in os.environ.items() if k not in knobs}  # the host's own CPU

    def child(**env):
        done = subprocess.run([sys.executable, "-c", PROBE], env={**base, **env},
                              capture_output=True, text=True, timeout=120, check=True)
        return json.loads(done.stdout)

    here = child()
    same = child()
    assert same["hash"] == here["hash"] and len(here["hash"]) == 12
    assert {"numpy_simd", "numba_target", "blas", "versions", "numba_threads"} <= set(here)
    imitated = child(OPENBLAS_CORETYPE="Haswell", NUMBA_CPU_NAME="haswell", NUMBA_CPU_FEATURES="",
                     NPY_DISABLE_CPU_FEATURES="X86_V4 AVX512_ICL AVX512_SPR")
    assert imitated["hash"] != here["hash"]
    assert not {"X86_V4", "AVX512_ICL", "AVX512_SPR"} & set(imitated["numpy_simd"]["dispatch"])
    assert imitated["numba_target"]["cpu"] == "haswell"
    assert imitated["blas"] and {b["coretype"] for b in imitated["blas"]} == {"Haswell"}


def test_same_config_gives_same_numbers_and_resume_skips_finished_runs(tmp_path):
    suite = _suite(tmp_path)
    a, b = tmp_path / "a", tmp_path / "b"
    ids_a = run_suite(suite, a, log=lambda s: None)
    ids_b = run_suite(suite, b, log=lambda s: None)
    assert ids_a == ids_b
    rows_a, rows_b = store.load_rows(a), store.load_rows(b)
    cols = ["run_id", "iteration", "w2", "mmd2", "health.away", "health.distinct"]
    pd.testing.assert_frame_equal(rows_a[cols], rows_b[cols], rtol=1e-12)
    # resume: nothing is recomputed, manifests untouched
    before = {rid: (store.run_dir(a, rid) / "manifest.json").stat().st_mtime_ns for rid in ids_a}
    logs = []
    run_suite(suite, a, log=logs.append)
    after = {rid: (store.run_dir(a, rid) / "manifest.json").stat().st_mtime_ns for rid in ids_a}
    assert before == after and all("done before" in line for line in logs)


def test_half_written_run_is_recomputed(tmp_path):
    suite = _suite(tmp_path)
    out = tmp_path / "out"
    ids = run_suite(suite, out, log=lambda s: None)
    victim = store.run_dir(out, ids[0]) / "manifest.json"
    victim.unlink()  # as if the process died between the rows and the manifest
    logs = []
    run_suite(suite, out, log=logs.append)
    assert sum("done before" not in line for line in logs) == 1
    assert victim.exists()


def test_diverging_run_is_a_failed_row_and_the_sweep_goes_on(tmp_path):
    text = TINY.replace('params = { step = 0.05 }', 'params = { step = 50.0 }')
    out = tmp_path / "out"
    run_suite(_suite(tmp_path, text), out, log=lambda s: None)
    manifests = store.load_manifests(out).values()
    status = {(m["spec"]["method"], m["status"]) for m in manifests}
    assert status == {("kswgd", "ok"), ("ula", "failed")}
    failed = [m for m in manifests if m["status"] == "failed"]
    assert all("diverged" in m["reason"] or "non-finite" in m["reason"] for m in failed)
    assert "- failed: ula (rep 0)" in leaderboard_markdown(out)


def test_seeds_are_keyed_and_stable():
    a = rng_for(1, "gaussian", 0, "init").standard_normal(3)
    b = rng_for(1, "gaussian", 0, "init").standard_normal(3)
    c = rng_for(1, "gaussian", 1, "init").standard_normal(3)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_unknown_names_in_a_suite_name_the_valid_choices(tmp_path):
    with pytest.raises(ConfigError, match="valid: .*gaussian"):
        run_suite(_suite(tmp_path, TINY.replace('name = "gaussian"', 'name = "gausian"')),
                  tmp_path / "o", log=lambda s: None)
    with pytest.raises(ConfigError, match="valid: .*kswgd.*ula"):
        run_suite(_suite(tmp_path, TINY.replace('name = "ula"', 'name = "uula"')),
                  tmp_path / "o", log=lambda s: None)
    with pytest.raises(ConfigError, match="step"):
        run_suite(_suite(tmp_path, TINY.replace("step = 0.05", "stepp = 0.05")),
                  tmp_path / "o", log=lambda s: None)
    assert not (tmp_path / "o" / "runs").exists()


def test_cli_errors_are_one_line_and_exit_2(tmp_path, capsys):
    assert main(["run", "--suite", "no-such-suite", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown suite 'no-such-suite'" in err and "smoke" in err
    bad = tmp_path / "bad.toml"
    bad.write_text(TINY.replace('name = "gaussian"', 'name = "nope"'))
    assert main(["run", "--suite", str(bad), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown dataset 'nope'" in err and "quadruple_well" in err


def test_cli_run_prints_the_leaderboard(tmp_path, capsys):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    assert main(["run", "--suite", str(path), "--out", str(tmp_path / "o"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "### gaussian" in out and "| kswgd |" in out
    manifest = next((tmp_path / "o" / "runs").glob("*/manifest.json"))
    assert json.loads(manifest.read_text())["spec"]["suite"] == "tiny"


def _records(out):
    return [json.loads(p.read_text()) for p in (out / "tuning").glob("*.json")]


def test_step_rule_picks_best_pilot_and_skips_diverging_steps(tmp_path):
    text = TINY.replace("floor_seeds = 2", "floor_seeds = 2\nstep_grid = [0.02, 0.2, 60.0]")
    text = text.replace('params = { step = 0.05 }', "params = {}")
    out = tmp_path / "out"
    ids = run_suite(_suite(tmp_path, text), out, log=lambda s: None)
    manifests = list(store.load_manifests(out).values())
    pilots = [m for m in manifests if m["spec"]["pilot"]]
    runs = [m for m in manifests if not m["spec"]["pilot"]]
    steps = sorted(m["spec"]["method_params"]["step"] for m in pilots)
    # every grid step on both validation repetitions (−1, −2), and nothing on test seeds
    assert {h: steps.count(h) for h in (0.02, 0.2, 60.0)} == {0.02: 2, 0.2: 2, 60.0: 2}
    assert {m["spec"]["repetition"] for m in pilots} == {-1, -2}
    assert {m["status"] for m in pilots if m["spec"]["method_params"]["step"] == 60.0} == {
        "failed"}
    # ULA is given the score: its pilots are judged by the KSD, never by draws of π
    assert {m["spec"]["selection"] for m in pilots} == {"ksd"}
    assert {m["spec"]["metrics"] == [] for m in pilots} == {True}
    (rec,) = _records(out)
    assert rec["selection"] == "ksd" and rec["validation_repetitions"] == [-1, -2]
    (bad,) = [st for st in rec["stats"] if st["config"]["step"] == 60.0]
    assert bad["excluded"].startswith("rep -1: failed")   # the diverging step is excluded
    counted = [st for st in rec["stats"] if st["excluded"] is None]
    best = min(counted, key=lambda st: st["mean"])
    assert rec["threshold"] == pytest.approx(best["mean"])          # the best mean
    assert rec["chosen"] in rec["candidates"]
    ula_steps = {m["spec"]["method_params"]["step"] for m in runs
                 if m["spec"]["method"] == "ula"}
    assert ula_steps == {rec["chosen"]["step"]}
    assert {m["spec"]["tuned"]["by"] for m in runs if m["spec"]["method"] == "ula"} == {"ksd"}
    # kswgd gave its step explicitly: not tuned; pilots never reach the leaderboard
    assert {m["spec"]["method"] for m in pilots} == {"ula"}
    assert set(ids) == {m["run_id"] for m in runs}
    board = leaderboard_markdown(out)
    assert sum(ln.startswith("| ula |") for ln in board.splitlines()) == 1
    assert f"| ula | score | step={rec['chosen']['step']:g} | ksd: 3 configs, 6 pilots," in board


def test_step_rule_tries_smaller_steps_when_every_pilot_fails(tmp_path):
    # ULA on N(0, 1): x <- (1 - h) x + sqrt(2h) xi diverges for h = 3 and 9, not for h = 1
    text = TINY.replace("floor_seeds = 2", "floor_seeds = 2\nstep_grid = [3.0, 9.0]")
    text = text.replace('params = { step = 0.05 }', "params = {}")
    out = tmp_path / "out"
    run_suite(_suite(tmp_path, text), out, log=lambda s: None)
    manifests = list(store.load_manifests(out).values())
    pilots = {m["spec"]["method_params"]["step"]: m["status"] for m in manifests
              if m["spec"]["pilot"] and m["status"] == "ok"}
    failed = {m["spec"]["method_params"]["step"] for m in manifests
              if m["spec"]["pilot"] and m["status"] == "failed"}
    assert failed == {3.0, 9.0}
    # then, 1.0 being the best and smallest step, the usual extension below it
    assert set(pilots) == {1.0, 0.333333}
    (rec,) = _records(out)
    assert rec["chosen"]["step"] in (1.0, 0.333333) and rec["steps"] == [0.333333, 1.0, 3.0, 9.0]
    assert {m["status"] for m in manifests if m["spec"]["method"] == "ula"
            and not m["spec"]["pilot"]} == {"ok"}


def test_pilot_steps_shortens_only_the_pilots(tmp_path):
    text = TINY.replace("floor_seeds = 2", "floor_seeds = 2\nstep_grid = [0.02, 0.2]\n"
                        "pilot_steps = 8")
    text = text.replace('params = { step = 0.05 }', "params = {}")
    out = tmp_path / "out"
    run_suite(_suite(tmp_path, text), out, log=lambda s: None)
    manifests = list(store.load_manifests(out).values())
    pilots = [m["spec"] for m in manifests if m["spec"]["pilot"]]
    runs = [m["spec"] for m in manifests if not m["spec"]["pilot"]]
    assert len(pilots) >= 4 and {p["n_steps"] for p in pilots} == {8}
    assert {tuple(p["checkpoints"]) for p in pilots} == {(0, 8)}
    assert {r["n_steps"] for r in runs} == {20}            # the runs keep the suite's budget
    rows = store.load_rows(out)
    assert rows[rows.pilot].iteration.max() == 8 and rows[~rows.pilot].iteration.max() == 20
    for bad in ("pilot_steps = 21", "pilot_steps = -1"):
        with pytest.raises(ConfigError, match="pilot_steps must be between 1 and n_steps = 20"):
            plan_suite(_suite(tmp_path, text.replace("pilot_steps = 8", bad), "bad.toml"))


def test_same_method_twice_gets_distinct_rows(tmp_path):
    text = TINY.replace('''[[methods]]
name = "ula"
params = { step = 0.05 }''', '''[[methods]]
name = "kswgd"
params = { step = 0.5, rank = 1, dictionary = "poly", degree = 3 }''').replace(
        "repetitions = 2", "repetitions = 1")
    suite = _suite(tmp_path, text)
    assert [m[2] for m in suite.methods] == [
        "kswgd(degree=3, dictionary=poly, rank=3, step=0.5)",
        "kswgd(degree=3, dictionary=poly, rank=1, step=0.5)"]
    out = tmp_path / "out"
    board = leaderboard_markdown(out, run_suite(suite, out, log=lambda s: None))
    assert "| kswgd(degree=3, dictionary=poly, rank=1, step=0.5) |" in board
    assert "| kswgd(degree=3, dictionary=poly, rank=3, step=0.5) |" in board
    dup = text.replace('params = { step = 0.5, rank = 1,', 'params = { step = 0.5, rank = 3,')
    with pytest.raises(ConfigError, match="share a label"):
        _suite(tmp_path, dup, "dup.toml")


def test_compare_of_a_folder_with_itself_gives_unit_ratios(tmp_path, capsys):
    out = tmp_path / "out"
    run_suite(_suite(tmp_path), out, log=lambda s: None)
    assert main(["compare", str(out), str(out)]) == 0
    table = capsys.readouterr().out
    lines = [ln for ln in table.splitlines() if ln.startswith("| gaussian")]
    assert len(lines) == 2 and "n_particles=120" in lines[0]
    for line in lines:
        cells = [c.strip() for c in line.strip("|").split("|")]
        ratios = [cells[i] for i, h in enumerate(table.splitlines()[0].strip("|").split("|"))
                  if h.strip() == "ratio"]
        assert ratios and all(r == "1.000" for r in ratios)


def test_plot_writes_an_image(tmp_path):
    out = tmp_path / "out"
    run_suite(_suite(tmp_path), out, log=lambda s: None)
    path = tmp_path / "fig.png"
    assert main(["plot", "--out", str(out), "--to", str(path)]) == 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["plot", "--out", str(out), "--metric", "ksd", "--to", str(path)]) == 2


def test_publish_writes_small_committable_files(tmp_path):
    out = tmp_path / "out"
    run_suite(_suite(tmp_path), out, log=lambda s: None)
    dest = tmp_path / "results" / "tiny"
    assert main(["publish", "--out", str(out), "--to", str(dest), "--metrics", "w2"]) == 0
    assert sorted(p.name for p in dest.iterdir()) == [
        "convergence_w2.png", "final.parquet", "leaderboard.csv", "leaderboard.md",
        "spectral_residual.png"]  # kswgd records diag.residual
    final = pd.read_parquet(dest / "final.parquet")
    assert len(final) == 4 and set(final["status"]) == {"ok"}
    assert {"git_commit", "method.rank", "dataset.d", "n_particles"} <= set(final.columns)
    assert "| kswgd |" in (dest / "leaderboard.md").read_text()


def test_every_shipped_suite_is_valid():
    from kswgd.engine.plan import validate_suite
    from kswgd.engine.suite import available_suites

    suites = available_suites()
    assert {"smoke", "leaderboard", "paper-quadruple-well"} <= set(suites)
    for name in suites:
        validate_suite(load_suite(name))


def test_unknown_metric_in_a_suite_is_caught_before_running(tmp_path):
    with pytest.raises(ConfigError, match="unknown metric .*valid: .*mmd2"):
        run_suite(_suite(tmp_path, TINY.replace('"mmd2"]', '"mmd3"]')), tmp_path / "o",
                  log=lambda s: None)
    assert not (tmp_path / "o").exists()
