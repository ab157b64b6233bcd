"""What the store may mix and what it may trust, through the real entry points (``kswgd run``,
``leaderboard``, ``publish``, ``report`` in a subprocess): a table row is one configuration
(never a label), stale code is never shown as current, floors are never double counted,
damaged runs and floors are named, skipped and recomputed, publish never overwrites silently,
and a partial folder says what is missing."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kswgd.engine import store

_SCRIPT = Path(sys.executable).with_name("kswgd")
_COMMAND = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "kswgd.cli"]

#: Student-t 97.5 % quantile with one degree of freedom (two repetitions).
T_1 = 12.706204736174698

SUITE = """
name = "{name}"
root_seed = 3
repetitions = 2
n_particles = 40
n_steps = 12
n_checkpoints = 2
n_train = 400
n_reference = 150
metrics = ["w2", "mmd2"]
floor_seeds = {floor_seeds}

[[datasets]]
name = "gaussian"
params = {{ d = 1 }}
"""

METHOD = """
[[methods]]
name = "{name}"
label = "{label}"
params = {{ step = {step} }}
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


def suite(tmp_path: Path, name: str, methods: list[tuple[str, str, float]],
          floor_seeds: int = 2) -> Path:
    """A tiny suite file: the Gaussian in 1-D, two repetitions, the (name, label, step)s."""
    text = SUITE.format(name=name, floor_seeds=floor_seeds) + "".join(
        METHOD.format(name=m, label=lab, step=h) for m, lab, h in methods)
    path = tmp_path / f"{name}.toml"
    path.write_text(textwrap.dedent(text))
    return path


def cli(*args, status: int = 0, env: dict | None = None) -> subprocess.CompletedProcess:
    """``kswgd ARGS`` as a user runs it; never a traceback; a refusal is one stderr line."""
    env = {**os.environ, "OMP_WAIT_POLICY": "passive", **(env or {})}
    proc = subprocess.run([*_COMMAND, *map(str, args)], capture_output=True, text=True,
                          timeout=300, env=env)
    assert proc.returncode == status, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr + proc.stdout
    if status == 2:
        assert proc.stdout == "" and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    return proc


def board_csv(out: Path, env: dict | None = None) -> tuple[pd.DataFrame, str]:
    proc = cli("leaderboard", "--out", out, "--format", "csv", env=env)
    return pd.read_csv(io.StringIO(proc.stdout)), proc.stderr


def half_width(values: np.ndarray) -> float:
    """95 % Student-t half-width of two values: t_{0.975,1} · s / √2."""
    assert len(values) == 2
    return T_1 * np.std(values, ddof=1) / np.sqrt(2)


def final_by(out: Path, column: str) -> dict:
    final = store.load_final(out)
    return {k: g["w2"].to_numpy() for k, g in final[~final["pilot"]].groupby(column)}


def test_one_label_at_two_steps_is_two_rows_named_by_their_step(tmp_path):
    out = tmp_path / "out"
    cli("run", "--suite", suite(tmp_path, "a", [("ula", "ula", 0.1)]), "--out", out, "--quiet")
    cli("run", "--suite", suite(tmp_path, "a", [("ula", "ula", 0.5)]), "--out", out, "--quiet")
    board, _ = board_csv(out)
    runs = board[board["kind"] == "method"].set_index("label")
    assert sorted(runs.index) == ["ula (step=0.1)", "ula (step=0.5)"]
    by_step = final_by(out, "method.step")
    for h in (0.1, 0.5):  # each row is the mean and interval of its own two runs only
        row = runs.loc[f"ula (step={h:g})"]
        assert row["ok"] == 2 and row["w2_n"] == 2
        assert row["w2"] == pytest.approx(by_step[h].mean(), rel=1e-12)
        assert row["w2_ci95"] == pytest.approx(half_width(by_step[h]), rel=1e-9)


def test_swapped_labels_of_two_suites_follow_the_suite_just_run(tmp_path):
    out = tmp_path / "out"
    cli("run", "--suite", suite(tmp_path, "one", [("ula", "small", 0.1), ("ula", "big", 0.5)]),
        "--out", out, "--quiet")
    second = cli("run", "--suite", suite(tmp_path, "two", [("ula", "small", 0.5),
                                                           ("ula", "big", 0.1)]),
                 "--out", out, "--quiet").stdout
    by_step = final_by(out, "method.step")
    rows = {line.split("|")[1].strip(): line.split("|")[5].strip()
            for line in second.splitlines() if line.startswith("| small") or
            line.startswith("| big")}
    # suite "two" calls step 0.5 "small": its row shows step 0.5's mean W2
    assert rows["small"].startswith(f"{by_step[0.5].mean():.4g}")
    assert rows["big"].startswith(f"{by_step[0.1].mean():.4g}")


