"""Every input checked before work starts, through the real ``kswgd`` entry point: plug-in
parameters against their declared constraints, suite keys of the wrong type or range, broken
plug-in files, and the arrays ``kswgd score`` reads. Each case is one line on stderr and exit
status 2 (tests/test_cli_errors.py's ``kswgd_cli`` checks both), and nothing is written."""

from __future__ import annotations

import os
import subprocess

import numpy as np
import pytest
from test_cli_errors import _COMMAND, kswgd_cli

from kswgd.tools.scoring import MAX_ROWS

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
    ("pilot_steps = 1.5", "pilot_steps must be an integer, got 1.5"),
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


# ---------------------------------------------------------------------------------------------
# Plug-in files
# ---------------------------------------------------------------------------------------------

GOOD_SAMPLER = '''
from kswgd.sampler import Sampler


class Half(Sampler):
    name = "{name}"
    description = "x -> x / 2"

    def step(self, x, rng):
        return {step}
'''


def _plugins(tmp_path, folder: str, text: str):
    (tmp_path / "plug" / folder).mkdir(parents=True)
    (tmp_path / "plug" / folder / "mine.py").write_text(text)
    return {**os.environ, "KSWGD_PLUGIN_PATH": str(tmp_path / "plug")}


@pytest.mark.parametrize("text,needles", [
    ("def broken(:\n", ["mine.py", "syntax error at line 1"]),
    ("import no_such_module_xyz\n", ["mine.py", "ModuleNotFoundError", "no_such_module_xyz"]),
    ("raise RuntimeError('boom')\n", ["mine.py", "RuntimeError: boom"]),
    (GOOD_SAMPLER.format(name="ula", step="x / 2"), ["two plug-ins named 'ula'", "ula.py",
                                                     "mine.py"]),
])
def test_a_broken_or_colliding_plugin_file_is_one_line_naming_it(tmp_path, text, needles):
    err = kswgd_cli("list", cwd=tmp_path, env=_plugins(tmp_path, "baselines", text)).stderr
    assert all(n in err for n in needles), err


def test_a_dataset_plugin_without_dim_is_refused_at_registration(tmp_path):
    text = ("from kswgd.dataset import Dataset\n\n\nclass NoDim(Dataset):\n"
            "    name = 'nodim'\n    description = 'no dim'\n"
            "    def draw(self, n, rng): ...\n    def train(self, n, rng, kind=None): ...\n"
            "    def initial(self, n, rng): ...\n")
    err = kswgd_cli("datasets", cwd=tmp_path, env=_plugins(tmp_path, "datasets", text)).stderr
    assert "mine.py" in err and "'nodim' does not define dim (required)" in err


def test_a_plugin_path_that_does_not_exist_is_refused(tmp_path):
    err = kswgd_cli("list", cwd=tmp_path,
                    env={**os.environ, "KSWGD_PLUGIN_PATH": str(tmp_path / "nowhere")}).stderr
    assert "KSWGD_PLUGIN_PATH" in err and "nowhere" in err and "not a directory" in err


