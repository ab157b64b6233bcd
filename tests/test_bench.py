"""The `kswgd bench` machinery on tiny sizes: JSON shape and the ok logic (no timing asserted)."""

import json
import math

import numpy as np
import pytest

from kswgd.cli import main
from kswgd.params import ConfigError
from kswgd.tools import bench


def test_figure_target_and_ok_logic():
    f = bench.Figure("a", 1.4, "x floor", hi=1.5)
    assert f.target == "<= 1.5" and f.ok
    assert not bench.Figure("a", 1.6, "x floor", hi=1.5).ok
    g = bench.Figure("b", 19.0, "x faster", lo=20)
    assert g.target == ">= 20" and not g.ok
    h = bench.Figure("c", 1.0, "exponent", lo=0.9, hi=1.1)
    assert h.target == "0.9..1.1" and h.ok
    assert not bench.Figure("c", 1.2, "exponent", lo=0.9, hi=1.1).ok
    assert not bench.Figure("d", math.nan, "s", hi=1.0).ok


def test_fit_exponent_recovers_a_power_law():
    sizes = [1000, 2000, 4000, 8000]
    assert bench.fit_exponent(sizes, [3e-9 * n**2 for n in sizes]) == pytest.approx(2.0)


def test_classic_svgd_step_agrees_with_the_library_step():
    from kswgd.registry import get_dataset, get_sampler

    ds = get_dataset("gaussian", d=2)
    s = get_sampler("svgd", step=0.1, median_subsample=0)      # all pairs, like the classic
    s.setup(ds, None, np.random.default_rng(0))
    x = ds.initial(150, np.random.default_rng(1))
    np.testing.assert_allclose(bench.svgd_classic_step(x, ds.score, 0.1), s.step(x, None),
                               rtol=1e-10, atol=1e-12)


def test_bench_json_shape_on_tiny_sizes(capsys):
    code = main(["bench", "--fast", "--json", "--section", "kswgd", "--section", "dmps",
                 "--section", "svgd", "--section", "scaling", "--section", "metrics"])
    lines = [json.loads(s) for s in capsys.readouterr().out.splitlines()]
    names = [d["name"] for d in lines]
    assert names == ["kswgd_step_vs_floor", "kswgd_vs_tensor", "dmps_step_vs_floor",
                     "svgd_vs_classic_d2", "svgd_vs_classic_d10", "kswgd_scaling_N",
                     "svgd_scaling_N", "mmd2_vs_numpy", "w2_vs_pot"]
    for d in lines:
        assert {"name", "value", "unit", "target", "ok", "detail"} <= set(d)
        assert isinstance(d["ok"], bool) and np.isfinite(d["value"])
    assert code == 0  # toy sizes: measured, not judged
    # the (N, n, d) reference computes the same velocity; the numpy MMD² the same value
    tensor = lines[1]["detail"]
    assert tensor["max_rel_diff"] < 1e-10
    assert lines[7]["detail"]["abs_diff"] < 1e-12


def test_bench_unknown_section_is_a_config_error():
    with pytest.raises(ConfigError, match="bench section"):
        bench.run_bench(fast=True, sections=["nope"])
