"""The KSWGD velocity field over the data: where the particles are driven, and where they stop.

For each flat 2-D dataset (dimension 2, no manifold) of a results folder, the KSWGD runs of
repetition 0 (current code, finished ok) are rebuilt exactly as the runner ran them
(:func:`rebuild`: the manifest's spec, the target's training data of that repetition, the
method's seed stream, ``setup``), and the drift

    v(x) = −Σ_k (c_k / λ_k) ∇φ_k(x) (+ γ R(x)),   c_k = (1/N) Σ_j φ_k(x_j^final),

(``KSWGD.velocity``: the step direction per unit step, for the run's final particles) is
evaluated on a grid. One figure per dataset, ``velocity_<dataset>.png``, one panel per run
(label, training size), all over one box: streamlines of v over log₁₀|v| in colour (one scale,
six decades below the largest value), the training points, the initial and the final
particles. Where the training data is thin, the fitted ∇φ_k, hence |v|, falls by decades:
particles that get there stop ("stranded", kswgd.core.health).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

from kswgd import registry
from kswgd.core.health import AWAY_FACTOR, training_index
from kswgd.engine import store
from kswgd.engine.spec import RunSpec, code_fingerprint
from kswgd.engine.target import rng_for, target_for

#: Grid points per axis of the velocity field.
GRID = 70
#: At most this many training points are drawn (a deterministic subset).
MAX_TRAIN_DRAWN = 1500
#: Panels per row of a velocity figure, and a panel's size in inches (width, height).
COLUMNS = 4
PANEL = (3.5, 3.4)


def velocity_runs(out: Path) -> dict[str, list[tuple[str, dict]]]:
    """dataset → [(run id, manifest)] of the KSWGD runs to draw: repetition 0, not a pilot,
    status ok, the current code (the spec's fingerprint equals the code's), a flat 2-D dataset,
    final particles stored. Ordered by training size, then label."""
    found: dict[str, list[tuple[str, dict]]] = {}
    for rid, man in store.load_manifests(out).items():
        spec = man.get("spec") or {}
        if (spec.get("method") != "kswgd" or spec.get("repetition") != 0 or spec.get("pilot")
                or man.get("status") != "ok"):
            continue
        if spec.get("code") != code_fingerprint(spec["dataset"], spec["method"]):
            continue
        ds = registry.get_dataset(spec["dataset"], **spec["dataset_params"])
        if ds.dim != 2 or ds.manifold is not None:
            continue
        if not (store.run_dir(out, rid) / "particles.npy").exists():
            continue
        found.setdefault(spec["dataset"], []).append((rid, man))
    for runs in found.values():
        runs.sort(key=lambda r: (r[1]["spec"]["n_train"], r[1]["spec"]["label"], r[0]))
    return dict(sorted(found.items()))


def rebuild(manifest: dict):
    """(spec, target, fitted sampler, initial particles) of a stored run, rebuilt as
    ``kswgd.engine.execute.execute`` built them: same training data, seed stream and setup."""
    spec = RunSpec.from_dict(manifest["spec"])
    rep = spec.repetition
    target = target_for(spec)
    sampler = registry.get_sampler(spec.method, **spec.method_kw)
    train = target.data_for(spec.data_kind, rep, spec.n_train)
    x0 = target.initial(rep, spec.n_particles)
    rng = rng_for(spec.root_seed, spec.dataset_key, spec.method, rep, "method")
    sampler.setup(target.dataset, train, rng)
    return spec, target, sampler, x0


def field_on_grid(sampler, particles: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                  n: int = GRID) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grid axes gx (n,), gy (n,) over the box [lo, hi] and v (n, n, 2) = sampler.velocity at
    (gx[j], gy[i]) for the cloud ``particles``."""
    gx, gy = np.linspace(lo[0], hi[0], n), np.linspace(lo[1], hi[1], n)
    xx, yy = np.meshgrid(gx, gy)
    pts = np.column_stack([xx.ravel(), yy.ravel()])
    v = sampler.velocity(pts, particles)
    return gx, gy, v.reshape(n, n, 2)


