"""``kswgd bench``: every speed figure of the project as a ratio to its floor or reference.

Each figure is measured side by side in one process: the candidate and its reference are
called alternately after a warm-up call, and the figure is the ratio of their medians (absolute
times on a shared machine drift by 1.3–1.5× between runs; ratios taken this way do not).

    kswgd_step_vs_floor    KSWGD step (rbf, F = 1 000, N = 2 627, d = 2) over its floor: numpy
                           ``exp`` over the N × F feature matrix, its column means (c) and one
                           product with d + 1 = 3 columns (Σ_j β_j ψ_ij (1, z_j)).
    dmps_step_vs_floor     DMPS step at the paper's size (n = 9 999 samples, N = 2 627, rank 60)
                           over numpy ``exp`` over the N × n kernel plus one product with
                           r + 5 columns.
    svgd_vs_classic_d2     SVGD step (median bandwidth + direction) against the classic numpy
                           formulation (full N × N kernel from ``pdist``, median over all pairs,
                           two products), as a speed-up, at d = 2 and at d = 10.
    kswgd_vs_tensor        KSWGD transport over n = 9 999 Gaussian bumps (every training point a
                           centre) against the formulation that materialises the (N, n, d)
                           difference and gradient tensors, as a speed-up.
    kswgd_scaling_N        exponent p of t ∝ N^p fitted to KSWGD steps, N = 1 000 … 32 000.
    svgd_scaling_N         the same for SVGD steps, N = 2 000 … 16 000.
    kswgd_peak_memory      peak resident memory (VmHWM) of a subprocess that fits KSWGD
                           (F = 2 000, 9 999 pairs) and runs 10 steps with N = 10 000 particles.
    mmd2_vs_numpy          metrics.mmd2 against the numpy form with three kernel matrices.
    w2_vs_pot              metrics.w2 against a bare ``ot.emd2`` call on the same cost matrix.
    cold_start, warm_start a small ``kswgd run`` in a subprocess, with an empty Numba cache
                           (a fresh NUMBA_CACHE_DIR) and again with the cache it filled;
    compile_overhead       their difference (the one-off compilation, ≤ 20 s).

Timings of the spectral steps use spectra whose values do not change the arithmetic (the
DMPS and the KSWGD floor figures use real fits; the (N, n, d) comparison random coefficients).
``fast=True`` runs every figure on tiny sizes (for the tests; its numbers mean nothing) and
times the start-up with the current Numba cache only.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "passive")  # spinning OpenMP threads distort timings


@dataclass
class Figure:
    """One figure: ``value`` in ``unit``, ``ok`` when lo ≤ value ≤ hi (``target`` says which)."""

    name: str
    value: float
    unit: str
    lo: float = -math.inf
    hi: float = math.inf
    detail: dict = field(default_factory=dict)

    @property
    def target(self) -> str:
        if math.isinf(self.lo):
            return f"<= {self.hi:g}"
        if math.isinf(self.hi):
            return f">= {self.lo:g}"
        return f"{self.lo:g}..{self.hi:g}"

    @property
    def ok(self) -> bool:
        return bool(np.isfinite(self.value) and self.lo <= self.value <= self.hi)

    def as_dict(self) -> dict:
        d = asdict(self)
        del d["lo"], d["hi"]
        return {"name": self.name, "value": self.value, "unit": self.unit,
                "target": self.target, "ok": self.ok, "detail": d["detail"]}


def paired_medians(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median seconds of each function, called alternately ``repeats`` times after a warm-up."""
    for f in fns.values():
        f()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    return {k: float(np.median(v)) for k, v in times.items()}


def fit_exponent(sizes, seconds) -> float:
    """Least-squares slope p of log t = p log N + const."""
    return float(np.polyfit(np.log(sizes), np.log(seconds), 1)[0])


# ---------------------------------------------------------------------------------------------
# The figures
# ---------------------------------------------------------------------------------------------


