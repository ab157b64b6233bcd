"""Every input checked before work starts, through the real ``kswgd`` entry point: plug-in
parameters against their declared constraints, suite keys of the wrong type or range, broken
plug-in files, and the arrays ``kswgd score`` reads. Each case is one line on stderr and exit
status 2 (tests/test_cli_errors.py's ``kswgd_cli`` checks both), and nothing is written."""

from __future__ import annotations

import pytest
from test_cli_errors import kswgd_cli

#: A suite that would run in a second: each case below breaks one thing in it.
TINY = """name = "tiny"
repetitions = 1
n_particles = 10
n_steps = 2
n_checkpoints = 1
n_train = 20
n_reference = 20
metrics = ["w2"]
floor_seeds = 1
{top}
[[datasets]]
name = "gaussian"
params = {dataset_params}
{entry}
[[methods]]
name = "{method}"
params = {method_params}
"""


def _suite(tmp_path, top="", dataset_params="{}", entry="", method="kswgd",
           method_params="{ rank = 3, n_features = 20 }"):
    (tmp_path / "s.toml").write_text(TINY.format(top=top, dataset_params=dataset_params,
                                                 entry=entry, method=method,
                                                 method_params=method_params))
    return kswgd_cli("run", "--suite", "s.toml", "--out", "out", cwd=tmp_path)


@pytest.mark.parametrize("method_params,dataset_params,needles", [
    ('{ estimator = "edmdd" }', "{}", ["'estimator'", "method 'kswgd'", "'edmdd'", "'edmd'"]),
    ("{ rank = -3 }", "{}", ["'rank'", "method 'kswgd'", "-3", "integer >= 0"]),
    ("{ rank = 2.5 }", "{}", ["'rank'", "2.5", "an integer"]),
    ("{ step = true }", "{}", ["'step'", "True", "> 0"]),
    ("{}", "{ d = 0 }", ["'d'", "dataset 'gaussian'", "integer >= 1"]),
])
def test_a_plugin_parameter_outside_its_constraint_stops_the_suite_before_anything_runs(
        tmp_path, method_params, dataset_params, needles):
    err = _suite(tmp_path, method_params=method_params, dataset_params=dataset_params).stderr
    assert all(n in err for n in needles), err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("line,needle", [
    ('n_particles = "abc"', "n_particles must be an integer >= 2"),
    ("n_particles = 200.7", "n_particles must be an integer >= 2"),
    ("n_particles = 0", "n_particles must be an integer >= 2"),
    ("n_particles = -5", "n_particles must be an integer >= 2"),
    ("repetitions = 2.5", "repetitions must be an integer >= 1"),
    ("repetitions = 0", "repetitions must be an integer >= 1"),
    ("repetitions = true", "repetitions must be an integer >= 1"),
    ("n_steps = 40.5", "n_steps must be an integer >= 1"),
    ("n_train = 0", "n_train must be an integer >= 2"),
    ("n_reference = 1", "n_reference must be an integer >= 2"),
    ('step_grid = "0.1"', "step_grid must be a list"),
    ("step_grid = [-0.1, 0.0]", "step_grid must be a list of items, each a finite number > 0"),
    ("floor_seeds = 0", "floor_seeds must be an integer >= 1"),
    ("metrics = []", "metrics must be a list of at least 1 items"),
    ("root_seed = -1", "root_seed must be an integer >= 0"),
    ("estimated_minutes = 0", "estimated_minutes must be a finite number > 0"),
])
def test_a_suite_key_of_the_wrong_type_or_range_is_one_line_naming_file_and_key(tmp_path, line,
                                                                                 needle):
    # the same key given again lower down would be a TOML error, so these replace the default
    key = line.split(" =")[0]
    (tmp_path / "s.toml").write_text(
        "\n".join(ln for ln in TINY.splitlines() if not ln.startswith(key + " ")).format(
            top=line, dataset_params="{}", entry="", method="ula", method_params="{}"))
    err = kswgd_cli("run", "--suite", "s.toml", "--out", "out", cwd=tmp_path).stderr
    assert "s.toml" in err and needle in err, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("entry,needle", [
    ("n_particles = 3.5", "[[datasets]] entry 1 ('gaussian'): n_particles must be an integer"),
    ("floor_seeds = 0", "[[datasets]] entry 1 ('gaussian'): floor_seeds must be"),
    ('methods = "ula"', "methods must be a list"),
    ("method_params = 0.1", "method_params must be a table"),
])
def test_a_dataset_entry_key_of_the_wrong_type_or_range_names_the_entry(tmp_path, entry, needle):
    err = _suite(tmp_path, entry=entry, method="ula", method_params="{}").stderr
    assert needle in err, err


def test_params_that_are_not_a_table_are_one_line(tmp_path):
    err = _suite(tmp_path, dataset_params="0.1", method="ula", method_params="{}").stderr
    assert "params must be a table, got 0.1" in err
    err = _suite(tmp_path, method="ula", method_params='"fast"').stderr
    assert "[[methods]] entry 1: params must be a table" in err