def _box(*clouds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The bounding box of the clouds, widened by 8 % on each side."""
    pts = np.vstack(clouds)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    pad = 0.08 * np.maximum(hi - lo, 1e-9)
    return lo - pad, hi + pad


def velocity_figure(out: Path, dataset: str, runs: list[tuple[str, dict]]):
    """The velocity figure of one dataset: a panel per run (module docstring)."""
    from kswgd.reports.plots import _pyplot

    plt = _pyplot()
    from matplotlib.colors import Normalize

    built = []
    for rid, man in runs:
        spec, target, sampler, x0 = rebuild(man)
        built.append((spec, sampler, target.training(spec.repetition, spec.n_train).x, x0,
                      store.load_particles(out, rid)))
    lo, hi = _box(*(c for b in built for c in b[2:]))     # one box for every panel
    panels = []
    for spec, sampler, train_x, x0, final in built:
        gx, gy, v = field_on_grid(sampler, final, lo, hi)
        speed = np.log10(np.maximum(np.linalg.norm(v, axis=2), 1e-300))
        tree, spacing = training_index(train_x)
        away = float(np.mean(tree.query(final, k=1)[0] > AWAY_FACTOR * spacing))
        panels.append((spec, train_x, x0, final, gx, gy, v, speed, away))
    finite = np.concatenate([p[7][np.isfinite(p[7])] for p in panels])
    top = float(np.max(finite))
    norm = Normalize(vmin=max(float(np.min(finite)), top - 6.0), vmax=top)
    ncols = min(COLUMNS, len(panels))
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(PANEL[0] * ncols + 0.8, PANEL[1] * nrows + 0.6),
                             squeeze=False, layout="constrained")
    labels_ntrain = {p[0].n_train for p in panels}
    image = None
    for ax, panel in zip(axes.flat, panels, strict=False):
        spec, train_x, x0, final, gx, gy, v, speed, away = panel
        image = ax.pcolormesh(gx, gy, speed, norm=norm, cmap="viridis", shading="auto",
                              rasterized=True)
        ax.streamplot(gx, gy, v[..., 0], v[..., 1], color="white", linewidth=0.5,
                      density=1.0, arrowsize=0.7)
        step = max(1, len(train_x) // MAX_TRAIN_DRAWN)
        ax.scatter(*train_x[::step].T, s=1.5, c="#a6e3ff", alpha=0.6, linewidths=0,
                   label="training points")
        ax.scatter(*x0.T, s=7, c="tab:orange", marker="+", linewidths=0.6,
                   label="initial particles")
        ax.scatter(*final.T, s=7, c="tab:red", edgecolors="black", linewidths=0.3,
                   label="final particles")
        ax.set_xlim(gx[0], gx[-1])
        ax.set_ylim(gy[0], gy[-1])
        ax.set_aspect("equal", adjustable="box")
        title = spec.label
        if len(labels_ntrain) > 1:
            title += f", M = {spec.n_train}"
        title += f"\nh = {spec.method_kw['step']:g}, away {100 * away:.0f} %"
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    fig.colorbar(image, ax=axes, shrink=0.8, label="log₁₀ |v|  (per unit step)")
    axes.flat[0].legend(loc="lower left", fontsize=7, markerscale=2, framealpha=0.8)
    fig.suptitle(f"{dataset}: KSWGD velocity v of the final particles\n(repetition 0; "
                 "white: streamlines)", fontsize=10)
    return fig


def velocity_figures(out: Path) -> list[tuple[str, Callable[[], object]]]:
    """(file name, figure maker) per flat 2-D dataset with KSWGD runs: velocity_<dataset>.png
    (:func:`velocity_figure`); nothing when the folder has no such run."""
    return [(f"velocity_{name}.png", partial(velocity_figure, Path(out), name, runs))
            for name, runs in velocity_runs(out).items()]
