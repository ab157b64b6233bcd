"""Figures of a results folder, built from the flat result columns
(``kswgd.engine.store.load_rows``):

- convergence: a metric against iteration and against cumulative sampler seconds (metric
  evaluation excluded; the axis is linear up to the decade below the first checkpoint and
  logarithmic beyond), mean over repetitions with the min–max band, the noise floor (fresh
  exact draws of π of the particles' size: dashed line, ± one std over its seeds shaded) and,
  when recorded, the data floor (the training points' own score: dotted line);
- particle scatters over the reference (2-D and 3-D datasets), decoded image grids (datasets
  with a decoder, e.g. ``digits``), ablation heatmaps over two method parameters.

Runs are only drawn together when they are comparable (same dataset, dataset parameters and
budget; ``kswgd.reports.leaderboard.comparable_groups``). Every method label has one colour and
marker in every figure of a report (:func:`method_styles`). Matplotlib is imported lazily with the
Agg backend, so importing this module costs nothing and needs no display.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from kswgd.core.metrics import METRICS, signed
from kswgd.reports.leaderboard import group_floors, recorded_metrics

#: Fixed styles of the shipped methods (colour-blind-safe Okabe–Ito colours).
METHOD_STYLES: dict[str, tuple[str, str]] = {
    "kswgd": ("#0072b2", "o"),
    "dmps": ("#e69f00", "s"),
    "svgd": ("#009e73", "^"),
    "ula": ("#d55e00", "v"),
    "mala": ("#cc79a7", "D"),
    "lawgd": ("#56b4e9", "P"),
}
#: Colours for any other label (ablation entries, new plug-ins): distinct from each other and
#: from the reference's grey, readable on white.
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#d55e00", "#cc79a7", "#56b4e9", "#000000",
           "#7f3c8d", "#e73f74", "#8c564b", "#17becf", "#bcbd22", "#1b3a8c", "#6b8e23")
MARKERS = ("o", "s", "^", "v", "D", "P", "X", "*", "<", ">", "h", "p")


def method_styles(labels: Iterable[str]) -> dict[str, tuple[str, str]]:
    """(colour, marker) of every method label of a set of results: the one mapping that every
    figure of a report uses.

    Shipped method names keep :data:`METHOD_STYLES`. Every other label, in sorted order, takes
    the first free (colour, marker) pair at or after a slot chosen by the SHA-256 of the label
    (independent of ``PYTHONHASHSEED``), trying colours not used yet before reusing a colour
    with another marker. The result depends only on the set of labels, not on their order."""
    labels = sorted({str(x) for x in labels})
    styles = {lab: METHOD_STYLES[lab] for lab in labels if lab in METHOD_STYLES}
    pairs = [(PALETTE[k % len(PALETTE)], MARKERS[(k + k // len(PALETTE)) % len(MARKERS)])
             for k in range(len(PALETTE) * len(MARKERS))]
    for lab in labels:
        if lab in styles:
            continue
        start = int.from_bytes(hashlib.sha256(lab.encode()).digest()[:8], "big") % len(pairs)
        probe = pairs[start:] + pairs[:start]
        used_colours = {c for c, _ in styles.values()}
        used = set(styles.values())
        free = ([p for p in probe if p[0] not in used_colours]
                or [p for p in probe if p not in used] or probe)
        styles[lab] = free[0]
    return styles


def method_style(label: str) -> tuple[str, str]:
    """(colour, marker) of a label drawn on its own (:func:`method_styles` of one label)."""
    return method_styles([label])[str(label)]


def metric_columns(df: pd.DataFrame) -> list[str]:
    """The metrics recorded in a rows table that have values, in suite order (column
    ``metrics``: each run's comma-joined metric names, written from the run spec); a table
    without that column: the registered metrics (:data:`kswgd.core.metrics.METRICS`) it has."""
    names = recorded_metrics(df) if "metrics" in df else list(METRICS)
    return [m for m in names if m in df and df[m].notna().any()]


def results_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The rows that are results: finished ("ok") runs that are not step-size pilots."""
    if df.empty:
        return df
    keep = (df["status"] == "ok") & ~df["pilot"].astype(bool)
    return df[keep]


def _fmt_value(v) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return f"{v:g}" if isinstance(v, float) else str(v)


def dataset_text(header: Mapping) -> str:
    """``name (p=v, ...)`` from a group header's ``dataset`` and ``dataset.<param>`` keys,
    naming only the parameters that differ from the dataset's defaults (all of them for a
    dataset the registry does not know)."""
    from kswgd import registry

    name = str(header.get("dataset", "?"))
    cls = registry.datasets().get(name)
    defaults = dict(getattr(cls, "parameters", {}) or {})
    params = []
    for k, v in header.items():
        if not k.startswith("dataset.") or _missing(v):
            continue
        key = k.split(".", 1)[1]
        if key in defaults and _same(defaults[key], v):
            continue
        params.append(f"{key}={_fmt_value(v)}")
    return name + (f" ({', '.join(params)})" if params else "")


def _same(a, b) -> bool:
    try:
        return bool(a == b) or float(a) == float(b)
    except (TypeError, ValueError):
        return str(a) == str(b)


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v))


