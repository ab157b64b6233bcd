"""Convergence plots of a results folder: each metric against iteration and against sampler
wall-clock (metric evaluation excluded), one panel row per comparable group, mean over
repetitions with the min–max band, and the noise floor as a dashed line."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from kswgd import store
from kswgd.leaderboard import comparable_groups
from kswgd.spec import SIGNED_METRICS


def _floor_value(floors: pd.DataFrame, header: dict, metric: str) -> float | None:
    """The noise floor of ``metric`` for a comparable group (None if not stored)."""
    if floors.empty:
        return None
    sel = floors[(floors["kind"] == "noise") & (floors["metric"] == metric)]
    for k, v in header.items():
        if k in sel.columns:
            sel = sel[sel[k] == v]
    return float(sel["value"].iloc[-1]) if len(sel) else None


def convergence_figure(out: Path, metric: str = "w2", run_ids: list[str] | None = None):
    """A matplotlib Figure: rows = comparable groups (dataset and budget); columns = metric
    vs iteration, vs seconds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = store.load_rows(out)
    if not rows.empty:
        rows = rows[(rows["status"] == "ok") & ~rows["pilot"].astype(bool)]
        if run_ids is not None:
            rows = rows[rows["run_id"].isin(run_ids)]
    if rows.empty or metric not in rows or rows[metric].isna().all():
        raise ValueError(f"no finished run in {out} records the metric {metric!r}")
    rows = rows[rows[metric].notna()]
    groups = comparable_groups(rows)
    floors = store.load_floors(out)
    fig, axes = plt.subplots(len(groups), 2, figsize=(10, 3.4 * len(groups)), squeeze=False)
    log_scale = metric not in SIGNED_METRICS
    for row, (header, sub) in enumerate(groups):
        for col, xcol in enumerate(("iteration", "seconds")):
            ax = axes[row, col]
            for label, g in sub.groupby("label", sort=False):
                grid = g.groupby("iteration")
                x = grid[xcol].median()
                ax.plot(x, grid[metric].mean(), label=label)
                ax.fill_between(x, grid[metric].min(), grid[metric].max(), alpha=0.2)
            floor = _floor_value(floors, header, metric)
            if floor is not None:
                ax.axhline(floor, color="k", ls="--", lw=1, label="noise floor")
            if log_scale:
                ax.set_yscale("log")
            if xcol == "seconds":
                ax.set_xscale("symlog", linthresh=1e-3)
                ax.set_xlim(left=0)
            ax.set_xlabel("iteration" if xcol == "iteration" else "sampler seconds")
            ax.set_ylabel(metric)
            ax.set_title(f"{header['dataset']} (N = {header['n_particles']}, "
                         f"T = {header['n_steps']})")
            ax.grid(alpha=0.3)
        axes[row, 0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def save_convergence_plot(out: Path, path: Path, metric: str = "w2") -> Path:
    """Write the convergence figure to ``path`` (PNG, SVG or PDF by suffix), atomically."""
    fig = convergence_figure(out, metric)
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    store.atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=120, format=fmt))
    return path


__all__ = ["convergence_figure", "save_convergence_plot"]
