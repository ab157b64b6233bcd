"""`kswgd datasets` / `kswgd sample` and their library functions (kswgd.tools.catalog)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kswgd.cli import main
from kswgd.params import ConfigError
from kswgd.tools.catalog import describe_datasets, sample_dataset


def test_describe_datasets_lists_every_dataset_with_its_knowledge():
    rows = {r["name"]: r for r in describe_datasets()}
    assert {"quadruple_well", "torus", "allen_cahn", "digits"} <= set(rows)
    assert rows["sphere"]["known"] == ["log_density", "spectrum", "manifold"]
    assert rows["quadruple_well"]["data_kinds"] == ["trajectories", "samples"]
    assert rows["quadruple_well"]["dim"] == 2 and rows["torus"]["dim"] == 3
    json.dumps(list(rows.values()))  # serialisable


def test_sample_dataset_is_seeded_and_float64():
    a = sample_dataset("circle", "reference", 10, 5, {"lag": "0.1"})
    b = sample_dataset("circle", "reference", 10, 5, {})
    c = sample_dataset("circle", "reference", 10, 6, {})
    assert a.dtype == np.float64 and a.shape == (10, 2)
    assert a.tobytes() == b.tobytes() != c.tobytes()
    t = sample_dataset("quadruple_well", "train", 30, 1, {"burn_in": "10"})
    assert t.shape == (30, 2)
    with pytest.raises(ConfigError, match="reference"):
        sample_dataset("circle", "test", 10, 0, {})


def test_cli_datasets_json(capsys):
    assert main(["datasets", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert any(r["name"] == "torus" and "manifold" in r["known"] for r in rows)
    assert main(["datasets"]) == 0
    assert "quadruple_well" in capsys.readouterr().out


def test_cli_sample_writes_npy_and_is_reproducible(tmp_path):
    out1, out2 = tmp_path / "a.npy", tmp_path / "b.npy"
    for out in (out1, out2):
        args = ["sample", "sphere", "--split", "train", "--n", "25", "--seed", "3",
                "--out", str(out), "--param", "n_sub=2"]
        assert main(args) == 0
    a, b = np.load(out1), np.load(out2)
    assert a.shape == (25, 3) and a.dtype == np.float64 and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("argv,needle", [
    (["sample", "quadruple_wel", "--n", "3", "--out", "x.npy"], "quadruple_well"),
    (["sample", "circle", "--n", "3", "--out", "x.npy", "--param", "lagg=1"], "init_y_min"),
    (["sample", "circle", "--n", "3", "--out", "x.npy", "--split", "test"], "reference"),
    (["sample", "circle", "--n", "3", "--out", "x.npy", "--param", "lag"], "key=value"),
])
def test_cli_bad_names_exit_2_with_one_line_listing_valid(argv, needle, capsys, tmp_path,
                                                          monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err
    assert not (tmp_path / "x.npy").exists()