def test_an_edited_plugin_leaves_its_old_runs_out_of_every_reader_and_says_so(tmp_path):
    plugins = tmp_path / "plugins"
    (plugins / "baselines").mkdir(parents=True)
    source = plugins / "baselines" / "drift.py"
    source.write_text(PLUGIN)
    env = {"KSWGD_PLUGIN_PATH": str(plugins)}
    spec = suite(tmp_path, "p", [("ula", "ula", 0.1), ("drift", "drift", 0.2)])
    out = tmp_path / "out"
    cli("run", "--suite", spec, "--out", out, "--quiet", env=env)
    source.write_text(PLUGIN.replace("x - self.params", "x - 0.5 * self.params"))
    printed = cli("run", "--suite", spec, "--out", out, "--quiet", env=env).stdout
    assert [ln.split("|")[-3].strip() for ln in printed.splitlines()
            if ln.startswith("| drift")] == ["2/2"]  # the suite's own runs: the new code's
    board, err = board_csv(out, env)
    drift = board[board["label"] == "drift"]
    assert len(drift) == 1 and drift["runs"].iloc[0] == 2  # the new code's two runs only
    assert "2 stale run(s) left out" in err
    stored = store.load_final(out)
    both = stored[stored["method"] == "drift"]
    current = both[both["code"] == drift["code"].iloc[0]]
    assert len(both) == 4 and len(current) == 2
    assert drift["w2"].iloc[0] == pytest.approx(current["w2"].mean(), rel=1e-12)
    dest = tmp_path / "pub"
    cli("publish", "--out", out, "--to", dest, "--metrics", "w2", env=env)
    published = pd.read_parquet(dest / "final.parquet")
    assert sorted(published.loc[published["method"] == "drift", "run_id"]) == sorted(
        current["run_id"]) and len(published) == 4
    assert "stale run(s) left out" in (dest / "leaderboard.md").read_text()
    page = tmp_path / "r.html"
    cli("report", "--out", out, "--to", page, env=env)
    html = page.read_text()
    assert "Provenance of the 4 runs" in html and "2 stale run(s) left out" in html
    # a published folder of other code says so instead of passing for current
    source.write_text(PLUGIN + "\n# edited again\n")
    shown = cli("leaderboard", "--out", dest, env=env).stdout
    assert shown.splitlines()[0].startswith("published results in")
    assert "gaussian/drift: produced by code" in shown and "current code is" in shown
    assert "gaussian/ula" not in shown.splitlines()[0]


def test_changing_floor_seeds_never_counts_the_same_runs_twice(tmp_path):
    out = tmp_path / "out"
    for k in (2, 5):
        cli("run", "--suite", suite(tmp_path, "f", [("ula", "ula", 0.1)], floor_seeds=k),
            "--out", out, "--quiet")
    board, _ = board_csv(out)
    final = store.load_final(out)
    # the same seeds give the same numbers: two tables, each over its own two runs
    w2 = final.groupby("repetition")["w2"].agg(["min", "max"])
    assert np.allclose(w2["min"], w2["max"], rtol=0, atol=0)
    runs = board[board["kind"] == "method"]
    assert sorted(runs["floor_seeds"]) == [2, 5] and set(runs["w2_n"]) == {2}
    one = final.drop_duplicates("repetition")["w2"].to_numpy()
    assert np.allclose(runs["w2_ci95"], half_width(one), rtol=1e-9)
    noise = board[board["kind"] == "noise floor"]
    assert sorted(noise["w2_n"]) == [2, 5]  # one floor record per table, its own seeds
    assert (noise["floor_seeds"] == noise["w2_n"]).all()


def _damage(out: Path) -> dict[str, str]:
    """Damage four of the six runs in four ways, and a floor file; returns run_id -> what was
    done."""
    ids = store.finished_ids(out)
    assert len(ids) == 6
    a, b, c, d = ids[:4]
    done = {}
    man = store.run_dir(out, a) / "manifest.json"
    man.write_text(man.read_text()[: 40])
    done[a] = "truncated manifest"
    (store.run_dir(out, b) / "manifest.json").write_text("")
    done[b] = "emptied manifest"
    (store.run_dir(out, c) / "rows.parquet").write_bytes(
        (store.run_dir(out, d) / "rows.parquet").read_bytes())
    done[c] = "another run's rows"
    rows = store.run_dir(out, d) / "rows.parquet"
    rows.write_bytes(rows.read_bytes()[:100])
    done[d] = "truncated rows"
    floor = sorted((out / "floors").glob("*.json"))[0]
    floor.write_text(floor.read_text()[:30])
    return done


