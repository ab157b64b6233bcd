"""`kswgd score` builds its reference set through the runner's own Target (one seed recipe),
through the real console script: a stored run's particles score exactly the run's stored final
metrics and floors, and the default score reference never coincides with `kswgd sample`'s
default draws."""

from __future__ import annotations

import json
import shutil
import textwrap

import numpy as np
import pytest
from test_cli_errors import kswgd_cli

from kswgd.engine import store
from kswgd.engine.target import Target

SUITE = textwrap.dedent("""
    name = "tiny"
    root_seed = 5
    repetitions = 2
    n_particles = 40
    n_steps = 10
    n_checkpoints = 2
    n_train = 150
    n_reference = 120
    metrics = ["w2", "mmd2", "copy", "mean_error", "cov_error"]
    floor_seeds = 2

    [[datasets]]
    name = "gaussian"
    params = { d = 2 }

    [[methods]]
    name = "ula"
    params = { step = 0.1 }
""")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A finished tiny suite run (through `kswgd run`): (folder, results folder)."""
    root = tmp_path_factory.mktemp("tiny")
    (root / "tiny.toml").write_text(SUITE)
    kswgd_cli("run", "--suite", "tiny.toml", "--out", "out", "--quiet", cwd=root, status=0)
    return root, root / "out"


def _score(cwd, *args) -> dict:
    return json.loads(kswgd_cli("score", *args, "--json", cwd=cwd, status=0).stdout)


def test_scoring_a_stored_runs_particles_reproduces_its_final_metrics_exactly(tiny_run):
    root, out = tiny_run
    final = store.load_final(out)
    floors = store.load_floors(out)
    noise = floors[floors["kind"] == "noise"].set_index("metric")["value"]
    assert len(final) == 2
    for _, row in final.iterrows():
        folder = store.run_dir(out, row["run_id"])
        res = _score(root, str(folder / "particles.npy"), "--run", str(folder))
        assert list(res) == ["w2", "mmd2", "copy", "mean_error", "cov_error"]
        for name, r in res.items():
            assert r["value"] == row[name], name          # exact: same reference, same seeds
            assert r["floor"] == noise[name], name
    # the repetitions differ (their own training data and initial particles): not a tautology
    assert final["w2"].nunique() == 2


def test_naming_the_runs_seed_and_sizes_by_hand_gives_the_same_numbers(tiny_run):
    root, out = tiny_run
    row = store.load_final(out).iloc[0]
    folder = store.run_dir(out, row["run_id"])
    res = _score(root, str(folder / "particles.npy"), "--dataset", "gaussian", "--param", "d=2",
                 "--seed", "5", "--n-reference", "120", "--metrics", "w2,mmd2,mean_error")
    assert {n: r["value"] for n, r in res.items()} == {n: row[n] for n in res}
    other = _score(root, str(folder / "particles.npy"), "--dataset", "gaussian",
                   "--seed", "6", "--n-reference", "120", "--metrics", "w2")
    assert other["w2"]["value"] != row["w2"]  # another root seed: another reference


def test_the_default_sample_is_not_the_default_score_reference(tmp_path):
    kswgd_cli("sample", "gaussian", "--n", "200", "--out", "x.npy", cwd=tmp_path, status=0)
    x = np.load(tmp_path / "x.npy")
    ref = Target("gaussian", {"d": 2, "lag": 0.1, "init_shift": 2.0, "init_scale": 0.3}, 200,
                 0).ctx.reference
    assert ref.shape == x.shape and not np.isin(x, ref).any()
    res = _score(tmp_path, "x.npy", "--dataset", "gaussian", "--n-reference", "200",
                 "--metrics", "w2", "--floor-seeds", "10")["w2"]
    # x is 200 exact draws, like the floor's: its W2 lies in the floor's band, far from 0
    assert res["value"] > 0.5 * res["floor"] > 0
    assert abs(res["value"] - res["floor"]) <= 4 * res["floor_std"], res


@pytest.mark.parametrize("args,needle", [
    (("--run", "nowhere"), "no manifest.json"),
    (("--dataset", "gaussian", "--run", "nowhere"), "drop --dataset"),
    (("--run", "nowhere", "--seed", "3"), "drop --seed"),
    ((), "--dataset NAME or --run"),
    (("--dataset", "gaussian", "--metrics", "mode_weight_error"), "modes and mode_weights"),
    (("--dataset", "gaussian", "--n-reference", "1"), "at least 2"),
])
def test_score_target_options_refuse_bad_input_in_one_line(tmp_path, args, needle):
    np.save(tmp_path / "x.npy", np.zeros((10, 2)) + np.arange(10)[:, None])
    err = kswgd_cli("score", "x.npy", *args, cwd=tmp_path).stderr
    assert needle in err, err


def test_a_pilot_run_with_no_metric_is_refused_unless_metrics_are_named(tiny_run, tmp_path):
    """A tuning pilot records no leaderboard metric (only its validation score): scoring its
    particles against "the run's own metrics" would print an empty table."""
    root, out = tiny_run
    row = store.load_final(out).iloc[0]
    pilot = tmp_path / "pilot"
    shutil.copytree(store.run_dir(out, row["run_id"]), pilot)
    manifest = json.loads((pilot / "manifest.json").read_text())
    manifest["spec"].update(metrics=[], pilot=True)
    (pilot / "manifest.json").write_text(json.dumps(manifest))
    x = str(pilot / "particles.npy")
    err = kswgd_cli("score", x, "--run", str(pilot), cwd=root).stderr
    assert "recorded no metric (a tuning pilot)" in err and "--metrics" in err
    assert list(_score(root, x, "--run", str(pilot), "--metrics", "w2")) == ["w2"]


@pytest.mark.parametrize("args,needle", [
    (("sample", "gaussian", "--n", "10", "--seed", "-1", "--out", "a.npy"), "seed must be ≥ 0"),
    (("score", "x.npy", "--dataset", "gaussian", "--seed", "-2"), "seed must be ≥ 0"),
    (("spectra", "--seed", "-1"), "seed must be ≥ 0"),
    (("spectra", "--rank", "6"), "1 to 5"),
    (("plot", "--out", "nowhere", "--to", "ok.png", "--to", "bad.jpg"), "suffix must be"),
    (("plot", "--out", "nowhere", "--to", "folder.png"), "is a folder"),
    (("plot", "--out", "nowhere", "--to", "x.npy/fig.png"), "is a file, not a folder"),
])
def test_seeds_ranks_and_figure_files_are_checked_before_any_work(tmp_path, args, needle):
    np.save(tmp_path / "x.npy", np.zeros((10, 2)) + np.arange(10)[:, None])
    (tmp_path / "folder.png").mkdir()
    before = sorted(p.name for p in tmp_path.iterdir())
    err = kswgd_cli(*args, cwd=tmp_path).stderr
    assert needle in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written
