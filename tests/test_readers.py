"""What a reader sees: the index figure's arithmetic, readable figure sizes and fonts, the
figures publish writes (every one results/README.md cites), the heatmap rule, and the run
folder's .gitignore."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_cli_errors import kswgd_cli

from kswgd.reports import plots
from kswgd.reports.dimension import dimension_series
from kswgd.reports.publish import DIAGNOSTIC_FIGURES, figure_list
from kswgd.reports.report import is_ablation, varying_parameters

ROOT = Path(__file__).resolve().parents[1]


def summary_table(rows: list[dict]) -> pd.DataFrame:
    """A :func:`kswgd.reports.leaderboard.summary`-shaped table from (dataset, kind, label,
    metric values) records with the budget columns filled in."""
    budget = {"n_particles": 50, "n_steps": 10, "n_train": 100, "n_reference": 100}
    return pd.DataFrame([{**budget, **r} for r in rows])


def test_index_points_are_ratios_to_the_noise_floor_or_floor_std_differences():
    table = summary_table([
        {"dataset": "gaussian", "kind": "method", "label": "a", "w2": 0.6, "w2_ci95": 0.2,
         "mmd2": 0.05, "mmd2_ci95": 0.01},
        {"dataset": "gaussian", "kind": "method", "label": "b", "w2": 0.3, "w2_ci95": np.nan,
         "mmd2": -0.001, "mmd2_ci95": np.nan},
        {"dataset": "gaussian", "kind": "noise floor", "label": "*noise floor*", "w2": 0.3,
         "w2_ci95": 0.03, "mmd2": 0.001, "mmd2_ci95": 0.002},
        {"dataset": "circle", "kind": "method", "label": "a", "w2": 0.2, "w2_ci95": 0.05,
         "mmd2": 0.0, "mmd2_ci95": 0.0},
    ])
    pts = plots.index_points(table, "w2").set_index("label")
    # ratios: 0.6 / 0.3 = 2 with (0.6 ∓ 0.2) / 0.3; a single run has no interval
    assert pts.loc["a", ["value", "lo", "hi"]].tolist() == pytest.approx([2.0, 4 / 3, 8 / 3])
    assert pts.loc["b", "value"] == pytest.approx(1.0) and np.isnan(pts.loc["b", "hi"])
    assert pts.loc["a", "band"] == pytest.approx(0.1)              # 0.03 / 0.3
    # circle has no noise floor: no point, and named
    assert set(pts["group"]) == {"gaussian"}
    assert plots.index_points(table, "w2").attrs["no_floor"] == ["circle"]
    # signed: (0.05 − 0.001) / 0.002 = 24.5, interval ± 0.01 / 0.002 = ± 5; band = 1 std
    sig = plots.index_points(table, "mmd2").set_index("label")
    assert sig.loc["a", ["value", "lo", "hi"]].tolist() == pytest.approx([24.5, 19.5, 29.5])
    assert sig.loc["b", "value"] == pytest.approx(-1.0) and sig.loc["a", "band"] == 1.0


def test_index_points_name_repeated_datasets_by_their_budget():
    table = pd.concat([summary_table([
        {"dataset": "gaussian", "kind": "method", "label": "a", "w2": 1.0, "w2_ci95": 0.1},
        {"dataset": "gaussian", "kind": "noise floor", "label": "f", "w2": 0.5, "w2_ci95": 0.1},
    ]).assign(n_particles=n) for n in (50, 80)])
    assert list(plots.index_points(table, "w2")["group"]) == [
        "gaussian · N=50 T=10 M=100", "gaussian · N=80 T=10 M=100"]


def _checkpoint_rows(datasets: list[str], metric_values=lambda k, it: 1.0 / (1 + it)):
    rows = []
    for k, ds in enumerate(datasets):
        for label in ("kswgd", "dmps", "a long ablation label r64"):
            for rep in (0, 1):
                for it in (0, 5, 10):
                    rows.append({"run_id": f"{ds}-{label}-{rep}", "suite": "synthetic",
                                 "dataset": ds, "label": label, "method": label.split()[0],
                                 "n_particles": 50, "n_steps": 10, "n_train": 100,
                                 "n_reference": 100, "status": "ok", "pilot": False,
                                 "metrics": "w2", "uses": "samples", "fit_seconds": 0.1,
                                 "iteration": it, "seconds": 0.01 * it,
                                 "w2": metric_values(k, it) + 0.01 * rep})
    return pd.DataFrame(rows)


def _floors(datasets: list[str]) -> pd.DataFrame:
    return pd.DataFrame([{"dataset": ds, "n_particles": 50, "metric": "w2", "value": 0.05,
                          "std": 0.01, "kind": "noise"} for ds in datasets])


def _small_fonts(fig) -> list[tuple[str, float]]:
    from matplotlib.text import Text

    return [(t.get_text(), t.get_fontsize()) for t in fig.findobj(Text)
            if t.get_text() and t.get_visible() and t.get_fontsize() < plots.MIN_FONT_PT]


@pytest.mark.parametrize("n_groups", [1, 3, 13, 21])
def test_convergence_figures_stay_at_most_1600_px_tall_with_fonts_of_9_pt(n_groups):
    import matplotlib.pyplot as plt

    names = [f"dataset{k}" for k in range(n_groups)]
    from kswgd.reports.leaderboard import comparable_groups

    groups = comparable_groups(_checkpoint_rows(names))
    for x in ("iteration", "seconds"):
        fig = plots.convergence_figure(groups, "w2", _floors(names), x=x)
        fig.canvas.draw()
        assert fig.get_size_inches()[1] * plots.SAVE_DPI <= plots.MAX_HEIGHT_PX
        assert _small_fonts(fig) == []
        drawn = [ax for ax in fig.axes if ax.axison]
        # one panel per group (small multiples) or two per group (rows of panels)
        assert len(drawn) == (n_groups if n_groups > plots.MAX_PANEL_ROWS else 2 * n_groups)
        plt.close(fig)


def test_grid_shape_keeps_at_most_four_rows():
    assert plots.grid_shape(4) == (1, 4)
    assert plots.grid_shape(13) == (4, 4)
    assert plots.grid_shape(21) == (4, 6)
    for n in range(1, 60):
        r, c = plots.grid_shape(n)
        assert r <= plots.MAX_GRID_ROWS and r * c >= n > (r - 1) * c


def test_index_figure_is_readable_and_draws_every_method_of_every_group():
    import matplotlib.pyplot as plt

    from kswgd.reports.leaderboard import summary

    names = [f"dataset{k}" for k in range(13)]
    rows = _checkpoint_rows(names)
    final = rows[rows["iteration"] == 10]
    table = summary(final, _floors(names).assign(floor_seeds=3, status="ok", reason=None))
    fig = plots.index_figure(table, "w2", "synthetic")
    fig.canvas.draw()
    (ax,) = fig.axes
    assert ax.get_xscale() == "log"
    assert [t.get_text() for t in ax.get_yticklabels()] == names
    assert len(ax.containers) == 3                     # one errorbar series per method
    assert _small_fonts(fig) == []
    assert fig.get_size_inches()[1] * plots.SAVE_DPI <= plots.MAX_HEIGHT_PX
    plt.close(fig)


def test_is_ablation_needs_two_values_of_each_parameter_crossed():
    def table(cells):
        return pd.DataFrame(np.array(cells, dtype=float))

    nan = np.nan
    assert is_ablation(table([[1, 2], [3, 4]]))
    assert is_ablation(table([[1, nan, 2], [nan, nan, nan], [3, nan, 4]]))
    assert not is_ablation(table([[1, 2]]))                       # one row: one axis varies
    assert not is_ablation(table([[1, nan], [nan, 2]]))           # a diagonal
    assert not is_ablation(table([[1, 2], [3, nan]]))             # an L: 3 cells
    # paper-circle's three KSWGD variants: dictionary × estimator is a broken diagonal
    assert not is_ablation(table([[1, 2, nan], [nan, nan, 3]]))


def test_a_step_chosen_by_the_rule_is_not_an_ablation_axis():
    final = pd.DataFrame({"method.step": [0.1, 0.3, 0.1], "method.rank": [5, 10, 20],
                          "step_rule": ["rule: pilots over 0.1, 0.3"] * 3})
    assert varying_parameters(final) == ["method.rank"]
    assert varying_parameters(final.assign(step_rule="fixed")) == ["method.step", "method.rank"]


def test_every_figure_results_readme_cites_is_made_by_publish():
    """Each ``folder/name.png`` results/README.md cites is in publish's figure list for the
    committed final rows of that folder (a folder-less name: for some folder)."""
    text = (ROOT / "results" / "README.md").read_text()
    cited = set(re.findall(r"`(?:([\w-]+)/)?([\w.-]+\.png)`", text))
    assert ("", "spectral_residual.png") in cited or any(
        n == "spectral_residual.png" for _, n in cited)
    made: dict[str, set[str]] = {}
    for final_file in (ROOT / "results").glob("*/final.parquet"):
        final = pd.read_parquet(final_file)
        metrics = [m for ms in final["metrics"].dropna() for m in str(ms).split(",") if m]
        ok = final[final["status"] == "ok"]
        metrics = [m for m in dict.fromkeys(metrics) if m in ok and ok[m].notna().any()]
        names = {n for n, _ in figure_list(final, pd.DataFrame(), metrics)}
        # figures that need what a published folder does not keep (the run folders for the
        # velocity fields, the floors for the dimension curves): publish's names for what
        # this folder's rows hold, when the file is there
        kswgd = final[(final["method"] == "kswgd") & (final["status"] == "ok")]
        extra = {f"velocity_{d}.png" for d in kswgd["dataset"].unique()}
        extra |= {f"index_{m}.png" for m in metrics}          # drawn against the floors
        if dimension_series(final):
            extra |= {f"dimension_{m}.png" for m in metrics} | {"dimension_seconds.png",
                                                                "dimension_memory.png"}
        names |= {n for n in extra if (final_file.parent / n).is_file()}
        made[final_file.parent.name] = names
    for folder, name in cited:
        if "<" in name:
            continue
        where = [folder] if folder else list(made)
        assert any(name in made[f] for f in where), (folder, name)
    assert set(DIAGNOSTIC_FIGURES) <= {n for _, n in cited}


TWO_GROUPS = """
name = "tiny2"
root_seed = 3
repetitions = 2
n_particles = 40
n_steps = 6
n_checkpoints = 2
n_train = 300
n_reference = 100
metrics = ["w2", "mmd2"]
floor_seeds = 2

