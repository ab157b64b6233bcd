"""Figures of a dimension study: a suite whose datasets repeat at several dimensions d (the
``dataset.d`` column) with everything else equal, e.g. ``benchmarks/suites/dimension.toml``.

A *series* is one dataset with its other parameters and the budget fixed, seen at ≥ 2 values
of d (:func:`dimension_series`). For each series, against d on a log axis:

- ``dimension_<metric>.png``: each method's final metric relative to the noise floor at that
  d, the arithmetic of the index figure (:func:`kswgd.reports.plots.index_points`): an
  unsigned metric as mean / f with the 95 % Student-t interval (mean ∓ h) / f on a log axis,
  the floor at 1 (f: the noise floor, N fresh exact draws of π); a signed metric as
  (mean − f) / s in floor-std units on an axis linear within ± 3 and logarithmic beyond, the
  floor at 0. The floor's ± one std is shaded (s / f, or 1);
- ``dimension_seconds.png``: median fit seconds and median sampler seconds (metrics
  excluded), min–max over repetitions as bars, log axes;
- ``dimension_memory.png``: the runs' peak traced memory (``peak_mb``,
  :mod:`kswgd.engine.memory`), median with min–max, log axes; only when rows carry it.

One panel column per series, one line and marker per method (the colours of every other
figure, :func:`kswgd.reports.plots.method_styles`); a method missing at some d did not finish
there (skipped or failed: the leaderboard says why).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial

import numpy as np
import pandas as pd

from kswgd.core.metrics import METRICS, signed
from kswgd.core.metrics import label as metric_label
from kswgd.engine.spec import BUDGET_COLUMNS
from kswgd.reports.leaderboard import final_rows, summary
from kswgd.reports.plots import (
    SIGNED_LINEAR,
    _pyplot,
    _wrap,
    dataset_text,
    index_points,
    method_styles,
    results_rows,
)

D = "dataset.d"


def series_columns(df: pd.DataFrame) -> list[str]:
    """The columns that fix a series: the dataset, its parameters other than d, the budget."""
    params = sorted(c for c in df.columns if c.startswith("dataset.") and c != D)
    return [c for c in ("dataset", *params, *BUDGET_COLUMNS) if c in df.columns]


def dimension_series(final: pd.DataFrame) -> list[tuple[dict, pd.DataFrame]]:
    """[(header, rows)] of the series in final rows, by dataset name: rows that share
    :func:`series_columns` and hold at least two distinct d. Empty without a ``dataset.d``."""
    if final.empty or D not in final or final[D].notna().sum() == 0:
        return []
    cols = series_columns(final)
    out = []
    for key, g in final[final[D].notna()].groupby(cols, sort=False, dropna=False):
        if g[D].nunique() < 2:
            continue
        head = {c: v for c, v in zip(cols, key if isinstance(key, tuple) else (key,),
                                     strict=True) if not (isinstance(v, float) and np.isnan(v))}
        out.append((head, g))
    return sorted(out, key=lambda hg: [str(hg[0].get(c, "")) for c in cols])


def metric_points(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The points of ``dimension_<metric>.png`` for one series' :func:`summary` table: per d
    the rows of :func:`index_points` of that d's comparable group, with a column ``d``."""
    parts = []
    for d, g in table.groupby(D, sort=True):
        if metric not in g:
            continue
        pts = index_points(g, metric)
        if len(pts):
            parts.append(pts.assign(d=float(d)))
    cols = ["d", "label", "value", "lo", "hi", "band"]
    return pd.concat(parts)[cols] if parts else pd.DataFrame(columns=cols)


def spread(final: pd.DataFrame, column: str) -> pd.DataFrame:
    """Per (label, d) of one series' final rows: the median, min and max of ``column`` over
    the repetitions that have it."""
    g = final[final[column].notna()] if column in final else final.iloc[:0]
    if g.empty:
        return pd.DataFrame(columns=["label", "d", "median", "min", "max"])
    agg = g.groupby(["label", D])[column].agg(["median", "min", "max"]).reset_index()
    return agg.rename(columns={D: "d"})


def _offset(j: int, n: int) -> float:
    """Multiplicative shift of the j-th of n methods on the log d axis, so that bars at one d
    stay apart (at most ± 6 %)."""
    return float(np.exp(0.12 * ((j + 0.5) / max(n, 1) - 0.5)))


