"""The shipped suites: every one plans without running; the fairness rules every paper suite
promises (same budget and data for every method, at least 5 seeds, steps by the shared rule,
DMPS wherever it can run); a dataset entry restricted to some methods; and the published
smoke suite reproduced by a rerun: exactly on the publishing platform, statistically on
another."""

import re
import textwrap
from pathlib import Path

import pytest

from kswgd.engine.plan import plan_suite, validate_suite
from kswgd.engine.spec import CLOCK_COLUMNS
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


def test_the_readme_suite_table_names_every_shipped_suite():
    """README, "Suites": a row per shipped suite (a row may name several: `a`, `b`)."""
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    start = text.index("| suite | what |")
    rows = [ln for ln in text[start:].splitlines()[2:] if ln.startswith("| ")]
    rows = rows[:next((i for i, ln in enumerate(rows) if not ln.startswith("| `")), len(rows))]
    named = {name for ln in rows for name in re.findall(r"`([\w-]+)`", ln.split("|")[1])}
    assert set(available_suites()) == named


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


#: Columns that measure time or memory or name the code, commit or platform: never compared.
NOT_COMPARED = {*CLOCK_COLUMNS, "peak_mb", "code", "run_id", "git_commit", "platform"}
#: One thread for Numba, OpenMP and BLAS: parallel reductions then sum in one fixed order.
ONE_THREAD = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
              "MKL_NUM_THREADS": "1", "OMP_WAIT_POLICY": "passive"}
KEYS = ["dataset", "label", "repetition"]


def _measured(col: str, metrics: set[str]) -> bool:
    """A column a run measures (metric, its value at the start, sampler diagnostic, particle
    health), as opposed to one
    that says which run it was (spec, status, step chosen by the rule)."""
    return col in metrics or col.startswith(("diag.", "health.", "start."))


def compare_rerun(fresh, committed) -> str:
    """Assert that a rerun's final table ``fresh`` reproduces the published ``committed`` one;
    return the level checked, "exact" or "statistical".

    Spec, status and step columns (which runs these were) are equal on either level. The
    measured columns (metrics, diagnostics, health) are compared

    - exactly, bit for bit, when every row of both tables carries one and the same platform
      fingerprint (kswgd.engine.provenance.platform_fingerprint: SIMD targets, Numba CPU, BLAS
      kernel and version, package versions, threads): same spec, code and platform, same numbers;
    - statistically otherwise, and when the published table records no platform. A particle
      system amplifies a last-bit difference (another BLAS kernel, numpy's AVX2 instead of its
      AVX-512 loops) from step to step, so another platform's rerun is a perturbed draw of the
      same experiment, not the same numbers. For each leaderboard row (dataset, label) and each
      measured column, the rerun's mean over the repetitions must lie within the published
      95 % Student-t interval widened by the rerun's own 95 % half-width,
      |m_fresh − m_pub| ≤ h_pub + h_fresh (both from kswgd.reports.leaderboard.interval), and the
      same entries must be missing (NaN) in both. Even if the rerun were an independent draw of the
      same law (the worst case: here the seeds are shared, so reruns stay far closer), with 3
      repetitions this fails with probability 0.5 % per comparison (Monte Carlo, normal
      values), while a shift of 3 (5) standard deviations is caught with probability 23 % (65 %).
    """
    import numpy as np
    import pandas as pd

    from kswgd.reports.leaderboard import interval

    # platform and peak_mb are newer than some published tables
    assert set(fresh.columns) - {"platform", "peak_mb"} == set(committed.columns) - {
        "platform", "peak_mb"}
    assert "platform" in fresh and fresh["platform"].notna().all()
    fresh, committed = (t.sort_values(KEYS).reset_index(drop=True) for t in (fresh, committed))
    assert fresh[KEYS].astype(str).equals(committed[KEYS].astype(str))
    platforms = set(fresh["platform"])
    same_platform = (len(platforms) == 1 and "platform" in committed
                     and set(committed["platform"].astype(str)) == platforms)
    metrics = {m for ms in committed["metrics"].dropna() for m in str(ms).split(",")}
    compared = sorted(set(committed.columns) - NOT_COMPARED)
    for col in compared:
        if _measured(col, metrics) and not same_platform:
            continue
        a, b = fresh[col], committed[col]
        if pd.api.types.is_float_dtype(b):
            assert np.array_equal(a.to_numpy(float), b.to_numpy(float), equal_nan=True), col
        else:
            assert a.astype(str).tolist() == b.astype(str).tolist(), col
    if same_platform:
        return "exact"
    for col in (c for c in compared if _measured(c, metrics)):
        a, b = fresh[col].to_numpy(float), committed[col].to_numpy(float)
        assert np.array_equal(np.isnan(a), np.isnan(b)), (col, "missing in one table only")
        for key, rows in committed.groupby(["dataset", "label"]).groups.items():
            if np.isnan(b[rows]).all():
                continue
            m_pub, h_pub, n_pub = interval(b[rows])
            m_new, h_new, n_new = interval(a[rows])
            assert n_pub >= 2 and n_new >= 2, (key, col, "fewer than 2 repetitions")
            round_off = 1e-12 * max(1.0, abs(m_pub))   # zero-width intervals: last bits only
            assert abs(m_new - m_pub) <= h_pub + h_new + round_off, (
                key, col, m_new, m_pub, h_pub, h_new)
    return "statistical"


