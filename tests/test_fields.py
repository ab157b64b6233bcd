"""The KSWGD velocity field figures (kswgd/reports/fields.py) and the plug-in's velocity and
repulsion: the rebuilt sampler reproduces a stored run bit for bit, velocity is the step per unit
step, the repulsion matches its formula summed term by term, and the figures are written for the
flat 2-D datasets only, at the size the layout gives."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from kswgd import registry
from kswgd.engine import store
from kswgd.engine.spec import canonical_json
from kswgd.reports import fields

TINY = """
name = "tiny-fields"
root_seed = 11
repetitions = 1
n_particles = 40
n_steps = 6
n_checkpoints = 2
n_train = 400
n_reference = 200
metrics = ["w2"]
floor_seeds = 1

[[datasets]]
name = "gaussian"
params = { d = 2 }
methods = ["spectral", "repelled"]

[[datasets]]
name = "gaussian"
params = { d = 1 }
methods = ["spectral"]

[[datasets]]
name = "gmm"
methods = ["spectral"]
method_params.spectral = { estimator = "kde-pairs", step = 0.05, rank = 6, n_features = 60 }

[[methods]]
name = "kswgd"
label = "spectral"
params = { step = 0.05, rank = 6, n_features = 60 }

[[methods]]
name = "kswgd"
label = "repelled"
params = { step = 0.05, rank = 6, n_features = 60, repulsion = 0.5 }
"""


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    from kswgd.engine.driver import run_suite
    from kswgd.engine.suite import load_suite

    tmp = tmp_path_factory.mktemp("fields")
    suite_file = tmp / "tiny.toml"
    suite_file.write_text(textwrap.dedent(TINY))
    run_suite(load_suite(str(suite_file)), tmp / "out", log=lambda s: None)
    return tmp / "out"


def test_only_flat_2d_kswgd_runs_are_drawn(out):
    runs = fields.velocity_runs(out)
    assert sorted(runs) == ["gaussian", "gmm"]          # the 1-D gaussian is left out
    assert [m["spec"]["label"] for _, m in runs["gaussian"]] == ["repelled", "spectral"]
    assert all(m["spec"]["dataset_params"]["d"] == 2 for _, m in runs["gaussian"])


def test_rebuilt_sampler_reproduces_the_stored_run(out):
    """Rebuilt as the runner built it, the sampler gives the manifest's fit record and, from
    the same initial particles, the stored final particles (KSWGD's step is deterministic, so
    any difference in data, seed or setup would show)."""
    for runs in fields.velocity_runs(out).values():
        for rid, man in runs:
            spec, _, sampler, x = fields.rebuild(man)
            info = {k: v for k, v in sampler.fit_info().items() if k != "fit_seconds"}
            stored = {k: v for k, v in man["fit_info"].items() if k != "fit_seconds"}
            assert canonical_json(info) == canonical_json(stored)
            for _ in range(spec.n_steps):
                x = sampler.step(x, None)
            np.testing.assert_array_equal(x, store.load_particles(out, rid))


def test_velocity_is_the_step_per_unit_step(out):
    """move(x, h·velocity(x)) = step(x) in R^d, with and without repulsion; agreement to
    rounding of the O(1) coordinates (same sums, different association)."""
    for _, man in fields.velocity_runs(out)["gaussian"]:
        spec, _, sampler, x = fields.rebuild(man)
        h = spec.method_kw["step"]
        np.testing.assert_allclose(sampler.step(x.copy(), None), x + h * sampler.velocity(x),
                                   rtol=0, atol=1e-12 * (1 + np.abs(x).max()))


def test_repulsion_matches_its_formula_term_by_term():
    """R(x) = (1/N) Σ_j exp(−|x − p_j|²/(2ℓ²)) (x − p_j)/ℓ², ℓ² = med²/(2 log(N+1)), against
    a loop over the particles; it vanishes at the centre of a symmetric cloud."""
    import sys

    rep = sys.modules[type(registry.get_sampler("kswgd")).__module__].repulsion
    rng = np.random.default_rng(5)
    p = rng.standard_normal((30, 2))
    x = rng.standard_normal((7, 2))
    dists = [np.linalg.norm(p[i] - p[j]) for i in range(30) for j in range(i + 1, 30)]
    ell2 = np.median(dists) ** 2 / (2 * np.log(31))
    slow = np.zeros_like(x)
    for j in range(30):
        diff = x - p[j]
        slow += np.exp(-np.sum(diff**2, axis=1) / (2 * ell2))[:, None] * diff / ell2
    np.testing.assert_allclose(rep(x, p), slow / 30, rtol=1e-12, atol=1e-15)
    sym = np.vstack([p, -p])
    np.testing.assert_allclose(rep(np.zeros((1, 2)), sym), 0.0, atol=1e-14)


def test_field_is_tiny_far_from_the_data(out):
    """The hypothesis the figures show: |v| decays off the data. For the 2-D Gaussian's rbf
    dictionary, |v| at distance 6 from the training cloud is below 1e-3 of its median over
    the training points."""
    _, man = next(r for r in fields.velocity_runs(out)["gaussian"]
                  if r[1]["spec"]["label"] == "spectral")
    spec, target, sampler, x0 = fields.rebuild(man)
    train = target.training(0, spec.n_train).x
    far = np.array([[10.0, 10.0], [-10.0, 10.0]])
    near = np.median(np.linalg.norm(sampler.velocity(train, x0), axis=1))
    assert np.all(np.linalg.norm(sampler.velocity(far, x0), axis=1) < 1e-3 * near)


def test_figures_are_written_at_the_layout_size(out, tmp_path):
    from matplotlib.image import imread

    from kswgd.reports.plots import save_figure

    made = dict(fields.velocity_figures(out))
    assert sorted(made) == ["velocity_gaussian.png", "velocity_gmm.png"]
    for name, panels in (("velocity_gaussian.png", 2), ("velocity_gmm.png", 1)):
        fig = made[name]()
        w, h = fig.get_size_inches()
        pw, ph = fields.PANEL
        assert (w, h) == pytest.approx((pw * panels + 0.8, ph + 0.6))
        (path,) = save_figure(fig, [tmp_path / name])
        image = imread(path)
        assert image.shape[:2] == (round(h * 120), round(w * 120))   # save_figure: 120 dpi
        assert image[..., :3].std() > 0.05                          # not a blank canvas


def test_publish_writes_the_velocity_figures(out, tmp_path):
    from kswgd.reports.publish import publish

    written = {p.name for p in publish(out, tmp_path / "pub")}
    assert {"velocity_gaussian.png", "velocity_gmm.png"} <= written
    assert (tmp_path / "pub" / "velocity_gmm.png").stat().st_size > 10_000