def test_damaged_runs_and_floors_are_named_skipped_and_recomputed(tmp_path):
    spec = suite(tmp_path, "d", [("ula", "ula", 0.1), ("mala", "mala", 0.1),
                                 ("ula", "ula2", 0.2)])
    out = tmp_path / "out"
    cli("run", "--suite", spec, "--out", out, "--quiet")
    before = store.load_final(out).set_index("run_id")
    done = _damage(out)
    proc = cli("leaderboard", "--out", out)
    named = [ln for ln in proc.stderr.splitlines() if "skipping damaged" in ln]
    assert len(named) == 5 and all(any(rid in ln for ln in named) for rid in done)
    assert sum("/floors/" in ln for ln in named) == 1
    intact = sorted(set(before.index) - set(done))
    board, _ = board_csv(out)
    assert board[board["kind"] == "method"]["ok"].sum() == len(intact) == 2
    again = cli("run", "--suite", spec, "--out", out)
    assert again.stderr.count("computing it again") == 5
    after = store.load_final(out).set_index("run_id")
    assert sorted(after.index) == sorted(before.index)
    for col in ("w2", "mmd2", "iteration", "health.distinct"):
        assert np.array_equal(after.loc[before.index, col].to_numpy(float),
                              before[col].to_numpy(float)), col
    assert len(list((out / "damaged").iterdir())) == 5
    quiet = cli("leaderboard", "--out", out)
    assert "damaged" not in quiet.stderr and "floors missing" not in quiet.stdout


def test_a_particles_file_changed_after_the_manifest_makes_the_run_damaged(tmp_path):
    out = tmp_path / "out"
    cli("run", "--suite", suite(tmp_path, "p", [("ula", "ula", 0.1)]), "--out", out, "--quiet")
    rid = store.finished_ids(out)[0]
    path = store.run_dir(out, rid) / "particles.npy"
    x = np.load(path)
    x[0, 0] += 1.0
    np.save(path, x)
    assert store.run_damage(out, rid) == "particles.npy does not match its checksum"
    assert not store.is_finished(out, rid) and rid not in store.finished_ids(out)


def test_publish_refuses_a_non_empty_destination_and_replace_leaves_nothing_stale(tmp_path):
    out = tmp_path / "out"
    cli("run", "--suite", suite(tmp_path, "p", [("ula", "ula", 0.1)]), "--out", out, "--quiet")
    dest = tmp_path / "results" / "smoke"
    first = cli("publish", "--out", out, "--to", dest, "--metrics", "w2").stdout.split()
    (dest / "stale.txt").write_text("from an older publication")
    before = {p.name: p.read_bytes() for p in dest.iterdir()}
    line = cli("publish", "--out", out, "--to", dest, status=2).stderr
    assert "not empty" in line and "--replace" in line
    assert {p.name: p.read_bytes() for p in dest.iterdir()} == before
    second = cli("publish", "--out", out, "--to", dest, "--metrics", "w2",
                 "--replace").stdout.split()
    assert second == first and sorted(p.name for p in dest.iterdir()) == sorted(
        Path(p).name for p in first)
    assert not [p for p in dest.parent.iterdir() if p.name.startswith(".")]


def test_an_interrupted_sweep_shows_its_runs_and_says_the_floors_are_missing(tmp_path):
    out = tmp_path / "out"
    cli("run", "--suite", suite(tmp_path, "i", [("ula", "ula", 0.1)]), "--out", out, "--quiet")
    shutil.rmtree(out / "floors")  # as if stopped before the floors
    shown = cli("leaderboard", "--out", out).stdout
    assert "| ula |" in shown and "noise floor" not in shown.split("Legend")[0]
    assert "2 runs stored; floors missing for gaussian (n_particles=40" in shown


def test_row_labels_name_what_differs_and_leave_unique_labels_alone():
    from kswgd.reports.leaderboard import row_labels

    base = {"dataset": "g", "n_particles": 10, "n_steps": 5, "n_train": 20,
            "n_reference": 30, "pilot": False, "code": "c" * 16}
    rows = pd.DataFrame([
        {**base, "run_id": "1", "method": "ula", "label": "ula", "method.step": 0.1},
        {**base, "run_id": "2", "method": "ula", "label": "ula", "method.step": 0.5},
        {**base, "run_id": "3", "method": "svgd", "label": "svgd", "method.bandwidth": 1.0},
        {**base, "run_id": "4", "method": "ula", "label": "ula", "method.step": 0.5,
         "code": "d" * 16},
        {**base, "run_id": "5", "method": "ula", "label": "ula", "method.step": 0.1,
         "n_particles": 11},  # another group: its label is alone there
    ])
    assert row_labels(rows)["label"].tolist() == [
        "ula (step=0.1, code=cccccccc)",
        "ula (step=0.5, code=cccccccc)", "svgd", "ula (step=0.5, code=dddddddd)", "ula"]
