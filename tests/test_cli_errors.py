"""Bad input through the real entry point: one line on stderr, a non-zero exit, no traceback.

Every case runs the installed ``kswgd`` console script (``python -m kswgd.cli`` if the script
is not installed next to this interpreter) in a subprocess, as a user would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest

import kswgd

_SCRIPT = Path(sys.executable).with_name("kswgd")
_COMMAND = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "kswgd.cli"]
_SUITES = Path(__file__).resolve().parents[1] / "benchmarks" / "suites"


def kswgd_cli(*args: str, cwd: Path, status: int = 2, **popen) -> subprocess.CompletedProcess:
    """Run ``kswgd ARGS`` in ``cwd`` and check the exit ``status``. For a non-zero status also
    check what a user must see: exactly one line on stderr (``... error: ...``), nothing on
    stdout, and no traceback."""
    proc = subprocess.run([*_COMMAND, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, **popen)
    assert proc.returncode == status, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr + proc.stdout
    if status != 0:
        assert proc.stdout == ""
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "error: " in lines[0], proc.stderr
    return proc


def test_toml_syntax_error_names_file_line_and_column(tmp_path):
    (tmp_path / "bad.toml").write_text('name = "bad"\nn_steps = = 3\n')
    err = kswgd_cli("run", "--suite", "bad.toml", "--out", "out", cwd=tmp_path).stderr
    assert "bad.toml" in err and "line 2, column" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("content,needle", [
    (b"", "is empty"),
    (b"1.0,2.0\n3.0,4.0\n", "not a .npy file"),
    (None, "no such file"),
])
def test_score_unreadable_file_is_one_line_and_never_suggests_unpickling(tmp_path, content,
                                                                        needle):
    path = tmp_path / ("x.csv" if content and b"," in content else "x.npy")
    if content is not None:
        path.write_bytes(content)
    err = kswgd_cli("score", path.name, "--dataset", "gaussian", cwd=tmp_path).stderr
    assert needle in err and path.name in err
    assert "pickle" not in err.lower()


def test_score_object_array_is_refused_without_unpickling(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    err = kswgd_cli("score", "obj.npy", "--dataset", "gaussian", cwd=tmp_path).stderr
    assert "Python objects" in err and "pickle" not in err.lower()


def test_sample_refuses_a_name_without_npy_and_writes_nothing(tmp_path):
    err = kswgd_cli("sample", "gaussian", "--n", "4", "--out", "def.txt", cwd=tmp_path).stderr
    assert "must end in .npy" in err and "def.txt" in err
    assert list(tmp_path.iterdir()) == []


def test_sample_writes_exactly_the_path_it_reports(tmp_path):
    out = kswgd_cli("sample", "gaussian", "--n", "4", "--seed", "7", "--out", "def.npy",
                    cwd=tmp_path, status=0).stdout
    assert out.strip() == "wrote def.npy: 4 x 2 float64"
    assert [p.name for p in tmp_path.iterdir()] == ["def.npy"]
    x = np.load(tmp_path / "def.npy", allow_pickle=False)
    assert x.shape == (4, 2) and x.dtype == np.float64


def test_sample_into_a_missing_folder_fails_before_drawing(tmp_path):
    err = kswgd_cli("sample", "gaussian", "--n", "4", "--out", "no/x.npy", cwd=tmp_path).stderr
    assert "does not exist" in err
    (tmp_path / "afile").write_text("x")
    err = kswgd_cli("sample", "gaussian", "--n", "4", "--out", "afile/x.npy", cwd=tmp_path).stderr
    assert "output folder 'afile' is a file" in err


@pytest.mark.parametrize("args,needle", [
    (("spectra", "--rank", "0"), "--rank: must be at least 1"),
    (("sample", "gaussian", "--n", "many", "--out", "x.npy"), "--n: expected a positive"),
    (("spectrum",), "invalid choice"),
])
def test_bad_command_line_is_one_line(tmp_path, args, needle):
    assert needle in kswgd_cli(*args, cwd=tmp_path).stderr


def test_version(tmp_path):
    out = kswgd_cli("--version", cwd=tmp_path, status=0).stdout
    assert out.strip() == f"kswgd {kswgd.__version__}"


def test_suites_lists_every_shipped_suite_with_description_and_cost(tmp_path):
    out = kswgd_cli("suites", "--json", cwd=tmp_path, status=0).stdout
    import json

    rows = {r["name"]: r for r in json.loads(out)}
    text = kswgd_cli("suites", cwd=tmp_path, status=0).stdout
    for path in _SUITES.glob("*.toml"):
        raw = tomllib.loads(path.read_text())
        row = rows[path.stem]
        assert row["description"] == raw["description"]
        assert row["estimated_minutes"] == raw["estimated_minutes"] > 0
        reps = raw.get("repetitions", 3)

        # a dataset entry may list the methods (names or labels) it runs
        assert row["runs"] == sum(
            d.get("repetitions", reps) * sum(
                "methods" not in d or m["name"] in d["methods"] or m.get("label") in d["methods"]
                for m in raw["methods"])
            for d in raw["datasets"])
        line = next(ln for ln in text.splitlines() if ln.startswith(path.stem + " "))
        assert raw["description"] in line and ("min" in line or " s " in line or " h " in line)


def test_suites_lists_a_broken_suite_file_with_its_error(tmp_path):
    (tmp_path / "broken.toml").write_text('name = "broken"\nrepetitions = = 3\n')
    text = kswgd_cli("suites", cwd=tmp_path, status=0,
                     env={**os.environ, "KSWGD_SUITES": str(tmp_path)}).stdout
    line = next(ln for ln in text.splitlines() if ln.startswith("broken "))
    assert "cannot load" in line and "TOML syntax error" in line and "line 2, column" in line


def test_output_into_a_closed_pipe_ends_quietly(tmp_path):
    """``kswgd list | head -0``: the reader is gone before the first write."""
    proc = subprocess.Popen([*_COMMAND, "list"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=120) == 141  # 128 + SIGPIPE, as a shell reports it
    assert err == ""


def test_ctrl_c_prints_interrupted_and_exits_130(tmp_path):
    # SIGINT back to its default in the child: a test run started in the background (``&``)
    # inherits SIGINT ignored, and Python then never turns it into a KeyboardInterrupt.
    proc = subprocess.Popen([*_COMMAND, "spectra"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        time.sleep(1.5)  # well inside main(): the table takes far longer than this
        assert proc.poll() is None
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130
    assert err.strip() == "interrupted" and "Traceback" not in err