def _d_axis(ax, ds) -> None:
    from matplotlib.ticker import NullFormatter

    ds = sorted({float(d) for d in ds})
    ax.set_xscale("log")
    ax.set_xticks(ds, [f"{d:g}" for d in ds])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlim(ds[0] / 1.3, ds[-1] * 1.3)
    ax.set_xlabel("dimension d")
    ax.grid(alpha=0.3)


def _series_title(header: Mapping) -> str:
    budget = " ".join(f"{s}={int(header[c])}" for c, s in (("n_particles", "N"),
                                                           ("n_steps", "T")) if c in header)
    return f"{dataset_text(header)} · {budget}".strip(" ·")


def _suite_names(rows: pd.DataFrame) -> str:
    return ", ".join(sorted({str(s) for s in rows.get("suite", pd.Series()).dropna()})) or "?"


#: Width of one series' panel column, and the narrowest figure (inches).
PANEL_WIDTH, MIN_WIDTH = 4.8, 7.0


def _figure(n_series: int, n_rows: int = 1, height: float = 3.6):
    plt = _pyplot()
    width = max(PANEL_WIDTH * n_series, MIN_WIDTH)
    fig, axes = plt.subplots(n_rows, n_series, figsize=(width, height * n_rows + 1.6),
                             squeeze=False, layout="constrained")
    return fig, axes


