"""The tuning protocol end to end: what each pilot is judged by, that it never sees what its
method does not declare, the default row beside the tuned one, the oracle label, shared pilots
computed once, the planner's refusals and the "worse than start" flag."""

import json
import textwrap

import numpy as np
import pandas as pd
import pytest

from kswgd.core.bandwidths import median_distance
from kswgd.core.metrics import ksd, w2
from kswgd.engine import store
from kswgd.engine.driver import run_suite
from kswgd.engine.plan import plan_suite
from kswgd.engine.spec import RunSpec
from kswgd.engine.suite import load_suite
from kswgd.engine.target import Target, rng_for
from kswgd.engine.tuning import split_training
from kswgd.params import ConfigError
from kswgd.reports.leaderboard import health_flags, leaderboard_markdown

SUITE = """
name = "protocol"
root_seed = 11
repetitions = 2
n_particles = 60
n_steps = 10
n_checkpoints = 2
n_train = 400
n_reference = 200
metrics = ["w2"]
floor_seeds = 2
step_grid = [0.05, 0.2]
tuning_budget = 2
pilot_repetitions = 2

[[datasets]]
name = "gaussian"
params = { d = 1 }

[[methods]]
name = "kswgd"
label = "kswgd"
params = { dictionary = "poly", degree = 3 }
search = { rank = [2, 3] }

[[methods]]
name = "kswgd"
label = "kswgd-default"
params = { dictionary = "poly", degree = 3, rank = 3 }

[[methods]]
name = "kswgd"
label = "kswgd-oracle"
params = { dictionary = "poly", degree = 3 }
search = { rank = [2, 3] }
selection = "oracle"

[[methods]]
name = "ula"
params = {}
"""


