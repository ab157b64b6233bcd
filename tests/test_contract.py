"""The plug-in contract, in the spirit of scikit-learn's ``check_estimator``: every dataset and
every sampler that ``kswgd.registry`` finds is checked here, so a file dropped into
``datasets/`` or ``baselines/`` (or a ``KSWGD_PLUGIN_PATH`` folder) is covered without editing
this test.

Parameters (both kinds): every parameter has a constraint that its default meets; values just
outside each declared range, of a wrong type or not among the choices are refused with a one-line
ConfigError naming the plug-in, the key and what is valid, and the range's own ends are accepted.

Datasets: parameters round-trip and unknown ones are refused naming the valid ones; ``draw``,
``train`` (every declared kind) and ``initial`` return finite float arrays of the declared
shapes and are reproducible from the seed; every exact quantity a dataset declares agrees with
its draws (score = ∇ log_density by finite differences, log_density + β·potential constant,
draws and data on the declared manifold, eigenvalues positive and sorted with the constant mode
excluded, task metrics finite).

Samplers: the same parameter checks; on every dataset whose declared knowledge and data kinds
meet the sampler's declared needs, ``setup`` either refuses with a one-line ConfigError or the
sampler's ``step`` returns finite (N, d) arrays without touching its input, reproducibly, and it
reads nothing of the dataset or the training data beyond its declared ``uses`` (recorded by a
proxy around both).

Sizes are small (N = 12 particles, 3 steps, 120 training points) and parameters that only set a
cost (burn-in, rank, features, grid sizes) are reduced where a plug-in has them. A failure
message says what the interface requires; docs/plugins.md describes each member.
"""

from __future__ import annotations

import json
from functools import cache

import numpy as np
import pytest

from kswgd import registry
from kswgd.core import metrics
from kswgd.dataset import Dataset, Manifold, TrainingData
from kswgd.params import Boolean, Choice, ConfigError, Floats, Interval, Text, resolve_params
from kswgd.sampler import ACCESS, Sampler

DATASETS = sorted(registry.datasets())
SAMPLERS = sorted(registry.samplers())
N_PARTICLES, N_STEPS, N_TRAIN, N_DRAW = 12, 3, 120, 64
KINDS = ("trajectories", "samples")

#: Cost-only parameters, reduced wherever a plug-in has a parameter of that name (converted to
#: the default's type). Nothing here changes what a plug-in computes, only how much of it.
CHEAP_DATASET = {"burn_in": 1, "pca_fit_size": 60}
CHEAP_SAMPLER = {"rank": 3, "n_features": 30, "n_basis": 6, "grid": 30, "median_subsample": 0}

#: Besides its defaults, a sampler is also checked with these parameters: variants that change
#: what it uses (so that e.g. SVGD with a learned score is seen not to read the exact one).
VARIANTS = {"kswgd": [{"estimator": "dirichlet"}, {"estimator": "kde-pairs"}],
            "svgd": [{"score": "kde"}]}
SAMPLER_CASES = [(name, {}) for name in SAMPLERS] + [
    (name, v) for name, vs in VARIANTS.items() if name in SAMPLERS for v in vs]


def _cheap(cls, table: dict) -> dict:
    return {k: type(cls.parameters[k])(v) for k, v in table.items() if k in cls.parameters}


@cache
def dataset(name: str) -> Dataset:
    cls = registry.datasets()[name]
    return cls(**_cheap(cls, CHEAP_DATASET))


def rng(*key: int) -> np.random.Generator:
    return np.random.default_rng(list(key))


def _check_array(a, shape, what: str) -> None:
    assert isinstance(a, np.ndarray), f"{what}: {type(a).__name__}, not an ndarray"
    assert a.shape == shape, f"{what}: shape {a.shape}, expected {shape}"
    assert a.dtype.kind == "f", f"{what}: dtype {a.dtype}, expected float"
    assert np.all(np.isfinite(a)), f"{what}: non-finite entries"


def _refused(call, requirement: str) -> ConfigError:
    """The ConfigError that ``call()`` raises; fails with ``requirement`` when it raises none."""
    try:
        call()
    except ConfigError as err:
        return err
    pytest.fail(requirement, pytrace=False)