def _finish(fig, axes, title: str) -> None:
    """The wrapped title above the panels and one legend for all of them below."""
    handles: dict[str, object] = {}
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(lab, h)
    width = fig.get_size_inches()[0]
    fig.suptitle(_wrap(title, int(11 * width)))
    fig.legend(list(handles.values()), list(handles), loc="outside lower center",
               ncol=max(1, min(len(handles), int(width // 1.6))), frameon=False)


def metric_figure(series: list[tuple[dict, pd.DataFrame]], floors: pd.DataFrame | None,
                  metric: str, styles: Mapping[str, tuple[str, str]] | None = None):
    """``dimension_<metric>.png``: the metric relative to its noise floor against d, one panel
    per series that recorded it (see the module docstring)."""
    tables = []
    for header, final in series:
        pts = metric_points(summary(final, floors), metric)
        if len(pts):
            tables.append((header, final, pts))
    if not tables:
        raise ValueError(f"no series has a finished run and a noise floor for {metric!r}")
    styles = styles or method_styles(lab for _, f, _ in tables for lab in f["label"])
    is_signed = signed(metric)
    fig, axes = _figure(len(tables))
    for ax, (header, _, pts) in zip(axes[0], tables, strict=True):
        labels = sorted(set(pts["label"]))
        ds = sorted(set(pts["d"]))
        floor_band = pts.groupby("d")["band"].first().reindex(ds).to_numpy(dtype=float)
        ref = 0.0 if is_signed else 1.0
        ax.axhline(ref, color="k", ls="--", lw=1, label="noise floor")
        ok = np.isfinite(floor_band) & (floor_band > 0)
        if ok.any():  # the floor's ± one std at each d, in the figure's units
            lo_band = np.maximum(ref - floor_band, 1e-12 if not is_signed else -np.inf)
            ax.fill_between(np.asarray(ds)[ok], lo_band[ok], (ref + floor_band)[ok],
                            color="k", alpha=0.08, lw=0, label="floor ± 1 std")
        left = 0.7 * float(pd.concat([pts["value"], pts["lo"][pts["lo"] > 0]]).min()) \
            if not is_signed and (pts["value"] > 0).all() else -np.inf
        for j, lab in enumerate(labels):
            sub = pts[pts["label"] == lab].sort_values("d")
            colour, marker = styles[lab]
            x = sub["d"].to_numpy() * _offset(j, len(labels))
            v, lo, hi = (sub[c].to_numpy(dtype=float) for c in ("value", "lo", "hi"))
            lo = np.where(np.isfinite(lo), np.maximum(lo, left), v)
            hi = np.where(np.isfinite(hi), hi, v)
            ax.errorbar(x, v, yerr=np.vstack([v - lo, hi - v]), color=colour, marker=marker,
                        ms=5, lw=1.3, capsize=2, label=lab)
        if is_signed:
            ax.set_yscale("symlog", linthresh=SIGNED_LINEAR, linscale=1.0)
        elif (pts["value"] > 0).all():
            ax.set_yscale("log")
        _d_axis(ax, ds)
        ax.set_title(_series_title(header))
        name = metric_label(metric)
        better = "higher" if metric in METRICS and METRICS[metric].higher_is_better else "lower"
        ax.set_ylabel(f"(final {name} − floor) / floor std" if is_signed
                      else f"final {name} / noise floor")
        ax.text(0.01, 0.99, f"{better} is better", transform=ax.transAxes, va="top",
                fontsize=9, color="0.35")
    _finish(fig, axes, f"{_suite_names(tables[0][1])} · {metric_label(metric)} against "
            "dimension: mean over repetitions, bars: 95 % Student-t interval")
    return fig


def _spread_panel(ax, agg: pd.DataFrame, styles: Mapping, ylabel: str) -> None:
    labels = sorted(set(agg["label"]))
    for j, lab in enumerate(labels):
        sub = agg[agg["label"] == lab].sort_values("d")
        colour, marker = styles[lab]
        x = sub["d"].to_numpy(dtype=float) * _offset(j, len(labels))
        med, lo, hi = (sub[c].to_numpy(dtype=float) for c in ("median", "min", "max"))
        ax.errorbar(x, med, yerr=np.vstack([med - lo, hi - med]), color=colour, marker=marker,
                    ms=5, lw=1.3, capsize=2, label=lab)
    if len(agg) and (agg["min"] > 0).all():
        ax.set_yscale("log")
    _d_axis(ax, agg["d"])
    ax.set_ylabel(ylabel)


def seconds_figure(series: list[tuple[dict, pd.DataFrame]],
                   styles: Mapping[str, tuple[str, str]] | None = None):
    """``dimension_seconds.png``: fit seconds (top row) and sampler seconds (bottom row)
    against d, median over repetitions with min–max bars, one column per series."""
    styles = styles or method_styles(lab for _, f in series for lab in f["label"])
    fig, axes = _figure(len(series), 2, 3.2)
    for k, (header, final) in enumerate(series):
        _spread_panel(axes[0, k], spread(final, "fit_seconds"), styles, "fit seconds")
        _spread_panel(axes[1, k], spread(final, "seconds"), styles, "sampler seconds")
        axes[0, k].set_title(_series_title(header))
    _finish(fig, axes, f"{_suite_names(series[0][1])} · seconds against dimension (setup, "
            "and the sampler's steps with metrics excluded): median, bars: min–max over "
            "repetitions")
    return fig


def memory_figure(series: list[tuple[dict, pd.DataFrame]],
                  styles: Mapping[str, tuple[str, str]] | None = None):
    """``dimension_memory.png``: each run's peak traced memory (``peak_mb``, fit and sampling,
    metrics excluded) against d, median with min–max bars, one panel per series."""
    styles = styles or method_styles(lab for _, f in series for lab in f["label"])
    fig, axes = _figure(len(series))
    for k, (header, final) in enumerate(series):
        _spread_panel(axes[0, k], spread(final, "peak_mb"), styles, "peak memory (MiB)")
        axes[0, k].set_title(_series_title(header))
    _finish(fig, axes, f"{_suite_names(series[0][1])} · peak memory against dimension "
            "(tracemalloc: numpy and Numba arrays allocated by the fit and the steps, metrics "
            "excluded): median, bars: min–max over repetitions")
    return fig


def dimension_figures(rows: pd.DataFrame, floors: pd.DataFrame | None, metrics: list[str]
                      ) -> list[tuple[str, Callable[[], object]]]:
    """The (file name, figure maker) pairs of a dimension study in checkpoint rows (or final
    rows; ``kswgd.engine.store.load_rows``): nothing when no dataset repeats at ≥ 2 values of
    d. ``dimension_<metric>.png`` for each metric some series has a noise floor for, then
    ``dimension_seconds.png`` and, when rows carry ``peak_mb``, ``dimension_memory.png``."""
    done = results_rows(rows)
    if done.empty:
        return []
    series = dimension_series(final_rows(done))
    if not series:
        return []
    styles = method_styles(lab for _, f in series for lab in f["label"])
    out: list[tuple[str, Callable[[], object]]] = []
    for metric in metrics:
        if any(len(metric_points(summary(f, floors), metric)) for _, f in series):
            out.append((f"dimension_{metric}.png",
                        partial(metric_figure, series, floors, metric, styles)))
    out.append(("dimension_seconds.png", partial(seconds_figure, series, styles)))
    if any("peak_mb" in f and f["peak_mb"].notna().any() for _, f in series):
        out.append(("dimension_memory.png", partial(memory_figure, series, styles)))
    return out


__all__ = ["dimension_figures", "dimension_series", "memory_figure", "metric_figure",
           "metric_points", "seconds_figure", "spread"]
