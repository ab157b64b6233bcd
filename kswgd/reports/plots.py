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
from kswgd.core.metrics import label as metric_label
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


#: Smallest font of any figure, in points: 9 pt at the saved 120 dpi is 15 px, readable at 100 %.
MIN_FONT_PT = 9
#: Resolution of saved figures, and the tallest a saved multi-group figure may be.
SAVE_DPI = 120
MAX_HEIGHT_PX = 1600
_RC = {"font.size": 10, "axes.titlesize": 10, "axes.labelsize": 10, "xtick.labelsize": 9,
       "ytick.labelsize": 9, "legend.fontsize": 9, "figure.titlesize": 11}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(_RC)
    return plt


def _positive(values) -> bool:
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    return len(v) > 0 and bool(np.all(v > 0))


def draw_curves(ax, rows: pd.DataFrame, metric: str, x: str = "iteration",
                floors: Mapping[str, tuple] | None = None,
                styles: Mapping[str, tuple[str, str]] | None = None) -> None:
    """Draw one group's curves of ``metric`` on one axis against ``x`` ("iteration" or
    "seconds": the median cumulative sampler seconds at each checkpoint): per label the mean
    over repetitions (line, markers at checkpoints) with the min–max band; floors as
    horizontal lines (noise: dashed, its ± one std shaded; data: dotted)."""
    if x not in ("iteration", "seconds"):
        raise ValueError(f"x must be 'iteration' or 'seconds', got {x!r}")
    data = results_rows(rows)
    styles = styles or method_styles(data["label"])
    seen = list(data[metric].dropna()) if metric in data else []
    for label, g in data.groupby("label", sort=True):
        if metric not in g or g[metric].isna().all():
            continue
        colour, marker = styles[str(label)]
        by_it = g.groupby("iteration")
        mean, lo, hi = by_it[metric].mean(), by_it[metric].min(), by_it[metric].max()
        xs = mean.index.to_numpy() if x == "iteration" else by_it["seconds"].median().to_numpy()
        ax.plot(xs, mean.to_numpy(), color=colour, marker=marker, ms=4, lw=1.4, label=label)
        ax.fill_between(xs, lo.to_numpy(), hi.to_numpy(), color=colour, alpha=0.15, lw=0)
    floors = floors or {}
    for kind, style in (("noise", "--"), ("data", ":")):
        if kind not in floors:
            continue
        value, std = floors[kind]
        seen.append(value)
        ax.axhline(value, color="k", ls=style, lw=1, label=f"{kind} floor")
        # the noise floor's ± one std (over its seeds) is shaded: within it a method is as
        # close to π as N exact draws
        if kind == "noise" and np.isfinite(std) and std > 0:
            ax.axhspan(value - std, value + std, color="k", alpha=0.08, lw=0)
    # signed metrics (unbiased estimates, ≈ 0 with either sign near π) never get a log axis
    if not signed(metric) and _positive(seen):
        ax.set_yscale("log")
    ax.set_xlabel("iteration" if x == "iteration" else "sampler seconds")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    positive = data.loc[data["seconds"] > 0, "seconds"]
    if x == "seconds" and len(positive):
        # linear from 0 to the decade below the first checkpoint's time, logarithmic beyond:
        # methods whose speeds differ by orders of magnitude stay readable
        decade = 10.0 ** np.floor(np.log10(float(positive.min())))
        ax.set_xscale("symlog", linthresh=decade, linscale=0.5)
        ax.set_xlim(left=0)


def draw_convergence(ax_iter, ax_secs, rows: pd.DataFrame, metric: str,
                     floors: Mapping[str, tuple] | None = None,
                     styles: Mapping[str, tuple[str, str]] | None = None) -> None:
    """One group's :func:`draw_curves` against iteration on ``ax_iter`` and against sampler
    seconds on ``ax_secs``."""
    styles = styles or method_styles(results_rows(rows)["label"])
    draw_curves(ax_iter, rows, metric, "iteration", floors, styles)
    draw_curves(ax_secs, rows, metric, "seconds", floors, styles)


#: Up to this many groups a convergence figure has one row of two panels per group (at most
#: 3 × 3.9 in = 1 404 px tall); more groups: small multiples (:func:`small_multiples`).
MAX_PANEL_ROWS = 3
#: Small multiples: at most this many rows of panels; columns grow beyond 4 instead.
MAX_GRID_ROWS = 4


def _plottable(groups, metric: str) -> list:
    every = groups
    groups = [(h, r) for h, r in groups
              if metric in r and results_rows(r)[metric].notna().any()]
    if not groups:
        from kswgd.reports.leaderboard import recorded_metrics

        names = sorted({m for _, r in every for m in recorded_metrics(r)})
        raise ValueError(f"no finished run records the metric {metric!r}; recorded: "
                         f"{', '.join(names) or '(none)'}")
    return groups


