"""Convergence plots of a results folder: each metric against iteration and against sampler
wall-clock (metric evaluation excluded), one panel row per dataset, mean over repetitions with
the min–max band, and the noise floor as a dashed line."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from kswgd import store


def _floor_value(out: Path, key: str, n: int, metric: str) -> float | None:
    for path in sorted((Path(out) / "floors").glob(f"{key}_n{n}_s*.json")):
        with open(path) as fh:
            rec = json.load(fh)
        if metric in rec:
            return float(rec[metric])
    return None


def convergence_figure(out: Path, metric: str = "w2", run_ids: list[str] | None = None):
    """A matplotlib Figure: rows = datasets; columns = metric vs iteration, vs seconds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, manifests = store.load_runs(out, run_ids)
    runs = [m for m in manifests if m["status"] == "ok" and m["config"]["repetition"] >= 0
            and metric in m["config"]["metrics"]]
    if not runs:
        raise ValueError(f"no finished run in {out} records the metric {metric!r}")
    info = pd.DataFrame([{"run_id": m["run_id"], "dataset": m["config"]["dataset"],
                          "key": m["dataset_key"], "n": m["config"]["n_particles"],
                          "method": m.get("label", m["config"]["method"])} for m in runs])
    data = rows.merge(info, on="run_id")
    keys = list(dict.fromkeys(info["key"]))
    fig, axes = plt.subplots(len(keys), 2, figsize=(10, 3.4 * len(keys)), squeeze=False)
    log_scale = metric not in ("mmd2", "mmd2_ms", "ksd", "energy")  # these can be ≤ 0
    for row, key in enumerate(keys):
        sub = data[data["key"] == key]
        for col, xcol in enumerate(("iteration", "seconds")):
            ax = axes[row, col]
            for method, g in sub.groupby("method", sort=False):
                grid = g.groupby("iteration")
                x = grid[xcol].median()
                ax.plot(x, grid[metric].mean(), label=method)
                ax.fill_between(x, grid[metric].min(), grid[metric].max(), alpha=0.2)
            floor = _floor_value(out, key, int(sub["n"].iloc[0]), metric)
            if floor is not None:
                ax.axhline(floor, color="k", ls="--", lw=1, label="noise floor")
            if log_scale:
                ax.set_yscale("log")
            if xcol == "seconds":
                ax.set_xscale("symlog", linthresh=1e-3)
                ax.set_xlim(left=0)
            ax.set_xlabel("iteration" if xcol == "iteration" else "sampler seconds")
            ax.set_ylabel(metric)
            ax.set_title(str(sub["dataset"].iloc[0]))
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