def group_title(header: Mapping, rows: pd.DataFrame, what: str = "") -> str:
    """Figure title: suite, dataset with its parameters, N, T and ``what`` (e.g. the metric)."""
    suites = sorted({str(s) for s in rows["suite"].dropna()}) if "suite" in rows else []
    budget = []
    if "n_particles" in header:
        budget.append(f"N={int(header['n_particles'])}")
    if "n_steps" in header:
        budget.append(f"T={int(header['n_steps'])}")
    parts = [", ".join(suites) or "?", dataset_text(header), " ".join(budget)]
    return " · ".join(p for p in [*parts, what] if p)


def floors_for(floors: pd.DataFrame | None, header: Mapping, metric: str) -> dict[str, tuple]:
    """{kind: (value, std)} of the floors recorded for ``metric`` and a group: every column
    the group header shares with the floors table (dataset, its parameters, particle count,
    reference and training sizes) must match; the number of steps does not matter. Kinds:
    "noise" and "data"; failed floors (NaN) are left out."""
    if floors is None or floors.empty:
        return {}
    sel = group_floors(floors, dict(header))
    sel = sel[(sel["metric"] == metric) & sel["value"].notna()]
    out = {}
    for kind, g in sel.groupby("kind", sort=False):
        last = g.iloc[-1]
        out[str(kind)] = (float(last["value"]), float(last["std"]))
    return out


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _positive(values) -> bool:
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    return len(v) > 0 and bool(np.all(v > 0))


def draw_convergence(ax_iter, ax_secs, rows: pd.DataFrame, metric: str,
                     floors: Mapping[str, tuple] | None = None,
                     styles: Mapping[str, tuple[str, str]] | None = None) -> None:
    """Draw one group's convergence curves for ``metric`` on two axes: mean over repetitions
    (line, markers at checkpoints) with the min–max band, against iteration and against the
    median cumulative sampler seconds at each checkpoint; floors as horizontal lines."""
    data = results_rows(rows)
    styles = styles or method_styles(data["label"])
    seen = list(data[metric].dropna()) if metric in data else []
    for label, g in data.groupby("label", sort=True):
        if metric not in g or g[metric].isna().all():
            continue
        colour, marker = styles[str(label)]
        by_it = g.groupby("iteration")
        mean, lo, hi = by_it[metric].mean(), by_it[metric].min(), by_it[metric].max()
        xs = {"iteration": mean.index.to_numpy(), "seconds": by_it["seconds"].median().to_numpy()}
        for ax, x in ((ax_iter, xs["iteration"]), (ax_secs, xs["seconds"])):
            ax.plot(x, mean.to_numpy(), color=colour, marker=marker, ms=4, lw=1.4, label=label)
            ax.fill_between(x, lo.to_numpy(), hi.to_numpy(), color=colour, alpha=0.15, lw=0)
    floors = floors or {}
    for kind, style in (("noise", "--"), ("data", ":")):
        if kind not in floors:
            continue
        value, std = floors[kind]
        seen.append(value)
        for ax in (ax_iter, ax_secs):
            ax.axhline(value, color="k", ls=style, lw=1, label=f"{kind} floor")
            # the noise floor's ± one std (over its seeds) is shaded: within it a method is
            # as close to π as N exact draws
            if kind == "noise" and np.isfinite(std) and std > 0:
                ax.axhspan(value - std, value + std, color="k", alpha=0.08, lw=0)
    # signed metrics (unbiased estimates, ≈ 0 with either sign near π) never get a log axis
    log = not signed(metric) and _positive(seen)
    for ax, xlabel in ((ax_iter, "iteration"), (ax_secs, "sampler seconds")):
        if log:
            ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    positive = data.loc[data["seconds"] > 0, "seconds"]
    if len(positive):
        # linear from 0 to the decade below the first checkpoint's time, logarithmic beyond:
        # methods whose speeds differ by orders of magnitude stay readable
        decade = 10.0 ** np.floor(np.log10(float(positive.min())))
        ax_secs.set_xscale("symlog", linthresh=decade, linscale=0.5)
        ax_secs.set_xlim(left=0)


