"""One record per metric: registering one record is all it takes for a metric to be planned,
computed, stored, tabled, plotted and reported; "default"/"all" expand in one place; the record
module loads without POT or SciPy; the signed flag matches what the estimators do."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from kswgd.cli import main
from kswgd.core import metrics as M
from kswgd.engine import store
from kswgd.engine.driver import run_suite
from kswgd.engine.suite import load_suite
from kswgd.params import ConfigError
from kswgd.registry import get_dataset

SUITE = textwrap.dedent("""
    name = "records"
    root_seed = 4
    repetitions = 1
    n_particles = 40
    n_steps = 8
    n_checkpoints = 2
    n_train = 200
    n_reference = 120
    metrics = ["w2", "abs_mean"]
    floor_seeds = 2

    [[datasets]]
    name = "gaussian"
    params = { d = 2 }

    [[methods]]
    name = "ula"
    params = { step = 0.1 }
""")


def _abs_mean(x, ctx) -> float:
    """mean_i,j |x_ij|: for N(0, 1) draws its expectation is sqrt(2/π) ≈ 0.798."""
    return float(np.abs(x).mean())


@pytest.fixture
def new_metric(monkeypatch):
    record = M.Metric("abs_mean", _abs_mean, "mean absolute coordinate of the particles",
                      label="abs mean")
    monkeypatch.setitem(M.METRICS, record.name, record)   # the one edit: one record
    return record


def test_a_new_record_reaches_rows_leaderboard_plots_and_report(new_metric, tmp_path, capsys):
    (tmp_path / "s.toml").write_text(SUITE)
    out = tmp_path / "out"
    [rid] = run_suite(load_suite(str(tmp_path / "s.toml")), out, log=lambda s: None)
    final = store.load_final(out)
    x = np.load(store.run_dir(out, rid) / "particles.npy")
    # rows: the stored final value is the record's function of the stored particles
    assert final["abs_mean"].iloc[0] == _abs_mean(x, None)
    floors = store.load_floors(out)
    noise = floors[(floors["metric"] == "abs_mean") & (floors["kind"] == "noise")]["value"]
    assert noise.iloc[0] == pytest.approx(np.sqrt(2 / np.pi), abs=0.15)  # 80 coords, sd 0.07
    # leaderboard: the label heads a column and the meaning is in the legend
    assert main(["leaderboard", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert " abs mean |" in text and f"- abs mean: {new_metric.meaning}." in text
    # plots: the metric is listed and `kswgd plot --metric` draws it
    from kswgd.reports.plots import metric_columns

    assert "abs_mean" in metric_columns(store.load_rows(out))
    assert main(["plot", "--out", str(out), "--metric", "abs_mean",
                 "--to", str(tmp_path / "c.png")]) == 0
    assert (tmp_path / "c.png").stat().st_size > 1000
    # report page: a convergence figure of the metric, and its label in the table
    assert main(["report", "--out", str(out), "--to", str(tmp_path / "r.html")]) == 0
    page = (tmp_path / "r.html").read_text()
    assert "convergence of abs_mean" in page and "abs mean" in page


def test_expand_gives_default_and_all_from_the_records_then_task_metrics():
    qw = get_dataset("quadruple_well")
    default, skipped = M.expand("default", qw)
    assert default == [n for n, r in M.METRICS.items() if r.default] + list(qw.task_metrics())
    assert default[0] == "w2" and not skipped
    everything = M.expand("all", qw)[0]
    assert "coverage" in everything and "mode_weight_error" not in everything  # no modes
    assert M.expand("default", qw, has_train=False)[0] == [n for n in default if n != "copy"]
    names, skipped = M.expand(["w2", "mode_weight_error", "w2"], qw)
    assert names == ["w2"] and "modes" in skipped["mode_weight_error"]
    with pytest.raises(ConfigError, match="unknown metric 'w3'.*valid: .*default.*w2"):
        M.expand("w2,w3", qw)


def test_register_refuses_a_taken_name_and_an_unknown_need():
    with pytest.raises(ConfigError, match="already registered"):
        M.register(M.Metric("w2", _abs_mean, "again"))
    with pytest.raises(ConfigError, match="unknown need.*valid: .*score"):
        M.register(M.Metric("x_new", _abs_mean, "needs a horse", needs=frozenset({"horse"})))
    assert "x_new" not in M.METRICS


def test_importing_the_records_and_the_spec_loads_neither_pot_nor_scipy():
    code = ("import sys, kswgd.engine.spec, kswgd.core.metrics as M; "
            "M.expand('all', None); print(sorted(m for m in ('ot', 'scipy', 'numba') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_signed_records_go_negative_for_exact_draws_and_unsigned_never():
    # An unbiased U-statistic has mean 0 for exact draws, so among 8 seeded draws some are
    # below 0 (each is with probability about 1/2); a distance or norm never is.
    ds = get_dataset("gaussian")
    ctx = M.MetricContext(ds.draw(300, np.random.default_rng(1)), ds)
    names = ["mmd2", "mmd2_ms", "energy", "ksd", "w2", "sw2", "mean_error", "cov_error"]
    values = {n: [] for n in names}
    for k in range(8):
        x = ds.draw(150, np.random.default_rng([2, k]))
        for n, v in M.evaluate(names, x, ctx).items():
            values[n].append(v)
    for n in names:
        assert M.signed(n) == (min(values[n]) < 0), (n, values[n])
    assert {n for n, r in M.METRICS.items() if r.signed} == {"mmd2", "mmd2_ms", "energy", "ksd"}
