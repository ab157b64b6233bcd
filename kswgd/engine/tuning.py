"""The tuning protocol's rules as pure functions (docs/design.md, "Tuning protocol").

Every method is tuned the same way: a suite declares its search space (any declared
parameter, each a list of values, the step among them); :func:`configurations` draws the same
number of configurations for every method; each configuration is piloted on the validation
repetitions −1, −2, … (their own training data, initial particles and seeds, disjoint from the
test repetitions 0, 1, …); :func:`select` picks one configuration from the pilots' records.

What a pilot is scored against depends only on what the method declares it uses
(:func:`selection_class`): a method that learns from samples or trajectories is scored by the
W2 distance of its final particles to a held-out block of its own training data
(:func:`split_training`, :func:`validation_score`); a method given the score or log-density by
the kernel Stein discrepancy of its final particles; only the explicit ``oracle`` mode scores
against exact draws of π, and it is labelled so.

Nothing here runs a sampler or writes a file: the planner and driver call these functions.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kswgd.core.data import TrainingData
from kswgd.core.health import COLLAPSED_FRACTION, STRANDED_FRACTION
from kswgd.core.metrics import ksd, w2
from kswgd.params import ConfigError, choice_error

#: How a suite asks pilots to be judged: by the information each method declares, or against
#: exact draws of π (the labelled upper bound).
SELECTION_MODES = ("declared", "oracle")
#: The information classes a choice can come from.
SELECTION_CLASSES = ("held-out", "ksd", "oracle")
#: Declared uses that mean "learns from data" (scored on held-out data) ...
DATA_USES = ("trajectories", "samples")
#: ... and those that mean "is given ∇log π or log π" (scored by the KSD).
SCORE_USES = ("score", "log_density")
#: Default share of a validation repetition's training data held out for scoring.
HELD_OUT_FRACTION = 0.2
#: The KSD statistic the ksd class selects by (part of the protocol's identity).
KSD_STATISTIC = "v"
#: A configuration counts only if it was piloted on at least this many data draws.
MIN_DRAWS = 2


# -- information classes ----------------------------------------------------------------------

def selection_class(uses: Iterable[str], mode: str = "declared") -> str:
    """The information class that judges a method's pilots.

    ``oracle`` mode: "oracle" for every method. ``declared`` mode: "held-out" when the method
    learns from data (``trajectories`` or ``samples``; data take precedence, since that is what
    the method learns π from), else "ksd" when it is given the score or the log-density, else
    a ConfigError (nothing declared to judge with: only the oracle mode can tune it)."""
    if mode not in SELECTION_MODES:
        raise choice_error("selection mode", mode, SELECTION_MODES)
    uses = tuple(uses)
    if mode == "oracle":
        return "oracle"
    if any(u in DATA_USES for u in uses):
        return "held-out"
    if any(u in SCORE_USES for u in uses):
        return "ksd"
    raise ConfigError(f"a method that uses {', '.join(uses) or 'nothing'} declares no data, "
                      "score or log-density to select its configuration with; use "
                      "selection = 'oracle' or fix its parameters")


def space_selection_class(uses_per_config: Iterable[Iterable[str]],
                          mode: str = "declared") -> str:
    """The one information class of a whole search space. A space whose configurations
    declare different classes (e.g. SVGD's score = exact | kde) would compare numbers on
    different scales, so it is refused (ConfigError): split it into two method entries."""
    classes = {selection_class(u, mode) for u in uses_per_config}
    if len(classes) != 1:
        raise ConfigError("a search space mixes information classes "
                          f"({', '.join(sorted(classes))}); give each class its own method entry")
    return classes.pop()


# -- held-out split ---------------------------------------------------------------------------

def chains(train: TrainingData) -> list[np.ndarray]:
    """Index arrays of the maximal chains of the training pairs: pair m + 1 continues pair m
    when it starts where m ends (y_m = x_{m+1} exactly, as ``pairs_from_chains`` builds them).
    Independent pairs and static samples are chains of length 1."""
    n = len(train.x)
    if not train.has_pairs or n < 2:
        return [np.arange(i, i + 1) for i in range(n)]
    links = np.all(train.y[:-1] == train.x[1:], axis=1)
    starts = np.concatenate([[0], np.flatnonzero(~links) + 1, [n]])
    return [np.arange(a, b) for a, b in itertools.pairwise(starts)]


def _subset(train: TrainingData, idx: np.ndarray, info: dict) -> TrainingData:
    y = None if train.y is None else np.ascontiguousarray(train.y[idx])
    return TrainingData(np.ascontiguousarray(train.x[idx]), y, lag=train.lag,
                        info={**train.info, **info})


def split_training(train: TrainingData, fraction: float, rng: np.random.Generator
                   ) -> tuple[TrainingData, TrainingData]:
    """Split a validation repetition's training data into (fit, held_out), disjoint.

    Trajectory points are correlated along a chain (:func:`chains`), so a held-out point must
    not sit among fitted neighbours. With C chains and C·fraction ≥ 1, round(C·fraction) whole
    chains (drawn by ``rng``) are held out and no chain is split; independent pairs and static
    samples are C chains of one point, so this is a random subset. With fewer chains (one long
    chain), the last round(fraction·L_c) pairs of every chain are held out: each chain is cut
    once, into a fitted beginning and a held-out end. Raises ConfigError if either part would
    be empty."""
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"held-out fraction must be between 0 and 1 (exclusive), got "
                          f"{fraction!r}")
    parts = chains(train)
    if len(parts) * fraction >= 1:
        k = min(round(len(parts) * fraction), len(parts) - 1)
        pick = np.sort(rng.permutation(len(parts))[:k])
        held = np.concatenate([parts[i] for i in pick])
        rule = "whole chains"
    else:
        held = np.concatenate([c[len(c) - round(fraction * len(c)):] for c in parts]
                              ) if parts else np.array([], int)
        rule = "end of each chain"
    mask = np.zeros(len(train.x), bool)
    mask[held.astype(int)] = True
    if mask.all() or not mask.any():
        raise ConfigError(f"cannot hold out {fraction:g} of {len(train.x)} training points "
                          f"in {len(parts)} chain(s): one part would be empty")
    info = {"held_out_fraction": float(mask.mean()), "held_out_rule": rule}
    fit_idx, held_idx = np.flatnonzero(~mask), np.flatnonzero(mask)
    return _subset(train, fit_idx, {**info, "part": "fit"}), _subset(
        train, held_idx, {**info, "part": "held-out"})


# -- validation scores and health -------------------------------------------------------------

def validation_score(selection: str, x: np.ndarray, *, held_out: TrainingData | None = None,
                     score: Callable[[np.ndarray], np.ndarray] | None = None,
                     ksd_scale: float = 1.0, reference: np.ndarray | None = None) -> float:
    """The number a pilot is judged by (lower is better), by information class:

    held-out: W2(particles, x of the held-out pairs or samples)
    ksd:      KSD²_V(particles; ∇log π) with the IMQ kernel of scale ``ksd_scale``: the
              V-statistic, ≥ 0, since the unbiased KSD²_u of interacting particles can sit far
              below 0 and its most negative value would win
    oracle:   W2(particles, exact draws of π) (the labelled upper bound)

    Exactly the input of its own class must be given (ValueError otherwise), so a method judged
    on held-out data can never be handed draws of π.
    """
    if selection not in SELECTION_CLASSES:
        raise choice_error("selection class", selection, SELECTION_CLASSES)
    given = {"held-out": held_out is not None, "ksd": score is not None,
             "oracle": reference is not None}
    if not given[selection] or sum(given.values()) != 1:
        raise ValueError(f"{selection} selection is judged by its own information only, got "
                         + (", ".join(k for k, v in given.items() if v) or "none"))
    if selection == "held-out":
        return w2(x, held_out.x)
    if selection == "ksd":
        return ksd(x, score, c=ksd_scale, statistic=KSD_STATISTIC)
    return w2(x, reference)


def stranded(away: float) -> bool:
    """More than STRANDED_FRACTION of the final particles away from the training data."""
    return away > STRANDED_FRACTION


def collapsed(distinct: float, n_particles: int) -> bool:
    """Fewer than COLLAPSED_FRACTION · N distinct final particles."""
    return distinct < COLLAPSED_FRACTION * n_particles


def worse_than_start(final: float, initial: float) -> bool:
    """The run ended farther from π than it started: final score > score of the initial
    particles, same metric and same reference (doing nothing would have scored better)."""
    return final > initial


@dataclass(frozen=True)
class Pilot:
    """One pilot: a configuration on one validation repetition (< 0). ``score`` and
    ``initial`` are the validation scores of the final and the initial particles; ``score`` is
    None when the run failed (raised, diverged, non-finite) and ``failure`` says why;
    ``away`` and ``distinct`` are the final particles' health (kswgd.core.health)."""

    config: dict
    repetition: int
    score: float | None
    initial: float
    n_particles: int
    away: float = 0.0
    distinct: float = math.inf
    failure: str | None = None
    seconds: float = 0.0

    def problems(self) -> list[str]:
        """Why this pilot is unhealthy ([] when healthy)."""
        if self.failure is not None or self.score is None or not math.isfinite(self.score):
            return [f"failed ({self.failure or 'no finite score'})"]
        out = []
        if stranded(self.away):
            out.append(f"stranded ({self.away:.0%} away)")
        if collapsed(self.distinct, self.n_particles):
            out.append(f"collapsed ({self.distinct:.0f} of {self.n_particles} distinct)")
        if worse_than_start(self.score, self.initial):
            out.append(f"worse than start ({self.score:.4g} > {self.initial:.4g})")
        return out


# -- configurations ---------------------------------------------------------------------------

def configurations(space: dict[str, Sequence[Any]], budget: int,
                   seed: int | Sequence[int]) -> list[dict]:
    """The configurations to pilot: all of the space's grid when it has at most ``budget``
    points (in grid order, keys sorted), else ``budget`` distinct grid points drawn uniformly
    without replacement by SeedSequence(``seed``) (the planner keys it by the suite's root
    seed and the method label), in grid order. Every method so gets min(budget, |space|)."""
    if not isinstance(budget, int) or isinstance(budget, bool) or budget < 1:
        raise ConfigError(f"tuning_budget must be a positive integer, got {budget!r}")
    for key, values in space.items():
        if isinstance(values, str | bytes) or not isinstance(values, Sequence) or not values:
            raise ConfigError(f"search space entry {key!r} must be a non-empty list, got "
                              f"{values!r}")
    keys = sorted(space)
    sizes = [len(space[k]) for k in keys]
    total = math.prod(sizes)
    if total <= budget:
        flat = range(total)
    else:
        rng = np.random.default_rng(np.random.SeedSequence(seed))
        flat = sorted(_distinct(rng, total, budget))
    out = []
    for i in flat:
        config = {}
        for k, n in zip(reversed(keys), reversed(sizes), strict=True):
            i, j = divmod(i, n)
            config[k] = space[k][j]
        out.append({k: config[k] for k in keys})
    return out


def _distinct(rng: np.random.Generator, total: int, k: int) -> list[int]:
    """k distinct integers of range(total), uniformly (Floyd's algorithm: O(k), any total)."""
    chosen: set[int] = set()
    for j in range(total - k, total):
        t = int(rng.integers(0, j + 1))
        chosen.add(j if t in chosen else t)
    return list(chosen)


# -- selection --------------------------------------------------------------------------------

def _key(config: dict) -> str:
    """A configuration's identity (numbers compared as floats: a step of 1 is a step of 1.0)."""
    def norm(v):
        return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else v
    return ", ".join(f"{k}={norm(v)!r}" for k, v in sorted(config.items()))


@dataclass
class ConfigStats:
    """One configuration's pilots summarised: mean, sample standard deviation (ddof = 1) and
    standard error of its validation scores over the repetitions, or why it is excluded."""

    config: dict
    scores: list[float]
    reps: list[int] = field(default_factory=list)
    mean: float = math.nan
    spread: float = math.nan
    se: float = math.nan
    excluded: str | None = None


@dataclass
class Choice:
    """What :func:`select` returns. ``config`` is the configuration to run on the test
    repetitions (None: nothing counts); ``validated`` the one the rule picked before the step
    margin; ``threshold`` the best mean; ``candidates`` the configurations within validation
    noise of it (:func:`within_noise`); ``margin`` what the step safety margin did."""

    config: dict | None
    validated: dict | None
    threshold: float
    candidates: list[dict]
    stats: list[ConfigStats]
    margin: str = "not applied"
    excluded: dict[str, str] = field(default_factory=dict)


def summarise(pilots: Sequence[Pilot], min_draws: int = MIN_DRAWS) -> list[ConfigStats]:
    """Per configuration: its statistics, or why it does not count. It counts only if it was
    piloted on at least ``min_draws`` validation repetitions and every one of its pilots is
    healthy (:meth:`Pilot.problems`): one unhealthy draw out of R predicts unhealthy test runs."""
    groups: dict[str, list[Pilot]] = {}
    for p in pilots:
        if p.repetition >= 0:
            raise ValueError(f"pilot of {_key(p.config)} on test repetition {p.repetition}: "
                             "validation repetitions are negative")
        groups.setdefault(_key(p.config), []).append(p)
    out = []
    for group in groups.values():
        reps = [p.repetition for p in group]
        if len(set(reps)) != len(reps):
            raise ValueError(f"{_key(group[0].config)}: repetition piloted twice: {reps}")
        group = sorted(group, key=lambda p: -p.repetition)
        st = ConfigStats(group[0].config, [p.score for p in group],
                         [p.repetition for p in group])
        bad = [f"rep {p.repetition}: {'; '.join(why)}" for p in group if (why := p.problems())]
        if bad:
            st.excluded = ", ".join(bad)
        elif len(group) < min_draws:
            st.excluded = f"piloted on {len(group)} data draw(s), fewer than {min_draws}"
        else:
            s = np.asarray(st.scores, float)
            st.mean, st.spread = float(s.mean()), float(s.std(ddof=1))
            st.se = st.spread / math.sqrt(len(s))
        out.append(st)
    return out


def select(pilots: Sequence[Pilot], *, margin: bool = False,
           steps: Sequence[float] | None = None, min_draws: int = MIN_DRAWS) -> Choice:
    """Choose a configuration from its pilots (a configuration × validation repetition grid).

    1. Exclude every configuration with an unhealthy pilot or fewer than ``min_draws`` draws
       (:func:`summarise`).
    2. Noise: the candidates are the configurations within validation noise of the best mean
       (:func:`within_noise`: paired over the draws they share).
    3. Among candidates prefer the more stable one: the smaller worst score over its draws
       (max_r score_c(r): a configuration is as good as its hardest draw), then the larger
       step, then the earlier configuration. (The smaller standard deviation, the first rule,
       is an estimate from two draws: it chose ULA's step 0.8 on a Gaussian, biased but equally
       biased on both draws, over step 0.2, better on every draw's worst.)
    4. Step margin (``margin=True``: the test fit sees more data than the pilot's fit, so it
       may diverge at a step its pilots survived). The choice keeps its step h only if the
       same configuration at the next larger step of ``steps`` (default: the steps piloted)
       was piloted and counts; otherwise it steps down to the next smaller step (when that
       step was piloted it must count too); at the smallest step, or when the smaller one
       does not count, h is kept and the margin is recorded as unconfirmed.

    When no configuration counts, the fallback :func:`_least_unhealthy` chooses one whose
    pilots all ran (unhealthy, not failed) and says so in ``margin``; its test runs show
    their own health flags, so a method that strands everywhere still has a row.
    """
    stats = summarise(pilots, min_draws)
    excluded = {_key(s.config): s.excluded for s in stats if s.excluded}
    ok = [s for s in stats if s.excluded is None]
    if not ok:
        return _least_unhealthy(pilots, stats, excluded, min_draws)
    best = min(ok, key=lambda s: s.mean)
    threshold = best.mean
    near = [s for s in ok if within_noise(s, best)]
    order = {_key(s.config): i for i, s in enumerate(stats)}
    pick = min(near, key=lambda s: (max(s.scores), -float(s.config.get("step", 0.0)),
                                    order[_key(s.config)]))
    choice = Choice(pick.config, pick.config, threshold, [s.config for s in near], stats,
                    excluded=excluded)
    if margin and "step" in pick.config:
        choice.config, choice.margin = _step_margin(pick.config, stats, steps)
    return choice


def within_noise(c: ConfigStats, best: ConfigStats) -> bool:
    """Is configuration c within validation noise of the best one?

    Pilots of every configuration on one validation repetition share its data, held-out part,
    initial particles and judge, so a draw that is hard for one is hard for all. The comparison
    is therefore paired: with d_r = score_c(r) − score_best(r) over the R ≥ 2 draws both ran on,

        c is within noise  ⇔  mean(d) ≤ sd(d) / √R    (sd with ddof 1; d ≡ 0 for the best)

    (a configuration worse on every shared draw by a steady margin is out, however much the
    draws differ). With fewer than two shared draws, unpaired: m_c ≤ m_b + se_b."""
    by_rep = dict(zip(best.reps, best.scores, strict=True))
    d = np.asarray([sc - by_rep[r] for r, sc in zip(c.reps, c.scores, strict=True)
                    if r in by_rep], float)
    if len(d) < 2:
        return c.mean <= best.mean + best.se
    return float(d.mean()) <= float(d.std(ddof=1)) / math.sqrt(len(d))


def _least_unhealthy(pilots: Sequence[Pilot], stats: list[ConfigStats],
                     excluded: dict[str, str], min_draws: int) -> Choice:
    """The fallback of :func:`select` when no configuration is healthy on every draw: among
    those whose pilots all ran to a finite score on ``min_draws`` draws or more (stranded,
    collapsed or worse than start, but not failed), the one with the fewest unhealthy pilots,
    then the smallest mean score. Its test runs then carry their own health flags on the
    leaderboard; the choice says it is a fallback. None when every configuration failed."""
    groups: dict[str, list[Pilot]] = {}
    for p in pilots:
        groups.setdefault(_key(p.config), []).append(p)
    ran = []
    for st in stats:
        group = groups[_key(st.config)]
        if len(group) >= min_draws and all(p.failure is None and p.score is not None
                                           and math.isfinite(p.score) for p in group):
            bad = sum(bool(p.problems()) for p in group)
            ran.append((bad, float(np.mean([p.score for p in group])), st))
    if not ran:
        return Choice(None, None, math.nan, [], stats, excluded=excluded)
    bad, mean, st = min(ran, key=lambda t: (t[0], t[1]))
    n = len(groups[_key(st.config)])
    return Choice(st.config, st.config, math.nan, [st.config], stats,
                  margin=f"fallback: no configuration healthy on every draw; "
                         f"{bad} of {n} pilots unhealthy", excluded=excluded)


def _step_margin(config: dict, stats: list[ConfigStats], steps: Sequence[float] | None
                 ) -> tuple[dict, str]:
    """The step safety margin of :func:`select` (step 4): (configuration, what was done)."""
    by_key = {_key(s.config): s for s in stats}
    grid = sorted(set(steps) if steps is not None else
                  {float(s.config["step"]) for s in stats if "step" in s.config})
    h = float(config["step"])
    larger = [g for g in grid if g > h]
    smaller = [g for g in grid if g < h]
    up = by_key.get(_key({**config, "step": larger[0]})) if larger else None
    if up is not None and up.excluded is None:
        return config, f"confirmed: step {larger[0]:g} also counts"
    why = ("no larger step in the grid" if not larger else
           f"step {larger[0]:g} was not piloted" if up is None else
           f"step {larger[0]:g} does not count")
    if not smaller:
        return config, f"unconfirmed ({why}; no smaller step)"
    down = by_key.get(_key({**config, "step": smaller[-1]}))
    if down is not None and down.excluded is not None:
        return config, f"unconfirmed ({why}; step {smaller[-1]:g} does not count either)"
    return {**config, "step": smaller[-1]}, f"stepped down from {h:g} to {smaller[-1]:g} ({why})"


def validation_repetitions(n: int) -> list[int]:
    """The repetition indices of n validation draws: −1, −2, …, −n."""
    if n < MIN_DRAWS:
        raise ConfigError(f"pilot_repetitions must be at least {MIN_DRAWS}, got {n}")
    return [-(i + 1) for i in range(n)]