def convergence_figure(groups: Sequence[tuple[Mapping, pd.DataFrame]], metric: str,
                       floors: pd.DataFrame | None = None,
                       styles: Mapping[str, tuple[str, str]] | None = None):
    """A Figure with one row of two panels (vs iteration, vs sampler seconds) per comparable
    group ``(header, rows)``, each row headed by the suite, dataset, N, T and the metric.
    ``styles``: the label → (colour, marker) map (default: :func:`method_styles` of the
    labels drawn)."""
    import textwrap

    plt = _pyplot()
    groups = [(h, r) for h, r in groups
              if metric in r and results_rows(r)[metric].notna().any()]
    if not groups:
        raise ValueError(f"no finished run records the metric {metric!r}")
    styles = styles or method_styles(lab for _, r in groups for lab in r["label"])
    fig = plt.figure(figsize=(11, 3.9 * len(groups)), layout="constrained")
    rows_of = fig.subfigures(len(groups), 1, squeeze=False)[:, 0]
    for sub, (header, rows) in zip(rows_of, groups, strict=True):
        ax_i, ax_s = sub.subplots(1, 2)
        draw_convergence(ax_i, ax_s, rows, metric, floors_for(floors, header, metric), styles)
        sub.suptitle(textwrap.fill(group_title(header, rows, metric), 110), fontsize=10)
        ax_i.set_title(f"{metric} vs iteration", fontsize=9)
        ax_s.set_title(f"{metric} vs sampler seconds", fontsize=9)
        ax_i.legend(fontsize=7, loc="best")
    return fig


def scatter_figure(particles: Mapping[str, np.ndarray], reference: np.ndarray, title: str,
                   styles: Mapping[str, tuple[str, str]] | None = None):
    """One panel per method label: its final particles (method colour) over the reference
    (grey); 2-D or 3-D."""
    plt = _pyplot()
    styles = styles or method_styles(particles)
    d = reference.shape[1]
    if d not in (2, 3):
        raise ValueError(f"a particle scatter needs a 2-D or 3-D dataset, got d = {d}")
    labels = list(particles)
    ncol = min(4, max(len(labels), 1))
    nrow = -(-max(len(labels), 1) // ncol)
    fig = plt.figure(figsize=(3.3 * ncol, 3.3 * nrow + 0.5))
    lo = np.min([reference.min(axis=0)] + [p.min(axis=0) for p in particles.values()], axis=0)
    hi = np.max([reference.max(axis=0)] + [p.max(axis=0) for p in particles.values()], axis=0)
    pad = 0.05 * (hi - lo + 1e-12)
    for k, label in enumerate(labels):
        colour, marker = styles[label]
        x = particles[label]
        if d == 2:
            ax = fig.add_subplot(nrow, ncol, k + 1)
            ax.scatter(reference[:, 0], reference[:, 1], s=3, c="0.8", lw=0, label="reference")
            ax.scatter(x[:, 0], x[:, 1], s=9, c=colour, marker=marker, lw=0, label=label)
            ax.set_aspect("equal", adjustable="box")
        else:
            ax = fig.add_subplot(nrow, ncol, k + 1, projection="3d")
            ax.scatter(*reference.T, s=3, c="0.7", lw=0, label="reference")
            ax.scatter(*x.T, s=14, c=colour, marker=marker, lw=0, label=label)
            ax.set_zlim(lo[2] - pad[2], hi[2] + pad[2])
        ax.set_xlim(lo[0] - pad[0], hi[0] + pad[0])
        ax.set_ylim(lo[1] - pad[1], hi[1] + pad[1])
        ax.set_title(label, fontsize=9, color=colour)
        ax.tick_params(labelsize=7)
    fig.suptitle(_wrap(title, 25 * ncol), fontsize=10)
    fig.tight_layout()
    return fig


def _wrap(text: str, width: int) -> str:
    import textwrap

    return textwrap.fill(text, max(int(width), 40))


def image_grid_figure(images: Mapping[str, np.ndarray], title: str, vmax: float | None = None,
                      styles: Mapping[str, tuple[str, str]] | None = None):
    """One row per label of (n, h, w) grey images (e.g. decoded digits), darkest = largest;
    a row label in its method colour when ``styles`` has it."""
    plt = _pyplot()
    labels = list(images)
    ncol = max(len(v) for v in images.values())
    fig, axes = plt.subplots(len(labels), ncol, figsize=(0.75 * ncol + 1.6, 0.8 * len(labels)
                                                          + 0.6), squeeze=False)
    top = vmax if vmax is not None else max(float(np.max(v)) for v in images.values())
    for r, label in enumerate(labels):
        for c in range(ncol):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(images[label]):
                ax.imshow(images[label][c], cmap="gray_r", vmin=0, vmax=top,
                          interpolation="nearest")
            else:
                ax.axis("off")
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8,
                              color=(styles or {}).get(label, ("k",))[0])
    fig.suptitle(_wrap(title, 8 * ncol + 15), fontsize=10)
    fig.tight_layout()
    return fig