[[datasets]]
name = "gaussian"
params = { d = 2 }

[[datasets]]
name = "circle"

[[methods]]
name = "kswgd"
params = { step = 0.05, rank = 3, dictionary = "poly", degree = 2 }

[[methods]]
name = "dmps"
params = { step = 0.05, rank = 3 }
"""


def test_run_ignores_its_new_folder_and_publish_writes_every_figure(tmp_path):
    """``kswgd run`` into a new folder writes a .gitignore of ``*`` there (not into a folder
    that existed); ``kswgd publish`` writes the index and the spectral-residual figures and
    no .gitignore."""
    suite = tmp_path / "tiny2.toml"
    suite.write_text(textwrap.dedent(TWO_GROUPS))
    out = tmp_path / "new" / "out"
    kswgd_cli("run", "--suite", str(suite), "--out", str(out), "--jobs", "1", "--quiet",
              cwd=tmp_path, status=0)
    assert (out / ".gitignore").read_text().splitlines()[-1] == "*"
    assert not (tmp_path / "new" / ".gitignore").exists()
    existing = tmp_path / "mine"
    existing.mkdir()
    kswgd_cli("run", "--suite", str(suite), "--out", str(existing), "--jobs", "1", "--quiet",
              cwd=tmp_path, status=0)
    assert not (existing / ".gitignore").exists()
    dest = tmp_path / "results" / "tiny2"
    listed = kswgd_cli("publish", "--out", str(out), "--to", str(dest), cwd=tmp_path,
                       status=0).stdout.split()
    names = {Path(p).name for p in listed}
    assert {"convergence_w2.png", "convergence_mmd2.png", "index_w2.png", "index_mmd2.png",
            "spectral_residual.png"} <= names
    assert sorted(p.name for p in dest.iterdir()) == sorted(names)
    assert not (dest / ".gitignore").exists()
    for name in names - {"leaderboard.md", "leaderboard.csv", "summary.md", "final.parquet"}:
        assert (dest / name).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_report_shows_heatmaps_only_for_crossed_parameters():
    """paper-circle's three KSWGD variants (estimator and dictionary change together, the
    step from the rule) get no heatmap section; a 2 × 2 rank × dictionary grid gets one."""
    from kswgd.reports.report import _heatmaps

    def rows(configs, rule):
        return pd.DataFrame([{"run_id": f"{lab}-{rep}", "label": lab, "method": "kswgd",
                              "iteration": 10, "seconds": 1.0, "w2": 0.1 * (k + 1),
                              "step_rule": rule, **params}
                             for k, (lab, params) in enumerate(configs) for rep in (0, 1)])

    circle = rows([("kde", {"method.estimator": "kde-pairs", "method.dictionary": "poly",
                            "method.step": 0.03}),
                   ("dirichlet", {"method.estimator": "dirichlet", "method.dictionary": "poly",
                                  "method.step": 0.03}),
                   ("kedmd", {"method.estimator": "kernel-edmd", "method.dictionary": "rbf",
                              "method.step": 1.0})], "rule: pilots over 0.03, 1")
    assert _heatmaps(circle, ["w2"], "paper-circle") == ""
    grid = rows([(f"{d} r{r}", {"method.dictionary": d, "method.rank": r, "method.step": 0.05})
                 for d in ("rbf", "poly") for r in (4, 8)], "fixed")
    html = _heatmaps(grid, ["w2"], "ablation")
    assert html.count("<img") == 1 and "Ablation heatmaps" in html