def _check_params(cls, owner: str) -> None:
    obj = cls()
    assert set(obj.params) == set(cls.parameters), \
        f"{owner}: resolved params differ from declared (docs/plugins.md, 'parameters')"
    again = cls(**obj.params)
    assert again.params == obj.params, f"{owner}: Cls(**obj.params) changed the parameters"
    message = str(_refused(lambda: cls(no_such_parameter_xyz=1),
                           f"{owner}: an unknown parameter must raise ConfigError (call "
                           "super().__init__(**params); docs/plugins.md, 'parameters')"))
    assert "\n" not in message and "no_such_parameter_xyz" in message, \
        f"{owner}: the error for an unknown parameter must be one line naming it: {message!r}"
    for key in cls.parameters:
        assert key in message, f"{owner}: the error does not name the valid parameter {key!r}"


# ---------------------------------------------------------------------------------------------
# Parameter constraints (both kinds of plug-in)
# ---------------------------------------------------------------------------------------------

PLUGINS = [("dataset", n) for n in DATASETS] + [("method", n) for n in SAMPLERS]


def _plugin(kind: str, name: str):
    return (registry.datasets() if kind == "dataset" else registry.samplers())[name]


def _outside(rule) -> list:
    """Values the constraint must refuse: just beyond each end of an interval (the end itself
    when it is open), a wrong type, a choice that is not one, a sequence of the wrong length."""
    if isinstance(rule, Interval):
        bad: list = ["abc", True, float("nan")]
        if rule.kind is int:
            bad.append(2.5)
        for end, sign, included in ((rule.low, -1, rule.closed in ("both", "left")),
                                    (rule.high, 1, rule.closed in ("both", "right"))):
            if end is None:
                continue
            if not included:
                bad.append(end)
            bad.append(end + sign if rule.kind is int
                       else float(np.nextafter(end, sign * np.inf)))
        return bad
    if isinstance(rule, Choice):
        return ["no_such_choice_xyz", 3.5]
    if isinstance(rule, Floats):
        return [[1.0] * (rule.length + 1), "abc"]
    if isinstance(rule, Boolean):
        return ["maybe", 2]
    if isinstance(rule, Text):
        return [3]
    raise AssertionError(f"unknown constraint {rule!r}")


def _ends(rule) -> list:
    """Values at the edges of a constraint that it must accept: an interval's closed ends."""
    if not isinstance(rule, Interval):
        return []
    return [e for e, inside in ((rule.low, rule.closed in ("both", "left")),
                                (rule.high, rule.closed in ("both", "right")))
            if e is not None and inside]


@pytest.mark.parametrize("kind,name", PLUGINS)
def test_every_parameter_has_a_constraint_that_its_default_meets(kind, name):
    cls = _plugin(kind, name)
    assert set(cls.constraints) == set(cls.parameters), \
        f"{kind} {name}: parameters without a constraint " \
        f"{sorted(set(cls.parameters) - set(cls.constraints))}, constraints without a " \
        f"parameter {sorted(set(cls.constraints) - set(cls.parameters))}"
    for key, rule in cls.constraints.items():
        assert rule.accepts(cls.parameters[key]), f"{kind} {name}: default {key} breaks {rule}"


@pytest.mark.parametrize("kind,name", PLUGINS)
def test_every_constraint_refuses_values_outside_it_in_one_line(kind, name):
    cls = _plugin(kind, name)
    owner = f"{kind} {name!r}"
    for key, rule in cls.constraints.items():
        for value in _outside(rule):
            with pytest.raises(ConfigError) as err:
                cls(**{key: value})
            message = str(err.value)
            assert "\n" not in message and repr(key) in message and owner in message, message
            assert rule.describe() in message, message
        for value in _ends(rule):  # the ends of a closed range are valid
            cast = type(cls.parameters[key])(value)
            assert resolve_params(cls.parameters, {key: cast}, owner, cls.constraints)[key] == cast


# ---------------------------------------------------------------------------------------------
# Datasets
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", DATASETS)
def test_dataset_parameters_round_trip_and_unknown_ones_are_refused(name):
    cls = registry.datasets()[name]
    assert issubclass(cls, Dataset) and cls.name == name and cls.description, \
        f"dataset {name}: a kswgd.Dataset subclass with a one-line `description` (docs/plugins.md)"
    _check_params(cls, f"dataset {name}")


