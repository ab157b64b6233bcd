"""The dimension study's figures (kswgd.reports.dimension): which rows form a series, the
points' arithmetic (the index figure's ratio or floor-std difference at each d), and
``kswgd publish`` of a tiny suite at d = 2 and 3 writing every figure, readable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_cli_errors import kswgd_cli

from kswgd.reports import dimension, plots

BUDGET = {"n_particles": 40, "n_steps": 10, "n_train": 100, "n_reference": 100}


def _final(dataset: str, d, label: str, rep: int, **cols) -> dict:
    return {"run_id": f"{dataset}-{d}-{label}-{rep}", "dataset": dataset, "dataset.d": d,
            "label": label, "method": label, "repetition": rep, "status": "ok",
            "pilot": False, "iteration": 10, "uses": "score", "step_rule": "fixed",
            **BUDGET, **cols}


def test_a_series_is_one_dataset_and_budget_at_two_or_more_dimensions():
    rows = pd.DataFrame(
        [_final("gaussian", d, "ula", 0) for d in (2, 5)]
        + [_final("gmm", 2, "ula", 0)]                                  # one d only
        + [_final("circle", np.nan, "ula", 0)]                          # no d at all
        + [{**_final("gaussian", d, "ula", 0), "n_particles": 80, "run_id": f"g80-{d}"}
           for d in (2, 5, 10)])                                        # another budget
    series = dimension.dimension_series(rows)
    assert [(h["dataset"], h["n_particles"], sorted(r["dataset.d"])) for h, r in series] == [
        ("gaussian", 40, [2, 5]), ("gaussian", 80, [2, 5, 10])]
    assert dimension.dimension_series(rows.drop(columns="dataset.d")) == []


def test_spread_is_median_min_and_max_over_repetitions():
    rows = pd.DataFrame([_final("gaussian", d, "ula", r, fit_seconds=s)
                         for d, values in ((2, (1.0, 2.0, 6.0)), (5, (4.0, 5.0)))
                         for r, s in enumerate(values)])
    got = dimension.spread(rows, "fit_seconds").set_index("d")
    assert got.loc[2.0, ["median", "min", "max"]].tolist() == [2.0, 1.0, 6.0]
    assert got.loc[5.0, ["median", "min", "max"]].tolist() == [4.5, 4.0, 5.0]


def _summary_rows() -> pd.DataFrame:
    """A summary-shaped table: method a at d = 2 and 5, the noise floor f ± s at each d."""
    recs = []
    for d, mean, half, f, s in ((2, 0.6, 0.2, 0.3, 0.03), (5, 2.0, 0.5, 0.5, 0.1)):
        base = {"dataset": "gaussian", "dataset.d": d, **BUDGET}
        recs.append({**base, "kind": "method", "label": "a", "w2": mean, "w2_ci95": half,
                     "mmd2": mean / 10, "mmd2_ci95": half / 10})
        recs.append({**base, "kind": "noise floor", "label": "*noise floor*", "w2": f,
                     "w2_ci95": s, "mmd2": f / 100, "mmd2_ci95": s / 10})
    return pd.DataFrame(recs)


def test_points_are_ratios_to_the_floor_at_each_d_or_floor_std_units_when_signed():
    pts = dimension.metric_points(_summary_rows(), "w2").set_index("d")
    # d = 2: 0.6 / 0.3 = 2, (0.6 ∓ 0.2) / 0.3; band 0.03 / 0.3. d = 5: 2 / 0.5 = 4, ∓ 1
    assert pts.loc[2.0, ["value", "lo", "hi", "band"]].tolist() == pytest.approx(
        [2.0, 4 / 3, 8 / 3, 0.1])
    assert pts.loc[5.0, ["value", "lo", "hi", "band"]].tolist() == pytest.approx(
        [4.0, 3.0, 5.0, 0.2])
    # signed: d = 2: (0.06 − 0.003) / 0.003 = 19, ± 0.02 / 0.003; d = 5: (0.2 − 0.005) / 0.01
    sig = dimension.metric_points(_summary_rows(), "mmd2").set_index("d")
    assert sig.loc[2.0, ["value", "hi", "band"]].tolist() == pytest.approx(
        [19.0, 19.0 + 0.02 / 0.003, 1.0])
    assert sig.loc[5.0, "value"] == pytest.approx(19.5)


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head.startswith(b"\x89PNG\r\n\x1a\n")
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


SUITE = """
name = "tiny-dim"
root_seed = 11
repetitions = 2
n_particles = 30
n_steps = 10
n_checkpoints = 2
n_train = 100
n_reference = 100
metrics = ["energy", "w2"]
floor_seeds = 2

