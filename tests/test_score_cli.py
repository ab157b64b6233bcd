"""`kswgd score`: JSON output and one-line errors with exit status 2 on bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kswgd.cli import main


@pytest.fixture
def sample_file(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.random.default_rng(0).standard_normal((300, 2)) + 0.3)
    return path


def test_score_json_has_value_and_floor_per_metric(sample_file, capsys):
    rc = main(["score", str(sample_file), "--dataset", "gaussian", "--metrics", "w2,mmd2,sw2",
               "--n-reference", "400", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out) == ["w2", "mmd2", "sw2"]
    for entry in out.values():
        assert {"value", "floor", "floor_std"} <= set(entry)
        assert all(np.isfinite(entry[k]) for k in ("value", "floor", "floor_std"))
    assert out["w2"]["value"] > out["w2"]["floor"]  # shifted by 0.3: above the floor


def test_score_text_output_and_copy_with_train(sample_file, tmp_path, capsys):
    train = tmp_path / "train.npy"
    np.save(train, np.random.default_rng(1).standard_normal((500, 2)))
    rc = main(["score", str(sample_file), "--dataset", "gaussian", "--param", "d=2",
               "--metrics", "default", "--n-reference", "300", "--train", str(train)])
    assert rc == 0
    text = capsys.readouterr().out
    for name in ("w2", "sw2", "mmd2", "energy", "ksd", "copy"):
        assert f"  {name} " in text


def _error(argv, capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("kswgd: error:") and "\n" not in err
    return err


def test_score_bad_inputs_are_one_line_errors(sample_file, tmp_path, capsys):
    base = ["--dataset", "gaussian", "--n-reference", "100"]
    wrong_d = tmp_path / "d3.npy"
    np.save(wrong_d, np.ones((10, 3)))
    assert "dimension" in _error(["score", str(wrong_d), *base], capsys)
    flat = tmp_path / "flat.npy"
    np.save(flat, np.ones(10))
    assert "(N, d)" in _error(["score", str(flat), *base], capsys)
    nan = tmp_path / "nan.npy"
    arr = np.zeros((10, 2))
    arr[2, 1] = np.nan
    np.save(nan, arr)
    assert "NaN" in _error(["score", str(nan), *base], capsys)
    assert "unknown metric" in _error(["score", str(sample_file), *base, "--metrics", "w3"],
                                      capsys)
    assert "unknown dataset" in _error(["score", str(sample_file), "--dataset", "gauss"], capsys)
    assert "no such file" in _error(["score", str(tmp_path / "none.npy"), *base], capsys)
    assert "copy" in _error(["score", str(sample_file), *base, "--metrics", "copy"], capsys)
    text = tmp_path / "text.npy"
    text.write_text("not an array")
    assert "not a .npy file" in _error(["score", str(text), *base], capsys)