def test_the_published_smoke_suite_reruns_to_the_committed_table(tmp_path):
    """Rerun the smoke suite from scratch (one thread, as it was published) and compare its
    published final table with results/smoke/final.parquet by :func:`compare_rerun`: every
    spec column equal; every metric, diagnostic and health column bit-identical when the
    platform fingerprint is the published one, statistically equal when it is not (or when
    the published table records none). A change that moves any number on the publishing
    platform must republish results/smoke (results/README.md)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

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
    assert len(fresh) == len(committed) == 24
    compare_rerun(fresh, committed)


def test_the_rerun_check_is_exact_on_one_platform_and_statistical_across_platforms():
    """compare_rerun on the published smoke table against edited copies of itself: a last-bit
    change fails on the same platform and passes on another; a shift just past the widened
    interval, a metric gone missing, or another step fails on another platform too."""
    from pathlib import Path

    import numpy as np
    import pandas as pd

    path = Path(__file__).resolve().parents[1] / "results" / "smoke" / "final.parquet"
    pub = pd.read_parquet(path).assign(platform="aaaaaaaaaaaa")
    assert compare_rerun(pub.copy(), pub) == "exact"
    nudged = pub.copy()
    nudged["w2"] = np.nextafter(nudged["w2"], np.inf)       # one ulp: another BLAS kernel
    with pytest.raises(AssertionError, match="w2"):
        compare_rerun(nudged, pub)
    other = nudged.assign(platform="bbbbbbbbbbbb")
    assert compare_rerun(other, pub) == "statistical"
    assert compare_rerun(other, pub.drop(columns="platform")) == "statistical"
    from kswgd.reports.leaderboard import interval

    row = (pub["dataset"] == "gaussian") & (pub["label"] == "svgd")
    _, h, _ = interval(pub.loc[row, "w2"])
    shifted = other.copy()
    shifted.loc[row, "w2"] += 2 * h * 1.001                   # both half-widths are h
    with pytest.raises(AssertionError, match="w2"):
        compare_rerun(shifted, pub)
    missing = other.copy()
    missing.loc[missing.index[0], "mmd2"] = np.nan
    with pytest.raises(AssertionError, match="mmd2"):
        compare_rerun(missing, pub)
    stepped = other.copy()
    stepped.loc[row, "method.step"] *= 3
    with pytest.raises(AssertionError, match="method.step"):
        compare_rerun(stepped, pub)


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


def test_ranks_tie_means_that_differ_only_in_the_last_bits():
    """Two rows of one configuration whose means differ by a few ulp (another CPU's kernels)
    share a rank and both win, on either side of the ulp; a real difference still orders. The
    reference: pandas' exact "min" rank of the values rounded to 6 significant digits (these
    values are far from a rounding boundary there)."""
    import numpy as np
    import pandas as pd

    from kswgd.reports.leaderboard import across_groups, tied_ranks

    a = 0.3318417
    ulp = np.spacing(a)
    for v in ([a, a + 2 * ulp, 0.5, a - 0.01], [a + 2 * ulp, a, a - 0.01, 0.5, 0.5 + ulp]):
        ref = pd.Series([float(f"{x:.6g}") for x in v]).rank(method="min").to_numpy()
        assert tied_ranks(v).tolist() == ref.tolist()
    assert pd.Series([a, a + 2 * ulp]).rank(method="min").tolist() == [1.0, 2.0]  # the defect
    budget = {"n_particles": 10, "n_steps": 5, "n_train": 20, "n_reference": 30}
    rows = [{"dataset": "a", **budget, "kind": "method", "label": k, "w2": v, "w2_n": 3}
            for k, v in {"x": a + ulp, "y": a, "z": 1.0}.items()]
    rows += [{"dataset": "a", **budget, "kind": k, "label": k, "w2": 0.2}
             for k in ("noise floor", "data floor")]
    got = across_groups(pd.DataFrame(rows), "w2")[1].set_index("label")
    assert got["mean_rank"].to_dict() == {"x": 1.0, "y": 1.0, "z": 3.0}
    assert got["wins"].to_dict() == {"x": 1, "y": 1, "z": 0}
