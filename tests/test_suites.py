"""The shipped suites: every one plans without running; the fairness rules every paper suite
promises (same budget and data for every method, at least 5 seeds, steps by the shared rule,
DMPS wherever it can run); a dataset entry restricted to some methods; and the published
smoke suite reproduced exactly by a rerun."""

import textwrap

import pytest

from kswgd.engine.plan import plan_suite, validate_suite
from kswgd.engine.suite import available_suites, load_suite
from kswgd.params import ConfigError

PAPER_SUITES = ("paper-circle", "paper-semicircle", "paper-torus", "paper-quadruple-well",
                "paper-allen-cahn", "digits", "leaderboard", "ablation-quadruple-well",
                "ablation-torus")


def test_every_shipped_suite_plans_and_the_paper_suites_exist():
    suites = available_suites()
    assert set(PAPER_SUITES) | {"smoke"} <= set(suites)
    for name in suites:
        validate_suite(load_suite(name))


@pytest.mark.parametrize("name", PAPER_SUITES)
def test_paper_suites_are_fair(name):
    """≥ 5 seeds; one budget per dataset entry shared by all its methods; every step either
    chosen by the shared rule or fixed for the whole suite; DMPS on every entry it can run on
    (except the ablations, which vary KSWGD alone)."""
    suite = load_suite(name)
    plan = plan_suite(suite)
    assert plan.methods
    by_entry: dict[tuple, list] = {}
    for mp in plan.methods:
        b = mp.base
        assert mp.repetitions >= 5, (name, b.dataset, b.label)
        key = (b.dataset, b.dataset_key, b.n_train)
        by_entry.setdefault(key, []).append(mp)
    for key, mps in by_entry.items():
        budgets = {(m.base.n_particles, m.base.n_steps, m.base.n_train, m.base.n_reference,
                    m.base.root_seed, m.base.metrics) for m in mps}
        assert len(budgets) == 1, (name, key, budgets)
        if not name.startswith("ablation"):
            assert any(m.base.method == "dmps" and not m.skip for m in mps), (name, key)
            for m in mps:
                assert m.grid or m.skip, (name, key, m.base.label, "step not by the rule")


SUITE = """
name = "only"
repetitions = 1
n_particles = 50
n_steps = 5
n_train = 500
n_reference = 100
metrics = ["w2"]

[[datasets]]
name = "gaussian"
params = { d = 1 }

[[datasets]]
name = "gaussian"
params = { d = 1 }
n_train = 1000
methods = ["r2"]

[[methods]]
name = "kswgd"
label = "r2"
params = { step = 0.1, rank = 2 }

[[methods]]
name = "kswgd"
label = "r3"
params = { step = 0.1, rank = 3 }
"""


def test_a_dataset_entry_runs_only_its_listed_methods(tmp_path):
    path = tmp_path / "only.toml"
    path.write_text(textwrap.dedent(SUITE))
    plan = plan_suite(load_suite(str(path)))
    got = sorted((m.base.n_train, m.base.label) for m in plan.methods)
    assert got == [(500, "r2"), (500, "r3"), (1000, "r2")]
    path.write_text(textwrap.dedent(SUITE).replace('methods = ["r2"]', 'methods = ["r9"]'))
    with pytest.raises(ConfigError, match="unknown method .*'r9'.*valid: .*r2"):
        load_suite(str(path))


#: Columns that measure time or name the code/commit: everything else must match exactly.
NOT_COMPARED = {"seconds", "fit_seconds", "code", "run_id", "git_commit"}
#: Columns the code now records that the committed table may predate: until results/smoke is
#: republished they are checked against their definition (iteration × the method's score
#: evaluations per step: 1 for svgd and ula, 0 for the spectral methods) instead.
NEW_COLUMNS = {"diag.grad_evals": {"svgd": 1, "ula": 1, "kswgd": 0, "dmps": 0}}
#: One thread for Numba, OpenMP and BLAS: parallel reductions then sum in one fixed order.
ONE_THREAD = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
              "MKL_NUM_THREADS": "1", "OMP_WAIT_POLICY": "passive"}


