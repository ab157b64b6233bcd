"""`kswgd compare REF NEW` as a gate: exit 1 with one line per regression, 0 otherwise, and a
warning when the two folders ran with another backend, thread count or platform."""

from __future__ import annotations

import subprocess
import textwrap

import numpy as np
import pandas as pd
from test_cli_errors import _COMMAND, kswgd_cli

from kswgd.reports.leaderboard import compare_gate

SUITE = """
name = "gate"
root_seed = 5
repetitions = 3
n_particles = 60
n_steps = {n_steps}
n_checkpoints = 1
n_train = 200
n_reference = 200
metrics = ["w2"]
floor_seeds = 2

[[datasets]]
name = "gaussian"
params = {{ d = 1 }}

[[methods]]
name = "ula"
params = {{ step = 0.1 }}
"""


def _run(tmp_path, name: str, n_steps: int, *extra: str):
    suite = tmp_path / f"{name}.toml"
    suite.write_text(textwrap.dedent(SUITE.format(n_steps=n_steps)))
    out = tmp_path / name
    kswgd_cli("run", "--suite", str(suite), "--out", str(out), "--quiet", *extra,
              cwd=tmp_path, status=0)
    return out


def test_compare_exits_1_on_a_worse_method_and_0_on_itself_and_warns_on_another_backend(
        tmp_path):
    # ULA from N(2, 0.3²) towards N(0, 1): 2 steps leave it far from π (W2 ≈ 1.9), 60 steps
    # reach the noise floor (≈ 0.2); the same label, so the candidate is a regression
    good = _run(tmp_path, "good", 60)
    bad = _run(tmp_path, "bad", 2)
    assert kswgd_cli("compare", str(good), str(good), cwd=tmp_path, status=0).stderr == ""
    # the 2-step suite differs in its budget (T): no row in common, so a gate that compared
    # nothing must not pass: one line, status 2
    err = kswgd_cli("compare", str(good), str(bad), cwd=tmp_path).stderr
    assert "nothing to compare" in err and str(bad) in err
    # same budget, another step: worse quality under the same label
    worse = tmp_path / "worse.toml"
    worse.write_text(textwrap.dedent(SUITE.format(n_steps=60)).replace("step = 0.1",
                                                                          "step = 0.002"))
    kswgd_cli("run", "--suite", str(worse), "--out", str(tmp_path / "worse"), "--quiet",
              cwd=tmp_path, status=0)
    # a verdict, not bad input: the table on stdout, one stderr line per regression, status 1
    proc = subprocess.run([*_COMMAND, "compare", str(good), str(tmp_path / "worse")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert any(line.startswith("kswgd: regression: gaussian / ula: W2") for line in lines)
    assert "| gaussian |" in proc.stdout
    # one label, two configurations: the table says the ratio compares different choices
    assert "- configuration differs: gaussian / ula: step=0.1 → step=0.002" in proc.stdout
    # another --jobs: a warning, the speed check off, the same quality verdict
    two = _run(tmp_path, "two", 60, "--jobs", "2")
    proc = kswgd_cli("compare", str(good), str(two), cwd=tmp_path, status=0)
    assert "warning: the folders differ in backend: reference jobs×1, candidate jobs×2" \
        in proc.stderr
    assert "speed check is off" in proc.stderr


def _table(mean, half, ok=3, seconds=1.0):
    return pd.DataFrame([{"dataset": "g", "label": "m", "w2": mean, "w2_ci95": half,
                          "ok": ok, "sample_seconds": seconds}]).set_index(["dataset", "label"])


def test_the_gate_rule_is_the_widened_interval_and_the_slowdown_factor():
    ref = _table(1.0, 0.1)
    assert compare_gate(ref, _table(1.199, 0.1)) == []               # within 0.1 + 0.1
    assert len(compare_gate(ref, _table(1.201, 0.1))) == 1           # just beyond
    assert compare_gate(ref, _table(0.5, 0.1)) == []                 # better is no regression
    assert len(compare_gate(ref, _table(1.0, 0.1, ok=2))) == 1       # a run lost
    assert compare_gate(ref, _table(1.0, 0.1, seconds=1.49)) == []
    assert "× 1.60 > 1.5" in compare_gate(ref, _table(1.0, 0.1, seconds=1.6))[0]
    assert compare_gate(ref, _table(1.0, 0.1, seconds=1.6), timings=False) == []
    assert compare_gate(ref, _table(np.nan, np.nan)) == []           # nothing to judge


def test_compare_reads_a_published_folder_like_its_run_store_and_refuses_other_folders(
        tmp_path):
    good = _run(tmp_path, "good", 60)
    kswgd_cli("publish", "--out", str(good), "--to", str(tmp_path / "pub"), cwd=tmp_path,
              status=0)
    # the published final.parquet holds the store's final rows: the same keys, unit ratios,
    # no note; a published folder does not record the backend, so timings are not judged
    proc = kswgd_cli("compare", str(good), str(tmp_path / "pub"), cwd=tmp_path, status=0)
    rows = [ln for ln in proc.stdout.splitlines() if ln.startswith("| gaussian |")]
    assert len(rows) == 1 and "| d=1, " in rows[0] and "| ula |" in rows[0]
    assert "| 1.000 |" in rows[0] and "differs" not in proc.stdout
    assert "the backend of the candidate is not recorded" in proc.stderr
    assert "speed check is off" in proc.stderr
    # neither a run store nor a published folder, or a store with no finished run: one line
    (tmp_path / "empty" / "runs").mkdir(parents=True)
    for folder, needle in ((tmp_path, "neither a results folder"),
                           (tmp_path / "empty", "has no finished runs")):
        err = kswgd_cli("compare", str(good), str(folder), cwd=tmp_path).stderr
        assert needle in err


def test_a_candidate_made_by_other_code_is_compared_with_its_start_flags(tmp_path, monkeypatch):
    """A branch's run store is compared although its runs are not the current code's (which
    publish would leave out), read with ``start.<metric>`` as publish reads them, and its
    dataset parameters match a published folder's text cells ('-1.0' is -1.0)."""
    from kswgd.reports import leaderboard as L

    good = _run(tmp_path, "good", 60)
    monkeypatch.setattr(L, "current_code", lambda dataset, method: "another commit")
    assert L.board_rows(good)[0].empty  # every run is stale for publish
    final = L.compared_rows(good)
    assert len(final) == 3 and final["start.w2"].notna().all()
    assert (final["start.w2"] > final["w2"]).all()  # ULA from N(2, 0.3²) got closer to π
    table, regressions, _ = L.compare(good, good)
    assert "| gaussian |" in table and regressions == []
    assert L._value("-1.0") == L._value(-1.0) == -1 and L._value("rbf") == "rbf"