def convergence_figure(groups: Sequence[tuple[Mapping, pd.DataFrame]], metric: str,
                       floors: pd.DataFrame | None = None,
                       styles: Mapping[str, tuple[str, str]] | None = None,
                       x: str = "iteration"):
    """The convergence figure of ``metric`` over comparable groups ``(header, rows)``.

    Up to :data:`MAX_PANEL_ROWS` groups: one row of two panels (vs iteration, vs sampler
    seconds) per group, headed by the suite, dataset, N, T and the metric. More groups:
    :func:`small_multiples` against ``x``, so that the figure stays at most
    :data:`MAX_HEIGHT_PX` tall with fonts of at least :data:`MIN_FONT_PT`. ``styles``: the
    label → (colour, marker) map (default: :func:`method_styles` of the labels drawn)."""
    import textwrap

    plt = _pyplot()
    groups = _plottable(groups, metric)
    styles = styles or method_styles(lab for _, r in groups for lab in r["label"])
    if len(groups) > MAX_PANEL_ROWS:
        return small_multiples(groups, metric, floors, styles, x)
    fig = plt.figure(figsize=(11, 3.9 * len(groups)), layout="constrained")
    rows_of = fig.subfigures(len(groups), 1, squeeze=False)[:, 0]
    for sub, (header, rows) in zip(rows_of, groups, strict=True):
        ax_i, ax_s = sub.subplots(1, 2)
        draw_convergence(ax_i, ax_s, rows, metric, floors_for(floors, header, metric), styles)
        sub.suptitle(textwrap.fill(group_title(header, rows, metric), 110), fontsize=10)
        ax_i.set_title(f"{metric} vs iteration")
        ax_s.set_title(f"{metric} vs sampler seconds")
        ax_i.legend(loc="best")
    return fig