def test_the_published_smoke_suite_reruns_to_the_committed_table(tmp_path):
    """Rerun the smoke suite from scratch (one thread, as it was published) and compare the
    published final table with results/smoke/final.parquet: every metric, diagnostic, health
    and spec column equal, exactly; only timings, run ids and code/commit hashes may differ.
    A change that moves any number must republish results/smoke (results/README.md)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import numpy as np
    import pandas as pd

    committed_path = Path(__file__).resolve().parents[1] / "results" / "smoke" / "final.parquet"
    committed = pd.read_parquet(committed_path)
    env = {**os.environ, **ONE_THREAD}
    out, dest = tmp_path / "runs", tmp_path / "published"
    for args in (["run", "--suite", "smoke", "--out", str(out), "--quiet"],
                 ["publish", "--out", str(out), "--to", str(dest), "--metrics", "w2"]):
        done = subprocess.run([sys.executable, "-m", "kswgd.cli", *args], env=env,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
    fresh = pd.read_parquet(dest / "final.parquet")
    assert set(fresh.columns) - set(NEW_COLUMNS) == set(committed.columns) - set(NEW_COLUMNS)
    keys = ["dataset", "label", "repetition"]
    fresh, committed = (t.sort_values(keys).reset_index(drop=True) for t in (fresh, committed))
    assert len(fresh) == len(committed) == 24
    for col, per_step in NEW_COLUMNS.items():
        want = fresh["iteration"] * fresh["method"].map(per_step)
        assert np.array_equal(fresh[col].to_numpy(float), want.to_numpy(float)), col
    for col in sorted(set(committed.columns) - NOT_COMPARED):
        a, b = fresh[col], committed[col]
        if pd.api.types.is_float_dtype(b):
            assert np.array_equal(a.to_numpy(float), b.to_numpy(float), equal_nan=True), col
        else:
            assert a.astype(str).tolist() == b.astype(str).tolist(), col


def test_the_summary_across_datasets_ranks_and_divides_by_the_floors():
    """Two datasets, three methods: ranks, wins and floor ratios against hand computation; a
    method absent from a dataset gets no rank there; a signed metric is refused."""
    import numpy as np
    import pandas as pd

    from kswgd.reports.leaderboard import across_groups

    def group(ds, values, noise, data):
        budget = {"n_particles": 10, "n_steps": 5, "n_train": 20, "n_reference": 30}
        rows = [{"dataset": ds, **budget, "kind": "method", "label": k, "w2": v, "w2_n": 3}
                for k, v in values.items()]
        rows += [{"dataset": ds, **budget, "kind": "noise floor", "label": "*noise floor*",
                  "w2": noise}, {"dataset": ds, **budget, "kind": "data floor",
                                 "label": "*data floor*", "w2": data}]
        return rows

    table = pd.DataFrame(group("a", {"x": 2.0, "y": 1.0, "z": 4.0}, 0.5, 1.0)
                         + group("b", {"x": 3.0, "y": 6.0}, 1.5, 2.0))
    matrix, labels = across_groups(table, "w2")
    assert matrix["x"].tolist() == [4.0, 2.0] and np.isnan(matrix["z"].iloc[1])
    got = labels.set_index("label")
    assert got.loc["x", "mean_rank"] == 1.5 and got.loc["x", "wins"] == 1
    assert got.loc["y", "mean_rank"] == 1.5 and got.loc["y", "wins"] == 1
    assert got.loc["z", "groups"] == 1 and got.loc["z", "mean_rank"] == 3.0
    assert got.loc["x", "median_noise_ratio"] == np.median([2.0 / 0.5, 3.0 / 1.5])
    assert got.loc["y", "median_data_ratio"] == np.median([1.0 / 1.0, 6.0 / 2.0])
    with pytest.raises(ValueError, match="negative"):
        across_groups(table.rename(columns={"w2": "mmd2"}), "mmd2")