def _kswgd_sampler(n_particles: int, n_features: int, n_train: int, rank: int):
    from kswgd.registry import get_dataset, get_sampler

    ds = get_dataset("quadruple_well")
    s = get_sampler("kswgd", step=0.01, rank=rank, n_features=n_features)
    s.setup(ds, ds.train(n_train, np.random.default_rng(0), kind="trajectories"),
            np.random.default_rng(1))
    return s, ds.initial(n_particles, np.random.default_rng(2))


def kswgd_vs_floor(fast: bool, repeats: int) -> Figure:
    n, f = (200, 50) if fast else (2627, 1000)
    s, x = _kswgd_sampler(n, f, 300 if fast else 3000, 5 if fast else 30)
    rng = np.random.default_rng(0)
    e = -rng.random((n, f))
    k = np.empty_like(e)
    cols = rng.standard_normal((f, 3))

    def floor():
        np.exp(e, out=k)
        return k.mean(axis=0), k @ cols

    t = paired_medians({"step": lambda: s.step(x, None), "floor": floor}, repeats)
    return Figure("kswgd_step_vs_floor", t["step"] / t["floor"], "x floor", hi=1.5,
                  detail={"N": n, "F": f, "step_s": t["step"], "floor_s": t["floor"]})


def dmps_vs_floor(fast: bool, repeats: int) -> Figure:
    from kswgd.registry import get_dataset, get_sampler

    n_train, n, rank = (400, 300, 5) if fast else (9999, 2627, 60)
    ds = get_dataset("quadruple_well")
    s = get_sampler("dmps", step=0.01, rank=rank)
    t0 = time.perf_counter()
    s.setup(ds, ds.train(n_train, np.random.default_rng(0), kind="samples"),
            np.random.default_rng(1))
    fit_s = time.perf_counter() - t0
    x = ds.initial(n, np.random.default_rng(2))
    r = s.spectrum.rank
    rng = np.random.default_rng(0)
    e = -rng.random((n, n_train))
    k = np.empty_like(e)
    cols = rng.standard_normal((n_train, r + 5))

    def floor():
        np.exp(e, out=k)
        return k @ cols

    t = paired_medians({"step": lambda: s.step(x, None), "floor": floor}, repeats)
    return Figure("dmps_step_vs_floor", t["step"] / t["floor"], "x floor", hi=1.5,
                  detail={"n": n_train, "N": n, "rank": r, "step_s": t["step"],
                          "floor_s": t["floor"], "fit_s": fit_s})


def svgd_classic_step(x: np.ndarray, score: Callable, step: float) -> np.ndarray:
    """The classic numpy SVGD step: full N × N kernel, the median of the full N × N matrix of
    squared distances (diagonal zeros and both orders, as the original SVGD code)."""
    from scipy.spatial.distance import pdist, squareform

    n = len(x)
    sq = squareform(pdist(x, "sqeuclidean"))
    h2 = np.median(sq) / (2.0 * np.log(n + 1.0))
    kxy = np.exp(-sq / (2.0 * h2))
    grad_k = (x * kxy.sum(axis=1)[:, None] - kxy @ x) / h2
    return x + step * (kxy @ score(x) + grad_k) / n


def svgd_vs_classic(fast: bool, repeats: int) -> list[Figure]:
    from kswgd.registry import get_dataset, get_sampler

    out = []
    for d, n, lo in ((2, 300 if fast else 2627, 1.3), (10, 200 if fast else 2000, 1.0)):
        ds = get_dataset("gaussian", d=d)
        s = get_sampler("svgd", step=0.1)
        s.setup(ds, None, np.random.default_rng(0))
        x = ds.initial(n, np.random.default_rng(1))
        t = paired_medians({"ours": lambda: s.step(x, None),  # noqa: B023
                            "classic": lambda: svgd_classic_step(x, ds.score, 0.1)},  # noqa: B023
                           repeats)
        out.append(Figure(f"svgd_vs_classic_d{d}", t["classic"] / t["ours"], "x faster", lo=lo,
                          detail={"N": n, "d": d, "ours_s": t["ours"], "classic_s": t["classic"]}))
    return out