def grid_shape(n: int) -> tuple[int, int]:
    """(rows, columns) of ``n`` small multiples: up to 4 columns, then at most
    :data:`MAX_GRID_ROWS` rows with as many columns as that needs."""
    ncol = max(min(n, 4), -(-n // MAX_GRID_ROWS))
    return -(-n // ncol), ncol


def small_multiples(groups: Sequence[tuple[Mapping, pd.DataFrame]], metric: str,
                    floors: pd.DataFrame | None = None,
                    styles: Mapping[str, tuple[str, str]] | None = None,
                    x: str = "iteration"):
    """One panel per comparable group (``metric`` against ``x``, :func:`draw_curves`), titled
    by its dataset and budget, in a :func:`grid_shape` grid; one legend for all panels below
    them. 3.6 × 2.9 in per panel: at most 4 × 2.9 + 1.3 = 12.9 in = 1 548 px tall at
    :data:`SAVE_DPI`."""
    import textwrap

    plt = _pyplot()
    groups = _plottable(groups, metric)
    styles = styles or method_styles(lab for _, r in groups for lab in r["label"])
    nrow, ncol = grid_shape(len(groups))
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.6 * ncol, 2.9 * nrow + 1.3),
                             squeeze=False, layout="constrained")
    handles: dict[str, object] = {}
    for ax, (header, rows) in zip(axes.flat, groups, strict=False):
        draw_curves(ax, rows, metric, x, floors_for(floors, header, metric), styles)
        budget = " ".join(f"{k}={int(header[c])}" for c, k in
                          (("n_particles", "N"), ("n_steps", "T")) if c in header)
        ax.set_title(textwrap.fill(f"{dataset_text(header)} · {budget}", 38))
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(lab, h)
    for ax in axes.flat[len(groups):]:
        ax.axis("off")
    suites = sorted({str(s) for _, r in groups for s in r.get("suite", pd.Series()).dropna()})
    what = "iteration" if x == "iteration" else "sampler seconds"
    fig.suptitle(f"{', '.join(suites) or '?'} · {metric} vs {what}: mean over repetitions, "
                 "min–max band; floors: noise dashed (± 1 std shaded), data dotted")
    fig.legend(list(handles.values()), list(handles), loc="outside lower center",
               ncol=min(len(handles), 8), frameon=False)
    return fig


def _group_names(table: pd.DataFrame, keys: list[str]) -> list[str]:
    """Display name of each group of a :func:`kswgd.reports.leaderboard.summary` table, in
    ``groupby(keys)`` order: the dataset with its non-default parameters, and N, T and M when
    that name is not unique."""
    heads = [{k: v for k, v in zip(keys, key if isinstance(key, tuple) else (key,), strict=True)
              if not _missing(v)} for key, _ in table.groupby(keys, sort=False, dropna=False)]
    names = [dataset_text(h) for h in heads]
    return [name + " · " + " ".join(f"{s}={int(h[c])}" for c, s in (
                ("n_particles", "N"), ("n_steps", "T"), ("n_train", "M")) if c in h)
            if names.count(name) > 1 else name for name, h in zip(names, heads, strict=True)]


def index_points(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The points of the index figure from a :func:`kswgd.reports.leaderboard.summary` table
    (methods' means and 95 % half-widths h, each group's noise floor f ± its std s):

    unsigned metric: value = mean / f, interval (mean ∓ h) / f (1 = as close to π as N exact
    draws; the floor is taken as exact);
    signed metric:   value = (mean − f) / s, interval (mean ∓ h − f) / s (floor-std units,
    0 = at the floor), since a ratio of estimates near 0 means nothing.

    One row per (group, label) that ran ok: group (display name), label, value, lo, hi (NaN
    for a single run), band (the floor's ± one std in the same units: s / f, or 1). Groups
    without a usable floor (none recorded, f ≤ 0 for a ratio, s ≤ 0 for a difference) give
    no rows; their names are in ``attrs["no_floor"]``."""
    from kswgd.reports.leaderboard import group_columns

    keys = [c for c in group_columns(table) if c in table]
    names = _group_names(table, keys)
    recs, no_floor = [], []
    is_signed = signed(metric)
    for name, (_, g) in zip(names, table.groupby(keys, sort=False, dropna=False), strict=True):
        floor = g[g["kind"] == "noise floor"]
        f = float(floor[metric].iloc[0]) if len(floor) and metric in floor else np.nan
        s = float(floor[f"{metric}_ci95"].iloc[0]) if len(floor) and metric in floor else np.nan
        unit, shift = (s, f) if is_signed else (f, 0.0)
        if not (np.isfinite(unit) and unit > 0 and np.isfinite(f)):
            no_floor.append(name)
            continue
        runs = g[(g["kind"] == "method") & g[metric].notna()]
        for _, r in runs.iterrows():
            mean, half = float(r[metric]), float(r[f"{metric}_ci95"])
            recs.append({"group": name, "label": str(r["label"]),
                         "value": (mean - shift) / unit, "lo": (mean - half - shift) / unit,
                         "hi": (mean + half - shift) / unit,
                         "band": 1.0 if is_signed else s / f})
    out = pd.DataFrame(recs, columns=["group", "label", "value", "lo", "hi", "band"])
    out.attrs["no_floor"] = no_floor
    return out


#: Index figure of a signed metric: the axis is linear within this many floor stds of the floor.
SIGNED_LINEAR = 3.0


def index_figure(table: pd.DataFrame, metric: str, title: str = "",
                 styles: Mapping[str, tuple[str, str]] | None = None):
    """One panel: each method's final ``metric`` relative to the noise floor
    (:func:`index_points`) per group, groups on the vertical axis (first at the top), a marker
    per method with its 95 % interval, the methods of a group side by side. Ratios on a log
    axis with the floor at 1; signed metrics in floor-std units with the floor at 0, on an
    axis linear within ± :data:`SIGNED_LINEAR` and logarithmic beyond (a method hundreds of
    stds off would flatten the rest); the floor's ± one std shaded in both."""
    from kswgd.core.metrics import METRICS

    plt = _pyplot()
    pts = index_points(table, metric)
    if pts.empty:
        raise ValueError(f"no group has both a finished run and a noise floor for {metric!r}")
    groups = list(dict.fromkeys(pts["group"]))
    labels = sorted(set(pts["label"]))
    styles = styles or method_styles(labels)
    fig, ax = plt.subplots(figsize=(10, 0.5 * len(groups) + 1.9), layout="constrained")
    width = 0.7 / max(len(labels), 1)
    is_signed = signed(metric)
    left = -np.inf
    if not is_signed:
        if (pts["value"] <= 0).any():
            raise ValueError(f"{metric} is not signed but a method's mean is ≤ 0: no ratio axis")
        # a lower bound ≤ 0 cannot be drawn on a log axis: its bar runs to the axis edge
        shown = pd.concat([pts["value"], pts["lo"][pts["lo"] > 0], 1 - pts["band"][
            (pts["band"] > 0) & (pts["band"] < 1)]])
        left = 0.7 * float(shown.min())
    for j, label in enumerate(labels):
        colour, marker = styles[label]
        sub = pts[pts["label"] == label]
        y = np.array([groups.index(g) for g in sub["group"]]) - 0.35 + width * (j + 0.5)
        v, lo, hi = (sub[c].to_numpy() for c in ("value", "lo", "hi"))
        lo = np.where(np.isfinite(lo), np.maximum(lo, left), v)
        err = np.vstack([v - lo, np.where(np.isfinite(hi), hi - v, 0.0)])
        ax.errorbar(v, y, xerr=err, fmt=marker, color=colour, ms=6, lw=1.2, capsize=2,
                    label=label)
    ref = 0.0 if is_signed else 1.0
    ax.axvline(ref, color="k", ls="--", lw=1, label="noise floor")
    for k, g in enumerate(groups):  # the floor's ± one std, in the figure's units
        band = float(pts.loc[pts["group"] == g, "band"].iloc[0])
        if np.isfinite(band) and band > 0:
            ax.fill_betweenx([k - 0.5, k + 0.5], ref - band, ref + band, color="k",
                             alpha=0.08, lw=0)
    if is_signed:  # linear within ± SIGNED_LINEAR floor stds, logarithmic beyond
        ax.set_xscale("symlog", linthresh=SIGNED_LINEAR, linscale=1.0)
    else:
        ax.set_xscale("log")
        ax.set_xlim(left=left)
    ax.set_yticks(range(len(groups)), groups)
    ax.set_ylim(len(groups) - 0.5, -0.5)
    for k in range(1, len(groups)):
        ax.axhline(k - 0.5, color="0.85", lw=0.6)
    ax.grid(axis="x", alpha=0.3)
    better = ("higher" if metric in METRICS and METRICS[metric].higher_is_better else "lower")
    name = metric_label(metric)
    ax.set_xlabel(f"(final {name} − noise floor) / floor std ({better} is better)"
                  if is_signed else f"final {name} / noise floor ({better} is better)")
    note = "mean over repetitions, bar: 95 % Student-t interval; shaded: the floor's ± 1 std"
    missing = pts.attrs.get("no_floor", [])
    if missing:
        note += "; no noise floor: " + ", ".join(missing)
    fig.suptitle(_wrap(f"{title + ' · ' if title else ''}{note}", 120))
    fig.legend(loc="outside right upper", frameon=False)
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
        ax.tick_params(labelsize=MIN_FONT_PT)
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
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=MIN_FONT_PT,
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
        ax.set_xticks(range(table.shape[1]), [str(c) for c in table.columns], fontsize=MIN_FONT_PT)
        ax.set_yticks(range(table.shape[0]), [str(i) for i in table.index], fontsize=MIN_FONT_PT)
        ax.set_xlabel(str(table.columns.name))
        ax.set_ylabel(str(table.index.name))
        mid = (finite.min() + finite.max()) / 2 if len(finite) else 0.0
        for i in range(table.shape[0]):
            for j in range(table.shape[1]):
                v = values[i, j]
                if np.isfinite(v):
                    star = "*" if marks is not None and bool(marks.iat[i, j]) else ""
                    ax.text(j, i, f"{v:.3g}{star}", ha="center", va="center", fontsize=MIN_FONT_PT,
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


FIGURE_FORMATS = ("png", "svg", "pdf")


def check_figure_paths(paths: Sequence[Path]) -> list[Path]:
    """The figure files to write, every one checked before anything is drawn or written: a
    suffix of :data:`FIGURE_FORMATS`, not an existing folder, under no existing file.
    ValueError (one line) for the first that fails."""
    paths = [Path(p) for p in paths]
    for path in paths:
        if path.suffix.lstrip(".").lower() not in FIGURE_FORMATS:
            raise ValueError(f"figure file {path}: the suffix must be "
                             f"{', '.join('.' + f for f in FIGURE_FORMATS[:-1])} or "
                             f".{FIGURE_FORMATS[-1]}")
        if path.is_dir():
            raise ValueError(f"figure file {path} is a folder")
        blocked = next((q for q in path.parents if q.exists() and not q.is_dir()), None)
        if blocked is not None:
            raise ValueError(f"figure file {path}: {blocked} is a file, not a folder")
    return paths


def save_figure(fig, paths: Sequence[Path]) -> list[Path]:
    """Write the figure to every path (format from the suffix: png, svg or pdf), atomically,
    then close it; every path is checked first (:func:`check_figure_paths`)."""
    from kswgd.engine import store

    plt = _pyplot()
    written = []
    try:
        for path in check_figure_paths(paths):
            fmt = path.suffix.lstrip(".").lower()
            store.atomic_write(path, lambda tmp, fmt=fmt: fig.savefig(tmp, dpi=120, format=fmt))
            written.append(path)
    finally:
        plt.close(fig)
    return written


def convergence_figure_of(out: Path, metric: str = "w2"):
    """The convergence figure of every comparable group of the results folder ``out``."""
    from kswgd.engine import store
    from kswgd.reports.leaderboard import board_rows, comparable_groups

    rows, _ = board_rows(out)  # current, intact runs; one label per configuration
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