@pytest.mark.parametrize("name", DATASETS)
def test_dataset_draw_train_initial_shapes_kinds_and_seeds(name):
    ds = dataset(name)
    d = ds.dim  # the registry refuses a dataset class without it
    assert isinstance(d, int) and d >= 1, f"{name}.dim = {d!r}, must be a positive int"
    assert ds.data_kinds and set(ds.data_kinds) <= set(KINDS), \
        f"{name}.data_kinds = {ds.data_kinds!r}: a non-empty tuple from {KINDS}"
    assert {"n_train", "n_reference", "n_particles"} <= set(ds.default_sizes), \
        f"{name}.default_sizes needs n_train, n_reference and n_particles"
    for what, fn in (("draw", ds.draw), ("initial", ds.initial)):
        a, b, c = fn(N_DRAW, rng(1)), fn(N_DRAW, rng(1)), fn(N_DRAW, rng(2))
        _check_array(a, (N_DRAW, d), f"{name}.{what}")
        assert a.tobytes() == b.tobytes(), f"{name}.{what}: same seed, different numbers"
        assert a.tobytes() != c.tobytes(), f"{name}.{what}: ignores its generator"
    for kind in ds.data_kinds:
        t = ds.train(N_TRAIN, rng(3), kind=kind)
        assert isinstance(t, TrainingData), f"{name}.train({kind}) must return TrainingData"
        _check_array(t.x, (N_TRAIN, d), f"{name}.train({kind}).x")
        if kind == "trajectories":
            _check_array(t.y, (N_TRAIN, d), f"{name}.train({kind}).y")
            assert t.lag is not None and t.lag > 0, f"{name}.train({kind}): lag must be > 0"
        else:
            assert t.y is None, f"{name}.train(samples) returned pairs"
        again = ds.train(N_TRAIN, rng(3), kind=kind)
        assert again.x.tobytes() == t.x.tobytes(), f"{name}.train({kind}): not reproducible"
    default = ds.train(N_TRAIN, rng(3))
    assert default.has_pairs == (ds.data_kinds[0] == "trajectories"), \
        f"{name}.train(kind=None) must give data_kinds[0] (docs/plugins.md, 'train')"
    _refused(lambda: ds.train(N_TRAIN, rng(3), kind="bogus"),
             f"{name}.train(kind='bogus') must raise ConfigError naming the valid kinds "
             "(kswgd.helpers.kind_or_default does it; docs/plugins.md, 'train')")


@pytest.mark.parametrize("name", DATASETS)
def test_dataset_exact_quantities_agree_with_its_draws(name):
    ds = dataset(name)
    x = ds.draw(N_DRAW, rng(4))
    man = ds.manifold
    known = ds.known()
    assert ("score" in known) == (ds.score is not None)
    assert ("log_density" in known) == (ds.log_density is not None)
    if ds.log_density is not None:
        _check_array(np.asarray(ds.log_density(x)), (N_DRAW,), f"{name}.log_density(draws)")
    if ds.score is not None:
        _check_array(np.asarray(ds.score(x)), (N_DRAW, ds.dim), f"{name}.score(draws)")
    if ds.score is not None and ds.log_density is not None and man is None:
        h = 1e-5
        fd = np.column_stack([
            (ds.log_density(x + h * e) - ds.log_density(x - h * e)) / (2 * h)
            for e in np.eye(ds.dim)])
        np.testing.assert_allclose(ds.score(x), fd, rtol=1e-5, atol=1e-5 * (1 + np.abs(fd).max()),
                                   err_msg=f"{name}: score is not the gradient of log_density")
    if ds.potential is not None:
        assert ds.log_density is not None, \
            f"{name}: a potential needs a log_density (docs/plugins.md, 'potential')"
        beta = float(getattr(ds, "beta", 1.0))
        c = ds.log_density(x) + beta * ds.potential(x)
        np.testing.assert_allclose(c, c[0], atol=1e-9 * (1 + abs(c[0])),
                                   err_msg=f"{name}: log_density + beta V is not constant")
    if man is not None:
        assert isinstance(man, Manifold) and 1 <= man.intrinsic_dim < ds.dim, \
            f"{name}.manifold: a kswgd.Manifold with 1 <= intrinsic_dim < dim"
        clouds = {"draw": x, "initial": ds.initial(N_DRAW, rng(5))}
        for kind in ds.data_kinds:
            t = ds.train(N_TRAIN, rng(6), kind=kind)
            clouds[f"train({kind}).x"] = t.x
            if t.y is not None:
                clouds[f"train({kind}).y"] = t.y
        for what, pts in clouds.items():
            assert man.distance(pts).max() < 1e-9, f"{name}.{what} is off the manifold"
        off = x + 0.05 * rng(7).standard_normal(x.shape)
        p = man.project(off)
        assert man.distance(p).max() < 1e-9 and np.allclose(man.project(p), p), \
            f"{name}.manifold.project must land on the manifold and fix its points"
        v = rng(8).standard_normal(x.shape)
        pv = man.tangent(x, v)
        assert np.allclose(man.tangent(x, pv), pv), f"{name}: tangent is not a projection"
    lam = ds.eigenvalues(8)
    assert (lam is not None) == ("spectrum" in known), \
        f"{name}: eigenvalues(1) and eigenvalues(8) disagree on whether the spectrum is known"
    if lam is not None:
        lam = np.asarray(lam, dtype=float)
        # Convention (Dataset.eigenvalues): λ_1..λ_r of L = −(Δ − ∇V·∇), the zero mode excluded.
        assert lam.shape == (8,) and np.all(np.isfinite(lam)), \
            f"{name}.eigenvalues(8): shape {lam.shape}, must be 8 finite values"
        assert lam[0] > 0 and np.all(np.diff(lam) >= 0), f"{name}: eigenvalues {lam} must be " \
            "positive and sorted, the zero eigenvalue left out (docs/plugins.md, 'eigenvalues')"
        np.testing.assert_array_equal(np.asarray(ds.eigenvalues(3), dtype=float), lam[:3],
                                      err_msg=f"{name}: eigenvalues(3) != eigenvalues(8)[:3]")
    centres = getattr(ds, "well_centres", None)
    if centres is not None:
        assert np.shape(centres)[1:] == (ds.dim,) and len(centres) >= 1, \
            f"{name}.well_centres: shape {np.shape(centres)}, must be (K, {ds.dim}), K >= 1"
    for metric, fn in ds.task_metrics().items():
        assert metric not in metrics.METRICS, f"{name}: task metric {metric!r} shadows a metric"
        value = fn(x)
        assert isinstance(value, float) and np.isfinite(value), f"{name}.{metric} = {value!r}"