def kswgd_tensor_velocity(x, centres, sigma, xi, lam):
    """The KSWGD transport with (N, n, d) tensors: ψ, ∇ψ materialised, then contracted."""
    diff = x[:, None, :] - centres[None, :, :]                      # (N, n, d)
    psi = np.exp(-(diff**2).sum(axis=2) / (2 * sigma**2))            # (N, n)
    grad = -diff * psi[:, :, None] / sigma**2                        # (N, n, d)
    psi1 = np.hstack([np.ones((len(x), 1)), psi])
    c = psi1.mean(axis=0) @ xi
    beta = xi @ (c / lam)
    return np.einsum("njd,j->nd", grad, beta[1:]), c


def kswgd_vs_tensor(fast: bool, repeats: int) -> Figure:
    from kswgd.core.dictionaries import RBF
    from kswgd.core.spectrum import DictionarySpectrum
    from kswgd.registry import get_dataset

    n_train, n, rank = (300, 100, 5) if fast else (9999, 2627, 30)
    ds = get_dataset("quadruple_well")
    z = ds.train(n_train, np.random.default_rng(0), kind="samples").x
    dic = RBF(n_train, landmarks="all").fit(z)
    rng = np.random.default_rng(1)
    xi = rng.standard_normal((dic.n_features, rank)) / np.sqrt(dic.n_features)
    lam = np.arange(1.0, rank + 1)
    spec = DictionarySpectrum(lam, {}, dictionary=dic, coefficients=xi)
    x = ds.initial(n, np.random.default_rng(2))
    v_ref, _ = kswgd_tensor_velocity(x, dic.centres_, dic.sigma_, xi, lam)
    v, _ = spec.transport_velocity(x)
    err = float(np.abs(v - v_ref).max() / np.abs(v_ref).max())
    t = paired_medians({"ours": lambda: spec.transport_velocity(x),
                        "tensor": lambda: kswgd_tensor_velocity(x, dic.centres_, dic.sigma_,
                                                                xi, lam)},
                       max(1, repeats // 2))
    return Figure("kswgd_vs_tensor", t["tensor"] / t["ours"], "x faster", lo=20,
                  detail={"n": n_train, "N": n, "ours_s": t["ours"], "tensor_s": t["tensor"],
                          "max_rel_diff": err})


def scaling(fast: bool, repeats: int) -> list[Figure]:
    from kswgd.registry import get_dataset, get_sampler

    out = []
    sizes = [100, 200, 400, 800] if fast else [1000, 2000, 4000, 8000, 16000, 32000]
    s, _ = _kswgd_sampler(10, 50 if fast else 1000, 300 if fast else 3000, 5 if fast else 30)
    ds = get_dataset("quadruple_well")
    xs = {n: ds.initial(n, np.random.default_rng(n)) for n in sizes}
    t = paired_medians({n: (lambda n=n: s.step(xs[n], None)) for n in sizes}, repeats)
    secs = [t[n] for n in sizes]
    out.append(Figure("kswgd_scaling_N", fit_exponent(sizes, secs), "exponent", lo=0.9, hi=1.1,
                      detail={"N": sizes, "seconds": secs, "F": 50 if fast else 1000}))
    sizes = [100, 200, 400, 800] if fast else [2000, 4000, 8000, 16000]
    g = get_dataset("gaussian", d=2)
    sv = get_sampler("svgd", step=0.1)
    sv.setup(g, None, np.random.default_rng(0))
    xs = {n: g.initial(n, np.random.default_rng(n)) for n in sizes}
    t = paired_medians({n: (lambda n=n: sv.step(xs[n], None)) for n in sizes},
                       max(1, repeats // 2))
    secs = [t[n] for n in sizes]
    out.append(Figure("svgd_scaling_N", fit_exponent(sizes, secs), "exponent", lo=1.9, hi=2.1,
                      detail={"N": sizes, "seconds": secs, "d": 2}))
    return out


_MEMORY_SCRIPT = """
import resource, sys, numpy as np
from kswgd.registry import get_dataset, get_sampler
n, f, m, steps = (int(a) for a in sys.argv[1:5])
ds = get_dataset("quadruple_well")
s = get_sampler("kswgd", step=0.01, rank=30, n_features=f)
s.setup(ds, ds.train(m, np.random.default_rng(0), kind="trajectories"), np.random.default_rng(1))
x = ds.initial(n, np.random.default_rng(2))
for _ in range(steps):
    x = s.step(x, None)
try:   # VmHWM: this process image's own peak (ru_maxrss keeps the parent's peak at exec)
    with open("/proc/self/status") as fh:
        print([ln.split()[1] for ln in fh if ln.startswith("VmHWM:")][0], "VmHWM")
except (OSError, IndexError):
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "ru_maxrss")
"""


def peak_memory(fast: bool) -> Figure:
    args = ["500", "50", "300", "2"] if fast else ["10000", "2000", "9999", "10"]
    res = subprocess.run([sys.executable, "-c", _MEMORY_SCRIPT, *args], capture_output=True,
                         text=True, check=True, env=_child_env())
    kib, how = res.stdout.split()[-2:]                               # both are in KiB
    return Figure("kswgd_peak_memory", int(kib) / 1024.0, "MB", hi=1024,
                  detail={"N": int(args[0]), "F": int(args[1]), "pairs": int(args[2]),
                          "steps": int(args[3]),
                          "how": f"{how} of a subprocess (/proc/self/status; the whole process: "
                                 "interpreter, libraries, fit and run). Linux carries a parent's "
                                 "peak into ru_maxrss across fork+exec, so VmHWM is used"})


def mmd2_numpy(x, y, bandwidth: float) -> float:
    """Unbiased MMD² from three full kernel matrices (the numpy reference)."""
    from scipy.spatial.distance import cdist

    def k(a, b):
        return np.exp(-cdist(a, b, "sqeuclidean") / (2 * bandwidth**2))

    n, m = len(x), len(y)
    kxx, kyy = k(x, x), k(y, y)
    return float((kxx.sum() - np.trace(kxx)) / (n * (n - 1))
                 + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * k(x, y).mean())


def metric_times(fast: bool, repeats: int) -> list[Figure]:
    import ot
    from scipy.spatial.distance import cdist

    from kswgd.core import metrics

    rng = np.random.default_rng(0)
    n = 300 if fast else 5000
    x, y = rng.standard_normal((n, 2)) + 0.1, rng.standard_normal((n, 2))
    t = paired_medians({"ours": lambda: metrics.mmd2(x, y, bandwidth=1.0),
                        "numpy": lambda: mmd2_numpy(x, y, 1.0)}, max(1, repeats // 2))
    diff = abs(metrics.mmd2(x, y, bandwidth=1.0) - mmd2_numpy(x, y, 1.0))
    out = [Figure("mmd2_vs_numpy", t["numpy"] / t["ours"], "x faster", lo=2.0,
                  detail={"n": n, "ours_s": t["ours"], "numpy_s": t["numpy"],
                          "abs_diff": diff})]
    n = 200 if fast else 2000
    x, y = x[:n], y[:n]

    def pot():
        return ot.emd2([], [], cdist(x, y, "sqeuclidean"), numItermax=10_000_000)

    t = paired_medians({"ours": lambda: metrics.w2(x, y), "pot": pot}, max(1, repeats // 3))
    out.append(Figure("w2_vs_pot", t["ours"] / t["pot"], "x POT", hi=1.2,
                      detail={"n": n, "ours_s": t["ours"], "pot_s": t["pot"]}))
    return out


_START_SUITE = """
name = "bench-start"
description = "a small run for the start-up figures of kswgd bench"
root_seed = 1
repetitions = 1
n_particles = 100
n_steps = 10
n_checkpoints = 1
n_train = 500
n_reference = 200
metrics = ["w2", "mmd2"]
floor_seeds = 1
step_grid = [0.1]

[[datasets]]
name = "gaussian"
params = { d = 2 }

[[methods]]
name = "kswgd"
params = { rank = 5, n_features = 50 }

[[methods]]
name = "dmps"
params = { rank = 5 }

[[methods]]
name = "svgd"
params = {}
"""


def _child_env(**extra) -> dict:
    env = dict(os.environ)
    env.setdefault("OMP_WAIT_POLICY", "passive")
    env.update(extra)
    return env


def _timed_run(suite: str, out: str, env: dict) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "kswgd.cli", "run", "--suite", suite, "--out", out,
                    "--quiet"], capture_output=True, text=True, check=True, env=env)
    return time.perf_counter() - t0


def start_times(fast: bool) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="kswgd-bench-") as tmp:
        suite = os.path.join(tmp, "start.toml")
        with open(suite, "w") as fh:
            fh.write(_START_SUITE)
        env = _child_env() if fast else _child_env(NUMBA_CACHE_DIR=os.path.join(tmp, "numba"))
        cold = _timed_run(suite, os.path.join(tmp, "cold"), env)
        warm = _timed_run(suite, os.path.join(tmp, "warm"), env)
    how = ("the Numba cache as found (fast mode)" if fast
           else "cold: empty NUMBA_CACHE_DIR; warm: the same directory, filled by the cold run")
    run = "kswgd run: gaussian d=2, kswgd+dmps+svgd, 100 particles, 10 steps, w2+mmd2"
    return [Figure("cold_start", cold, "s", hi=90, detail={"how": how, "run": run}),
            Figure("warm_start", warm, "s", hi=60, detail={"how": how, "run": run}),
            Figure("compile_overhead", cold - warm, "s", hi=20,
                   detail={"what": "cold minus warm: the one-off Numba compilation of the "
                                   "kernels such a run needs", "cold_over_warm": cold / warm})]


SECTIONS: dict[str, Callable[[bool, int], list[Figure]]] = {
    "kswgd": lambda fast, rep: [kswgd_vs_floor(fast, rep), kswgd_vs_tensor(fast, rep)],
    "dmps": lambda fast, rep: [dmps_vs_floor(fast, rep)],
    "svgd": svgd_vs_classic,
    "scaling": scaling,
    "memory": lambda fast, rep: [peak_memory(fast)],
    "metrics": metric_times,
    "start": lambda fast, rep: start_times(fast),
}


def section_names(sections: list[str] | None) -> list[str]:
    """The sections to measure (all by default); ConfigError for an unknown one."""
    from kswgd.params import choice_error

    names = list(SECTIONS) if not sections else sections
    for name in names:
        if name not in SECTIONS:
            raise choice_error("bench section", name, list(SECTIONS))
    return names


def run_bench(fast: bool = False, sections: list[str] | None = None, repeats: int = 7,
              log: Callable[[Figure], None] | None = None) -> list[Figure]:
    """Measure the figures of the chosen ``sections`` (all by default), in order."""
    names = section_names(sections)
    figures: list[Figure] = []
    for name in names:
        for fig in SECTIONS[name](fast, repeats):
            figures.append(fig)
            if log is not None:
                log(fig)
    return figures


def environment_line() -> str:
    """Load average and CPU count at the time of the measurement."""
    load = os.getloadavg()
    return f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs"


def format_row(fig: Figure, judged: bool = True) -> str:
    verdict = ("ok" if fig.ok else "MISSED") if judged else "not judged (--fast)"
    return (f"{fig.name:22s} {fig.value:10.3f} {fig.unit:9s} target {fig.target:10s} "
            f"{verdict}")


def main(fast: bool, as_json: bool, sections: list[str] | None) -> int:
    """Print the figures (a table, or one JSON object per line); exit 1 if a target is missed.
    ``fast`` (toy sizes) measures every figure but judges none: exit 0 once all ran."""
    t0 = time.perf_counter()
    section_names(sections)  # an unknown section: one line, before anything is printed
    if as_json:
        figs = run_bench(fast, sections, log=lambda f: print(json.dumps(f.as_dict()), flush=True))
    else:
        print(environment_line(), flush=True)
        figs = run_bench(fast, sections,
                         log=lambda f: print(format_row(f, not fast), flush=True))
        verdict = ("toy sizes: no target judged" if fast else
                   f"{sum(f.ok for f in figs)}/{len(figs)} ok")
        print(f"{len(figs)} figures, {verdict}, in {time.perf_counter() - t0:.0f} s; "
              f"{environment_line()}")
    return 0 if fast or all(f.ok for f in figs) else 1
