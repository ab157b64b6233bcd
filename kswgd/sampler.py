"""The sampler interface: the base class, the run loop and the spectral-sampler base.

A sampler plug-in (``baselines/*.py``) subclasses :class:`Sampler`: it declares its parameters
(defaults), the information it uses (``uses``: a subset of trajectories, samples, score,
log_density, spectrum), a ``setup`` that learns from the training data (timed as fit time) and a
``step`` that moves all particles once. The runner owns the loop, seeds, budgets, timers and
checkpoints through :func:`run_sampler`, the one run loop (tests and notebooks call it too).
docs/plugins.md has a complete example and every member; tests/test_contract.py checks them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from kswgd.core.spectrum import dissipation_rate, spectral_residual
from kswgd.dataset import Dataset, TrainingData, move
from kswgd.params import ConfigError, Interval, resolve_params

ACCESS = ("trajectories", "samples", "score", "log_density", "spectrum")


class Sampler:
    """Base class of a particle sampler.

    Class attributes: ``name`` (registry name), ``description`` (one line), ``parameters``
    (defaults, the only accepted keys), ``constraints`` (the valid values of each parameter, see
    kswgd.params), ``uses`` (the information it consumes, shown beside its leaderboard row),
    ``data_kind`` (the training data it asks the dataset for: "trajectories", "samples", "any"
    (the dataset's own kind: pairs where it has them, else samples; then both kinds are in
    ``uses``) or None for none; if not None, also in ``uses``). An instance may set ``uses``
    and ``data_kind`` in ``__init__`` from its parameters. Required method: ``step``.
    """

    name: str = ""
    description: str = ""
    parameters: dict = {"step": 0.1}
    constraints: dict = {"step": Interval(float, 0, None, closed="neither")}
    uses: tuple[str, ...] = ()
    data_kind: str | None = None

    def __init__(self, **params):
        self.params = resolve_params(self.parameters, params, f"method {self.name!r}",
                                     self.constraints)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.params.items())})"

    def setup(self, dataset: Dataset, train: TrainingData | None, rng: np.random.Generator) -> None:
        """Learn what the sampler needs (fit a spectrum, build a score...). Default: keep refs."""
        self.dataset = dataset
        self.manifold = dataset.manifold

    def require(self, dataset: Dataset, *knowledge: str, euclidean: bool = False) -> None:
        """ConfigError (one line) unless ``dataset`` declares every named piece of
        ``knowledge`` (attributes such as "score", "log_density") and, with ``euclidean``,
        lives in R^d rather than on a manifold. For ``setup`` of samplers that need them."""
        missing = [k for k in knowledge if getattr(dataset, k, None) is None]
        if missing:
            raise ConfigError(f"{self.name} needs the {' and '.join(missing)} of dataset "
                              f"{dataset.name!r}")
        if euclidean and dataset.manifold is not None:
            raise ConfigError(f"{self.name} is Euclidean only; dataset {dataset.name!r} lives on "
                              f"the manifold {dataset.manifold.name!r}")

    def cannot_run(self, dataset: Dataset) -> str | None:
        """Why this configured sampler cannot run on ``dataset`` beyond what ``uses`` and
        ``data_kind`` say (e.g. an oracle spectrum that exists only in d ≤ 2), or None. Checked
        when a suite is planned: such a pair is stored as skipped with this reason, before
        any step-size pilot runs. Must be cheap (no fitting)."""
        return None

    def step(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Move all particles once; returns a new (N, d) array and leaves ``x`` unchanged."""
        raise NotImplementedError

    def diagnostics(self) -> dict[str, float]:
        """Scalars describing the last step (e.g. the spectral residual), kept at checkpoints."""
        return {}

    def grad_evals_per_step(self) -> int:
        """Score (∇ log π) evaluations per particle in one ``step``, as this code computes them:
        0 for methods that use no score (spectral ones, the default). The runner records
        iteration × this as the row column ``diag.grad_evals``, a budget beside iterations."""
        return 0

    def fit_info(self) -> dict:
        """What the fit recorded (JSON-serialisable); stored in the run manifest."""
        return {}


@dataclass(frozen=True)
class Checkpoint:
    """What the run loop reports at an iteration: the particles, the cumulative seconds spent
    in ``step`` (nothing else is timed) and the largest particle displacement of the last step
    (max_i |x_i(it) − x_i(it − 1)|)."""

    iteration: int
    x: np.ndarray
    seconds: float
    max_step: float


def run_sampler(
    sampler: Sampler,
    x0: np.ndarray,
    n_steps: int,
    rng: np.random.Generator,
    callback: Callable[[Checkpoint], bool | None] | None = None,
    *,
    at: set[int] | None = None,
    bound: float | None = None,
) -> np.ndarray:
    """The run loop (the runner's too): ``n_steps`` steps from ``x0``, returning the particles.

    ``callback(Checkpoint)`` is called after the steps listed in ``at`` (default: every step);
    it may return True to stop early. Raises ValueError at once when ``step`` returns anything
    but an array of the particles' shape, and FloatingPointError on non-finite particles or when
    a particle leaves the box max |x| ≤ ``bound`` (divergence), naming the step.
    """
    x = np.array(x0, dtype=np.float64, copy=True)
    seconds = 0.0
    for it in range(1, n_steps + 1):
        prev = x
        t0 = time.perf_counter()
        x = sampler.step(x, rng)
        seconds += time.perf_counter() - t0
        if not isinstance(x, np.ndarray) or x.shape != prev.shape:
            raise ValueError(f"{sampler.name or type(sampler).__name__}.step returned "
                             f"{getattr(x, 'shape', type(x).__name__)} at step {it}; expected "
                             f"the particles' shape {prev.shape}")
        if not np.all(np.isfinite(x)):
            raise FloatingPointError(f"non-finite particles at step {it}")
        if bound is not None and np.max(np.abs(x)) > bound:
            raise FloatingPointError(f"diverged at step {it}: max |x| = {np.max(np.abs(x)):.3g}")
        if callback is not None and (at is None or it in at):
            step = float(np.max(np.linalg.norm(x - prev, axis=1))) if len(x) else 0.0
            if callback(Checkpoint(it, x, seconds, step)):
                break
    return x


class SpectralSampler(Sampler):
    """Particles moved by the spectral transport of docs/design.md with a fitted spectrum.

        c_k = mean_j φ_k(x_j),   x_i ← x_i − h Σ_k (c_k/λ_k) ∇φ_k(x_i)

    Subclasses implement ``fit_spectrum``. Records the spectral residual S_n = Σ c_k² and the
    dissipation rate −log(S_{n+1}/S_n)/(2h).
    """

    def fit_spectrum(self, dataset: Dataset, train: TrainingData | None, rng):
        raise NotImplementedError

    def setup(self, dataset, train, rng):
        super().setup(dataset, train, rng)
        self.spectrum = self.fit_spectrum(dataset, train, rng)
        self._residuals: list[float] = []

    def step(self, x, rng):
        v, c = self.spectrum.transport_velocity(x)
        self._residuals.append(spectral_residual(c))
        return move(x, -self.params["step"] * v, self.manifold)

    def diagnostics(self):
        res = self._residuals
        out = {"residual": res[-1] if res else np.nan}
        out["dissipation_rate"] = (
            dissipation_rate(res[-2], res[-1], self.params["step"]) if len(res) > 1 else np.nan
        )
        return out

    def fit_info(self):
        return dict(self.spectrum.info)