# ---------------------------------------------------------------------------------------------
# Samplers
# ---------------------------------------------------------------------------------------------


class _Recorder:
    """Records which kinds of information a sampler reads (a set of ACCESS names, plus
    "draw" for fresh exact draws of π, which no sampler may take)."""

    def __init__(self):
        self.seen: set[str] = set()

    def wrap(self, fn, kind: str):
        def recorded(*args, **kwargs):
            self.seen.add(kind)
            return fn(*args, **kwargs)
        return recorded


#: Dataset attributes that hand out information about π, and the access kind each one is.
_DATASET_ACCESS = {"score": "score", "grad_potential": "score", "log_density": "log_density",
                   "potential": "log_density", "eigenvalues": "spectrum", "draw": "draw",
                   "log_z": "log_density"}


class _DatasetProxy:
    """The dataset as a sampler sees it: every attribute passes through, and calling one that
    gives out information about π records its access kind; ``train`` records the data kind."""

    def __init__(self, ds: Dataset, rec: _Recorder):
        object.__setattr__(self, "_ds", ds)
        object.__setattr__(self, "_rec", rec)

    def __getattr__(self, name):
        value = getattr(self._ds, name)
        if value is None or not callable(value):
            return value
        if name in _DATASET_ACCESS:
            return self._rec.wrap(value, _DATASET_ACCESS[name])
        if name == "train":
            def train(n, rng, kind=None):
                self._rec.seen.add(kind or self._ds.data_kinds[0])
                return value(n, rng, kind)
            return train
        return value


class _TrainingProxy:
    """Training data whose ``x``/``y`` record "trajectories" (pairs) or "samples" when read."""

    def __init__(self, data: TrainingData, rec: _Recorder):
        self._data, self._rec = data, rec

    def __getattr__(self, name):
        if name in ("x", "y"):
            self._rec.seen.add("trajectories" if self._data.has_pairs else "samples")
        return getattr(self._data, name)


def _can_run(sampler: Sampler, ds: Dataset) -> bool:
    """The sampler's declared needs are met by the dataset (the runner's own rule)."""
    return registry.incompatibility(sampler, ds) is None


def _training(ds: Dataset, kind: str | None) -> TrainingData | None:
    """What the runner hands over: the dataset's primary kind (as is for ``data_kind='any'``);
    a samples method given a trajectory dataset gets the x of the same pairs."""
    if kind is None:
        return None
    data = ds.train(N_TRAIN, rng(10), kind=ds.data_kinds[0])
    return TrainingData(data.x, info=dict(data.info)) if kind == "samples" else data


def _make(cls, variant: dict) -> Sampler:
    return cls(**{**_cheap(cls, CHEAP_SAMPLER), **variant})