def _suite(tmp_path, text=SUITE, name="protocol.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return load_suite(str(path))


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("protocol")
    out = tmp / "out"
    logs: list[str] = []
    run_suite(_suite(tmp), out, log=logs.append)
    return out, logs


def _pilots(out):
    return {rid: m for rid, m in store.load_manifests(out).items() if m["spec"]["pilot"]}


def test_each_class_is_judged_by_its_own_information_only(swept):
    out, _ = swept
    pilots = _pilots(out)
    classes = {(m["spec"]["label"], m["spec"]["selection"]) for m in pilots.values()}
    # a label's pilots are stored under the first plan that needed them; the classes are exact
    assert {c for _, c in classes} == {"held-out", "ksd", "oracle"}
    target = Target("gaussian", {"d": 1}, 200, 11)
    for rid, man in pilots.items():
        spec = RunSpec.from_dict(man["spec"])
        if man["status"] != "ok":
            continue
        assert spec.repetition < 0 and spec.metrics == ()         # no leaderboard metric
        rows = store.load_run_rows(out, rid).sort_values("iteration")
        x_final = store.load_particles(out, rid)
        x0 = target.initial(spec.repetition, spec.n_particles)
        full = target.training(spec.repetition, spec.n_train)
        if spec.selection == "held-out":
            # fitted on the fit part only, judged on the held-out part only
            fit, held = split_training(full, 0.2, rng_for(11, spec.dataset_key,
                                                          spec.repetition, "held-out"))
            assert man["data_hash"] == store.array_hash(fit.x, fit.y)
            assert spec.held_out == 0.2
            expect = w2(x_final, held.x)
        elif spec.selection == "ksd":
            assert spec.held_out == 0.0 and spec.method == "ula"
            # the V-statistic (≥ 0): the U-statistic's negative noise must not win
            expect = ksd(x_final, target.dataset.score, c=median_distance(x0), statistic="v")
            assert expect >= 0
        else:
            expect = w2(x_final, target.context(True).reference)
            assert not np.array_equal(target.context(True).reference, target.ctx.reference)
        assert rows["validation"].iloc[-1] == pytest.approx(expect, rel=1e-10, abs=1e-12)
        # "stranded" (away from the data) is judged only where the method learns from data
        assert rows["health.away"].isna().all() == (spec.method == "ula")


def test_records_choose_by_the_rule_and_runs_follow_them(swept):
    out, logs = swept
    recs = {r["label"]: r for r in (json.loads(p.read_text())
                                    for p in (out / "tuning").glob("*.json"))}
    assert set(recs) == {"kswgd", "kswgd-default", "kswgd-oracle", "ula"}
    assert recs["kswgd"]["selection"] == "held-out" and recs["ula"]["selection"] == "ksd"
    assert recs["kswgd-oracle"]["selection"] == "oracle"
    # 2 ranks × 2 steps × 2 validation repetitions (plus any grid extension)
    assert recs["kswgd"]["configurations"] >= 4 and len(recs["kswgd"]["pilots"]) >= 8
    final = store.load_final(out)
    runs = final[~final["pilot"]]
    for label, rec in recs.items():
        mine = runs[runs["label"] == label]
        assert set(mine["run_id"]) == set(rec["test_runs"]) and len(mine) == 2
        if label != "ula":
            assert set(mine["method.rank"]) == {rec["chosen"].get("rank", 3)}
        assert set(mine["method.step"]) == {rec["chosen"]["step"]}
        assert set(mine["tuning.by"]) == {rec["selection"]}
        assert set(mine["tuning.pilots"]) == {len(rec["pilots"])}
    assert any("kswgd-oracle" in line and "chose" in line for line in logs)


def test_a_pilot_two_plans_need_is_computed_once(swept):
    out, _ = swept
    pilots = _pilots(out)
    # kswgd (rank 3 in its space) and kswgd-default (rank 3 fixed) share the rank-3 pilots
    recs = [json.loads(p.read_text()) for p in (out / "tuning").glob("*.json")]
    needed = {rid for r in recs for rid in r["pilot_runs"]}
    assert needed == set(pilots)
    listed = sum(len(r["pilot_runs"]) for r in recs)
    assert listed > len(needed)                         # some were shared ...
    assert len(list((out / "runs").iterdir())) == len(store.load_manifests(out))  # ... once


def test_the_board_shows_default_tuned_and_oracle_rows_with_their_cost(swept):
    out, _ = swept
    board = leaderboard_markdown(out)
    lines = {ln.split(" | ")[0].lstrip("| "): ln for ln in board.splitlines()
             if ln.startswith("| kswgd") or ln.startswith("| ula")}
    assert set(lines) == {"kswgd", "kswgd-default", "kswgd-oracle", "ula"}
    assert "| held-out: " in lines["kswgd"] and " pilots, " in lines["kswgd"]
    assert "| oracle: " in lines["kswgd-oracle"]
    assert "rank=" in lines["kswgd"] and "rank=" not in lines["kswgd-default"]
    assert "| ksd: " in lines["ula"]
    assert "tuned by" in board and "grad evals" in board


def test_the_planner_refuses_what_cannot_be_fair(tmp_path):
    twin = SUITE.replace('label = "kswgd-oracle"', 'label = "kswgd-twin"').replace(
        'selection = "oracle"\n', "")
    with pytest.raises(ConfigError, match="same configuration under the same protocol"):
        plan_suite(_suite(tmp_path, twin, "twin.toml"))
    mixed = SUITE + '\n[[methods]]\nname = "svgd"\nsearch = { score = ["exact", "kde"] }\n'
    with pytest.raises(ConfigError, match="mixes information classes"):
        plan_suite(_suite(tmp_path, mixed, "mixed.toml"))
    both = SUITE.replace("search = { rank = [2, 3] }\n\n[[methods]]\nname = \"kswgd\"\n"
                         "label = \"kswgd-default\"",
                         "search = { degree = [2, 3] }\n\n[[methods]]\nname = \"kswgd\"\n"
                         "label = \"kswgd-default\"", 1)
    with pytest.raises(ConfigError, match="both fixed in params and searched"):
        _suite(tmp_path, both, "both.toml")
    with pytest.raises(ConfigError, match="pilot_repetitions must be"):
        _suite(tmp_path, SUITE.replace("pilot_repetitions = 2", "pilot_repetitions = 1"),
               "one.toml")
    with pytest.raises(ConfigError, match="selection must be one of"):
        _suite(tmp_path, SUITE.replace('selection = "oracle"', 'selection = "cheat"'),
               "cheat.toml")
    with pytest.raises(ConfigError, match="rank"):
        plan_suite(_suite(tmp_path, SUITE.replace("rank = [2, 3]", "rank = [2, -3]", 1),
                          "badrank.toml"))
    # LAWGD is given the circle's log-density, but the circle has no score for the KSD
    scoreless = SUITE.split("[[datasets]]")[0] + (
        '[[datasets]]\nname = "circle"\n\n[[methods]]\nname = "lawgd"\nparams = {}\n')
    with pytest.raises(ConfigError, match="has no score; fix its parameters or set selection"):
        plan_suite(_suite(tmp_path, scoreless, "scoreless.toml"))
    plan_suite(_suite(tmp_path, scoreless.replace('params = {}\n',
                                                  'params = {}\nselection = "oracle"\n'),
                      "scoreless-oracle.toml"))


def test_worse_than_start_is_a_health_flag():
    ok = pd.DataFrame({"health.away": [0.0, 0.0, 0.0], "health.distinct": [60, 60, 60],
                       "n_particles": [60] * 3, "w2": [0.5, 2.0, 1.0],
                       "start.w2": [1.0, 1.0, 1.0]})
    assert health_flags(ok, "w2") == "worse than start 1/3"
    assert health_flags(ok) == "ok"                      # no metric named: not judged
    assert health_flags(ok.assign(w2=[0.1, 0.2, 0.3]), "w2") == "ok"


def test_joint_alternatives_are_one_axis_and_a_fixed_parameter_drops_contradictions(tmp_path):
    text = SUITE.replace('search = { rank = [2, 3] }\n\n[[methods]]\nname = "kswgd"\n'
                         'label = "kswgd-default"',
                         'search = { configs = [{ rank = 2 }, { rank = 3, degree = 2 }, '
                         '{ degree = 4 }] }\n\n[[methods]]\nname = "kswgd"\n'
                         'label = "kswgd-default"', 1)
    text = text.replace('params = { dictionary = "poly", degree = 3 }\nsearch = { configs',
                        'params = { dictionary = "poly" }\nsearch = { configs', 1)
    text = text.replace("tuning_budget = 2", "tuning_budget = 3")
    plan = plan_suite(_suite(tmp_path, text, "alts.toml"))
    mp = next(m for m in plan.methods if m.base.label == "kswgd")
    assert list(mp.configs) == [{"rank": 2}, {"rank": 3, "degree": 2}, {"degree": 4}]
    assert mp.searched == ("degree", "rank", "step") and len(mp.grid()) == 6
    # a dataset entry that fixes the degree drops the alternatives that set it
    fixed = text.replace('params = { d = 1 }', 'params = { d = 1 }\n'
                         'method_params.kswgd = { degree = 3 }')
    mp = next(m for m in plan_suite(_suite(tmp_path, fixed, "fixed.toml")).methods
              if m.base.label == "kswgd")
    assert list(mp.configs) == [{"rank": 2}]
    agrees = fixed.replace("degree = 3 }", "degree = 4 }")
    mp = next(m for m in plan_suite(_suite(tmp_path, agrees, "agrees.toml")).methods
              if m.base.label == "kswgd")
    assert list(mp.configs) == [{"rank": 2}, {}]     # the one that agrees keeps the rest
    bad = text.replace("{ degree = 4 }] }", "{ degree = 4 }] }\nparams = { degree = 1 }")
    with pytest.raises(ConfigError):
        _suite(tmp_path, bad, "bad.toml")


def test_each_alternative_is_given_the_data_its_configuration_declares(tmp_path):
    """KSWGD's EDMD learns from pairs, its Dirichlet estimator from samples: a search over
    the estimator gives each pilot and each chosen test run its own data kind and uses."""
    text = SUITE.replace("search = { rank = [2, 3] }", 'search = { configs = ['
                         '{ estimator = "edmd" }, { estimator = "dirichlet" }] }', 1)
    mp = next(m for m in plan_suite(_suite(tmp_path, text, "kinds.toml")).methods
              if m.base.label == "kswgd")
    kinds = {c["estimator"]: mp.pilot(c, -1) for c in mp.grid()}
    assert (kinds["edmd"].data_kind, kinds["dirichlet"].data_kind) == ("any", "samples")
    assert kinds["dirichlet"].uses == ("samples",)
    test = mp.chosen({"estimator": "dirichlet", "step": 0.05}, "tuned", {})[0]
    assert (test.data_kind, test.uses, test.repetition) == ("samples", ("samples",), 0)


def test_publish_lists_every_configuration_tried_and_the_choice(swept, tmp_path):
    from kswgd.reports.publish import publish, tuning_table

    out, _ = swept
    table = tuning_table(out)
    recs = [json.loads(p.read_text()) for p in (out / "tuning").glob("*.json")]
    assert len(table) == sum(len(r["stats"]) for r in recs)
    for rec in recs:
        mine = table[(table["dataset"] == rec["dataset"]) & (table["label"] == rec["label"])]
        (chosen,) = mine[mine["chosen"]]["config"]
        assert chosen == ", ".join(f"{k}={v}" for k, v in sorted(rec["chosen"].items()))
        counted = mine[mine["excluded"].isna()]
        assert counted["mean"].notna().all()
    written = publish(out, tmp_path / "pub")
    assert (tmp_path / "pub" / "tuning.csv") in written
    assert len(pd.read_csv(tmp_path / "pub" / "tuning.csv")) == len(table)