def test_a_step_returning_the_wrong_shape_fails_the_run_at_its_first_step(tmp_path):
    env = _plugins(tmp_path, "baselines",
                   GOOD_SAMPLER.format(name="grow", step="np.vstack([x, x])").replace(
                       "from kswgd.sampler", "import numpy as np\nfrom kswgd.sampler"))
    (tmp_path / "s.toml").write_text(TINY.format(top="", dataset_params="{}", entry="",
                                                 method="grow", method_params="{}"))
    proc = subprocess.run([*_COMMAND, "run", "--suite", "s.toml", "--out", "out", "--quiet"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    # the failed run is a result: the leaderboard lists it with the reason
    assert ("grow (rep 0): ValueError: grow.step returned (20, 2) at step 1; expected the "
            "particles' shape (10, 2)") in proc.stdout, proc.stdout[-2000:]


# ---------------------------------------------------------------------------------------------
# kswgd score and kswgd sample inputs
# ---------------------------------------------------------------------------------------------


def _forged(path, shape, data: bytes = b"") -> None:
    """A .npy file whose header claims ``shape`` float64 but holds only ``data``."""
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(
            fh, {"descr": "<f8", "fortran_order": False, "shape": shape})
        fh.write(data)


@pytest.mark.parametrize("array,needle", [
    (np.ones((5, 2), complex), "holds complex128 values; expected real numbers"),
    (np.ones((5, 2), bool), "holds bool values; expected real numbers"),
    (np.full((5, 2), 3.0) * 1e300, "max |x| = 3e+300, beyond 1e+150"),
    (np.full((5, 2), -2e150), "max |x| = 2e+150, beyond 1e+150"),
    (np.array([[0.0, np.nan], [1.0, 2.0]]), "1 row(s) with NaN or inf entries (first: row 0)"),
    (np.zeros((MAX_ROWS + 1, 2)), f"has {MAX_ROWS + 1} rows, more than the {MAX_ROWS}"),
    (np.zeros((2, 2, 2)), "expected an (N, d) array, got shape (2, 2, 2)"),
])
def test_score_refuses_arrays_that_would_give_a_wrong_number_or_never_finish(tmp_path, array,
                                                                             needle):
    np.save(tmp_path / "x.npy", array)
    err = kswgd_cli("score", "x.npy", "--dataset", "gaussian", cwd=tmp_path).stderr
    assert needle in err and "x.npy" in err, err


def test_score_reads_the_header_first_and_refuses_a_file_shorter_than_it_claims(tmp_path):
    _forged(tmp_path / "x.npy", (10**11, 2), b"\0" * 16)  # claims 1.6 TB, holds 16 bytes
    assert (tmp_path / "x.npy").stat().st_size == 144
    err = kswgd_cli("score", "x.npy", "--dataset", "gaussian", cwd=tmp_path).stderr
    assert "truncated" in err and "100000000000 x 2 float64" in err and "holds 16" in err


def test_score_refuses_a_too_large_training_file_too(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((4, 2)))
    _forged(tmp_path / "t.npy", (3, 2), b"\0" * 8)
    err = kswgd_cli("score", "x.npy", "--dataset", "gaussian", "--train", "t.npy",
                    cwd=tmp_path).stderr
    assert "t.npy" in err and "truncated" in err


def test_sample_checks_memory_and_parameters_before_drawing(tmp_path):
    err = kswgd_cli("sample", "gaussian", "--n", "10000000000", "--out", "x.npy",
                    cwd=tmp_path).stderr
    # 10^10 x 2 float64 = 1.6e11 bytes = 149 GiB
    assert "10000000000 x 2 float64 draws of 'gaussian' needs 149 GiB" in err
    err = kswgd_cli("sample", "gaussian", "--n", "5", "--param", "d=0", "--out", "x.npy",
                    cwd=tmp_path).stderr
    assert "parameter 'd' of dataset 'gaussian' must be an integer >= 1, got '0'" in err
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# File-system failures of report and publish
# ---------------------------------------------------------------------------------------------

#: Loaded by the child interpreter (PYTHONPATH): os.replace, the last step of every atomic
#: write, fails with the errno named by KSWGD_TEST_FAULT, as on a read-only or full disk.
_FAULT = '''
import errno, os
_code = getattr(errno, os.environ.get("KSWGD_TEST_FAULT", ""), None)
if _code:
    def _replace(src, dst, *a, **k):
        raise OSError(_code, os.strerror(_code), str(dst))
    os.replace = _replace
'''


@pytest.fixture(scope="module")
def finished_runs(tmp_path_factory):
    """A results folder with one finished ula run on gaussian (a few seconds)."""
    root = tmp_path_factory.mktemp("runs")
    (root / "s.toml").write_text(TINY.format(top="", dataset_params="{}", entry="",
                                             method="ula", method_params="{}"))
    kswgd_cli("run", "--suite", "s.toml", "--out", "out", "--quiet", cwd=root, status=0)
    (root / "inject").mkdir()
    (root / "inject" / "sitecustomize.py").write_text(_FAULT)
    return root


@pytest.mark.parametrize("fault,status", [("EROFS", 2), ("ENOSPC", 1)])
@pytest.mark.parametrize("command", [("report", "--to", "r.html"), ("publish", "--to", "pub")])
def test_a_read_only_or_full_disk_is_one_line_with_its_exit_status(finished_runs, command,
                                                                   fault, status):
    env = {**os.environ, "PYTHONPATH": str(finished_runs / "inject"), "KSWGD_TEST_FAULT": fault}
    err = kswgd_cli(*command, "--out", "out", cwd=finished_runs, status=status, env=env).stderr
    reason = {"EROFS": "Read-only file system", "ENOSPC": "No space left on device"}[fault]
    assert reason in err and command[2] in err, err