def _run(cls, ds: Dataset, rec: _Recorder | None = None, variant: dict | None = None):
    """setup + N_STEPS steps from seeded initial particles; returns (sampler, [x_0..x_T])."""
    sampler = _make(cls, variant or {})
    train = _training(ds, sampler.data_kind)
    rec = rec or _Recorder()
    sampler.setup(_DatasetProxy(ds, rec), None if train is None else _TrainingProxy(train, rec),
                  rng(11))
    xs = [ds.initial(N_PARTICLES, rng(12))]
    step_rng = rng(13)
    for _ in range(N_STEPS):
        x = xs[-1].copy()
        xs.append(sampler.step(x, step_rng))
        assert np.array_equal(x, xs[-2]), f"{cls.name}.step modified its input in place"
    return sampler, xs


@pytest.mark.parametrize("name", SAMPLERS)
def test_sampler_parameters_round_trip_and_declarations(name):
    cls = registry.samplers()[name]
    assert issubclass(cls, Sampler) and cls.name == name and cls.description, \
        f"method {name}: a kswgd.Sampler subclass with a one-line `description` (docs/plugins.md)"
    _check_params(cls, f"method {name}")
    obj = cls()
    assert set(obj.uses) <= set(ACCESS), f"{name}: uses {obj.uses} outside {ACCESS}"
    assert obj.data_kind in (None, "any", *KINDS), \
        f"{name}.data_kind = {obj.data_kind!r}, must be None, 'any' or one of {KINDS}"
    if obj.data_kind == "any":
        assert set(KINDS) <= set(obj.uses), f"{name}: asks for any data but does not use both"
    elif obj.data_kind is not None:
        assert obj.data_kind in obj.uses, f"{name}: asks for {obj.data_kind} but does not use it"
    assert any(_can_run(obj, dataset(d)) for d in DATASETS), f"{name} runs on no dataset"


def _case_id(case) -> str:
    name, variant = case
    return name + "".join(f"[{k}={v}]" for k, v in variant.items())


@pytest.mark.parametrize("dname", DATASETS)
@pytest.mark.parametrize("case", SAMPLER_CASES, ids=_case_id)
def test_sampler_steps_reproducibly_within_its_declared_uses(case, dname):
    (name, variant), ds = case, dataset(dname)
    cls = registry.samplers()[name]
    if not _can_run(_make(cls, variant), ds):
        pytest.skip(f"{name} needs what {dname} does not declare (the runner skips the pair)")
    rec = _Recorder()
    try:
        sampler, xs = _run(cls, ds, rec, variant)
    except ConfigError as err:  # a documented refusal (e.g. MALA on a manifold): one line
        assert "\n" not in str(err), f"{name}.setup refused {dname} in several lines: {err}"
        pytest.skip(f"{name} refuses {dname}: {err}")
    allowed = set(sampler.uses) | ({"samples"} if "trajectories" in sampler.uses else set())
    assert rec.seen <= allowed, f"{name} on {dname} read {sorted(rec.seen - allowed)}, " \
                                f"declared uses {sampler.uses}"
    for x in xs[1:]:
        _check_array(x, (N_PARTICLES, ds.dim), f"{name}.step on {dname}")
        if ds.manifold is not None:
            assert ds.manifold.distance(x).max() < 1e-9, f"{name} left the manifold of {dname}"
    _, again = _run(cls, ds, variant=variant)
    for a, b in zip(xs, again, strict=True):
        assert a.tobytes() == b.tobytes(), f"{name} on {dname}: same seeds, different numbers"
    diag = sampler.diagnostics()
    assert all(isinstance(k, str) and isinstance(float(v), float) for k, v in diag.items()), \
        f"{name}.diagnostics() must map names to floats: {diag!r}"
    try:
        json.dumps(sampler.fit_info())
    except TypeError as err:
        pytest.fail(f"{name}.fit_info() must be JSON-serialisable: {err}", pytrace=False)


def test_the_access_recorder_catches_a_sampler_reading_beyond_its_uses():
    """The contract's own check can fail: a samples-only sampler that peeks at the score, and
    one that draws fresh exact samples of π, are both caught."""

    class Peeking(Sampler):
        name = ""
        uses = ("samples",)
        data_kind = "samples"

        def setup(self, dataset, train, rng):
            super().setup(dataset, train, rng)
            self.mean = train.x.mean(axis=0)
            dataset.score(train.x[:2])
            dataset.draw(3, rng)

        def step(self, x, rng):
            return 0.5 * (x + self.mean)

    rec = _Recorder()
    _, xs = _run(Peeking, dataset("gaussian"), rec)
    assert rec.seen == {"samples", "score", "draw"}
    m = _training(dataset("gaussian"), "samples").x.mean(axis=0)
    np.testing.assert_allclose(xs[-1], m + 0.5**N_STEPS * (xs[0] - m))