def heatmap_figure(panels: Sequence[tuple[pd.DataFrame, str]], title: str,
                   marks: pd.DataFrame | None = None):
    """Side-by-side annotated heatmaps; each panel is (table indexed by one parameter's values,
    columns another's, cell values; a colour-bar label). Empty cells stay blank. ``marks``
    (same shape, bool) adds a ``*`` to a cell's text."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.8), squeeze=False)
    for ax, (table, label) in zip(axes[0], panels, strict=True):
        values = table.to_numpy(dtype=float)
        finite = values[np.isfinite(values)]
        im = ax.imshow(np.ma.masked_invalid(values), cmap="viridis", aspect="auto")
        ax.set_xticks(range(table.shape[1]), [str(c) for c in table.columns], fontsize=8)
        ax.set_yticks(range(table.shape[0]), [str(i) for i in table.index], fontsize=8)
        ax.set_xlabel(str(table.columns.name))
        ax.set_ylabel(str(table.index.name))
        mid = (finite.min() + finite.max()) / 2 if len(finite) else 0.0
        for i in range(table.shape[0]):
            for j in range(table.shape[1]):
                v = values[i, j]
                if np.isfinite(v):
                    star = "*" if marks is not None and bool(marks.iat[i, j]) else ""
                    ax.text(j, i, f"{v:.3g}{star}", ha="center", va="center", fontsize=8,
                            color="w" if v < mid else "k")
        fig.colorbar(im, ax=ax, label=label)
    fig.suptitle(_wrap(title, 45 * len(panels)), fontsize=10)
    fig.tight_layout()
    return fig


def figure_bytes(fig, fmt: str = "png", dpi: int = 110) -> bytes:
    """The figure encoded as PNG, SVG or PDF bytes; the figure is closed afterwards."""
    plt = _pyplot()
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format=fmt, dpi=dpi, metadata={"Software": None}
                    if fmt == "png" else None)
    finally:
        plt.close(fig)
    return buf.getvalue()


def save_figure(fig, paths: Sequence[Path]) -> list[Path]:
    """Write the figure to every path (format from the suffix: png, svg or pdf), atomically,
    then close it."""
    from kswgd.engine import store

    plt = _pyplot()
    written = []
    try:
        for path in map(Path, paths):
            fmt = path.suffix.lstrip(".").lower()
            if fmt not in ("png", "svg", "pdf"):
                raise ValueError(f"figure file {path}: the suffix must be .png, .svg or .pdf")
            store.atomic_write(path, lambda tmp, fmt=fmt: fig.savefig(tmp, dpi=120, format=fmt))
            written.append(path)
    finally:
        plt.close(fig)
    return written


def convergence_figure_of(out: Path, metric: str = "w2"):
    """The convergence figure of every comparable group of the results folder ``out``."""
    from kswgd.engine import store
    from kswgd.reports.leaderboard import comparable_groups

    rows = store.load_rows(out)
    if rows.empty:
        raise ValueError(f"no finished run in {out}")
    return convergence_figure(comparable_groups(rows), metric, store.load_floors(out))


def save_convergence_plot(out: Path, path: Path, metric: str = "w2") -> Path:
    """Write the convergence figure of ``out`` for ``metric`` to ``path`` (format by suffix)."""
    return save_figure(convergence_figure_of(out, metric), [path])[0]


__all__ = ["METHOD_STYLES", "convergence_figure", "convergence_figure_of", "draw_convergence",
           "figure_bytes", "floors_for", "group_title", "heatmap_figure", "image_grid_figure",
           "method_style", "method_styles", "metric_columns", "results_rows",
           "save_convergence_plot", "save_figure", "scatter_figure"]
