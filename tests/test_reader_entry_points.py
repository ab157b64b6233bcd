"""What a reader sees, through the commands themselves: ``kswgd run``'s progress counts a pair
that cannot run as skipped, never failed; its new output folder stays out of ``git status``;
``kswgd report`` of a paper-circle-like suite (variants that change two parameters at once)
has no ablation heatmaps."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from test_cli_errors import kswgd_cli

SKIPPING = """
name = "skipping"
root_seed = 3
repetitions = 1
n_particles = 20
n_steps = 4
n_checkpoints = 1
n_train = 50
n_reference = 50
metrics = ["w2"]
floor_seeds = 1

[[datasets]]
name = "gaussian"
params = { d = 2 }

[[datasets]]
name = "chessboard"

[[methods]]
name = "ula"
params = { step = 0.1 }
"""


def test_run_progress_counts_a_pair_that_cannot_run_as_skipped_not_failed(tmp_path):
    (tmp_path / "s.toml").write_text(SKIPPING)
    err = kswgd_cli("run", "--suite", "s.toml", "--out", "out", "--jobs", "1", cwd=tmp_path,
                    status=0).stderr
    lines = [ln for ln in err.splitlines() if ln.startswith("[")]
    skipped = [ln for ln in lines if "chessboard" in ln]
    assert skipped and all(": skipped · 0 failed · 1 skipped" in ln for ln in skipped), lines
    assert lines[-1].startswith("[2/2]") and " 0 failed · 1 skipped" in lines[-1]
    assert not any("1 failed" in ln for ln in lines)


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_a_new_out_folder_inside_a_git_tree_is_not_untracked(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "s.toml").write_text(SKIPPING)
    def status() -> str:
        return subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"],
                              cwd=repo, capture_output=True, text=True, check=True).stdout

    before = status()
    assert before.strip() == "?? s.toml"
    kswgd_cli("run", "--suite", "s.toml", "--out", "study/out-a", "--jobs", "1", "--quiet",
              cwd=repo, status=0)
    assert (repo / "study" / "out-a" / "runs").is_dir()
    assert status() == before


CIRCLE = """
name = "circle-variants"
root_seed = 5
repetitions = 2
n_particles = 30
n_steps = 6
n_checkpoints = 2
n_train = 150
n_reference = 150
metrics = ["w2"]
floor_seeds = 1

[[datasets]]
name = "circle"

[[methods]]
name = "kswgd"
label = "kswgd kde-pairs"
params = { estimator = "kde-pairs", dictionary = "poly", degree = 6, rank = 6, step = 0.1 }

[[methods]]
name = "kswgd"
label = "kswgd kernel-edmd"
params = { estimator = "kernel-edmd", rank = 6, step = 0.1 }

[[methods]]
name = "kswgd"
label = "kswgd dirichlet"
params = { estimator = "dirichlet", dictionary = "poly", degree = 6, rank = 6, step = 0.1 }
"""


def test_report_of_variants_that_are_no_ablation_has_no_heatmap_section(tmp_path):
    """paper-circle's three KSWGD variants change estimator and dictionary together: the
    report shows their convergence and particles, and no 'Ablation heatmaps'."""
    (tmp_path / "c.toml").write_text(CIRCLE)
    kswgd_cli("run", "--suite", "c.toml", "--out", "out", "--jobs", "1", "--quiet",
              cwd=tmp_path, status=0)
    kswgd_cli("report", "--out", "out", "--to", "r.html", cwd=tmp_path, status=0)
    html = (tmp_path / "r.html").read_text()
    assert "<h3>Convergence</h3>" in html and "<h3>Final particles</h3>" in html
    assert html.count("kswgd kernel-edmd") >= 1
    assert "Ablation heatmaps" not in html and "ablation heatmap" not in html