[[datasets]]
name = "gaussian"
params = { d = 2 }

[[datasets]]
name = "gaussian"
params = { d = 3 }

[[methods]]
name = "ula"
params = { step = 0.1 }

[[methods]]
name = "svgd"
params = { step = 0.1 }
"""


def test_publish_of_a_dimension_suite_draws_metric_seconds_and_memory_figures(tmp_path):
    (tmp_path / "tiny.toml").write_text(SUITE)
    kswgd_cli("run", "--suite", "tiny.toml", "--out", "out", "--jobs", "1", "--quiet",
              cwd=tmp_path, status=0)
    listed = kswgd_cli("publish", "--out", "out", "--to", "pub", cwd=tmp_path,
                       status=0).stdout.split()
    names = {Path(p).name for p in listed}
    figures = {"dimension_energy.png", "dimension_w2.png", "dimension_seconds.png",
               "dimension_memory.png"}
    assert figures <= names
    for name in figures:
        width, height = _png_size(tmp_path / "pub" / name)
        assert 800 <= width and height <= plots.MAX_HEIGHT_PX
    final = pd.read_parquet(tmp_path / "pub" / "final.parquet")
    assert (final["peak_mb"] > 0).all()
    # a run's peak so far never falls, and its manifest holds the last checkpoint's value
    from kswgd.engine import store

    rows, manifests = store.load_rows(tmp_path / "out"), store.load_manifests(tmp_path / "out")
    for rid, g in rows[rows["status"] == "ok"].groupby("run_id"):
        peaks = g.sort_values("iteration")["peak_mb"].to_numpy()
        assert (np.diff(peaks) >= 0).all() and manifests[rid]["peak_mb"] == peaks[-1]


def test_figures_are_readable_and_absent_without_a_dimension_series():
    import matplotlib.pyplot as plt

    rows = pd.DataFrame([_final("gaussian", d, lab, r, seconds=0.1 * (r + 1) * d,
                                fit_seconds=0.01 * d, peak_mb=1.0 + d, energy=0.1 * d + r,
                                metrics="energy", suite="tiny")
                         for d in (2, 5) for lab in ("ula", "svgd") for r in (0, 1)])
    floors = pd.DataFrame([{"dataset": "gaussian", "dataset.d": d, **BUDGET, "kind": "noise",
                            "metric": "energy", "value": 0.01, "std": 0.005,
                            "floor_seeds": 2, "status": "ok"} for d in (2, 5)])
    made = dict(dimension.dimension_figures(rows, floors, ["energy"]))
    assert list(made) == ["dimension_energy.png", "dimension_seconds.png",
                          "dimension_memory.png"]
    for make in made.values():
        fig = make()
        fig.canvas.draw()
        small = [t.get_text() for t in fig.findobj(plt.Text) if t.get_text()
                 and t.get_visible() and t.get_fontsize() < plots.MIN_FONT_PT]
        assert small == []
        drawn = [ax for ax in fig.axes if ax.axison]
        assert all(ax.get_xlabel() == "dimension d" and ax.get_ylabel() for ax in drawn)
        assert fig.legends and {"svgd", "ula"} <= {t.get_text() for t in
                                                   fig.legends[0].get_texts()}
        plt.close(fig)
    assert dimension.dimension_figures(rows[rows["dataset.d"] == 2], floors, ["energy"]) == []


def test_the_dimension_suite_skips_lawgd_where_no_oracle_spectrum_exists():
    """Planning benchmarks/suites/dimension.toml: LAWGD runs on the Gaussian at every d (Hermite
    modes in closed form) and on the ring mixture at d = 2 (grid Galerkin of its log-density),
    and is skipped with its reason at d ≥ 5, before any pilot; every other pair runs."""
    from kswgd.engine.plan import plan_suite
    from kswgd.engine.suite import load_suite

    plan = plan_suite(load_suite("dimension"))
    skips = {(m.base.dataset, dict(m.base.dataset_params)["d"], m.base.label): m.skip
             for m in plan.methods}
    skipped = {k for k, why in skips.items() if why}
    assert skipped == {("gmm", d, "lawgd") for d in (5, 10, 20, 50)}
    assert "grid Galerkin" in skips[("gmm", 50, "lawgd")] and "d = 50" in skips[
        ("gmm", 50, "lawgd")]
