"""Leaderboards: per dataset, one row per method with final metrics as mean ± std over
repetitions, the information the method uses, wall-clock, and the noise-floor row (the same
metrics for fresh independent draws of π of the particles' size)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from kswgd import store

LABELS = {"w2": "W2", "mmd2": "MMD²", "sw2": "SW2", "energy": "energy", "ksd": "KSD"}


def final_table(out: Path, run_ids: list[str] | None = None) -> pd.DataFrame:
    """One row per run: config keys, status, the metrics at its last checkpoint, seconds."""
    rows, manifests = store.load_runs(out, run_ids)
    recs = []
    for man in manifests:
        cfg = man["config"]
        if cfg["repetition"] < 0:  # step-size pilots are not results
            continue
        rec = {"run_id": man["run_id"], "dataset": cfg["dataset"],
               "dataset_key": man["dataset_key"], "method": man.get("label", cfg["method"]),
               "repetition": cfg["repetition"], "uses": "+".join(man["uses"]) or "-",
               "status": man["status"], "reason": man["reason"],
               "n_particles": cfg["n_particles"], "n_steps": cfg["n_steps"],
               "n_train": cfg["n_train"], "fit_seconds": man["fit_seconds"],
               "sample_seconds": man["sample_seconds"], "metrics": cfg["metrics"]}
        mine = rows[rows["run_id"] == man["run_id"]] if len(rows) else rows
        if man["status"] == "ok" and len(mine):
            last = mine.sort_values("iteration").iloc[-1]
            rec.update({m: last[m] for m in cfg["metrics"]})
        recs.append(rec)
    return pd.DataFrame(recs)


def _median(values: pd.Series) -> str:
    v = values.dropna().to_numpy(dtype=float)
    return f"{np.median(v):.3g}" if len(v) else "—"


def _fmt(values: pd.Series) -> str:
    v = values.dropna().to_numpy(dtype=float)
    if len(v) == 0:
        return "—"
    if len(v) == 1:
        return f"{v[0]:.4g}"
    return f"{v.mean():.4g} ± {v.std(ddof=1):.2g}"


def _floor(out: Path, key: str, n: int) -> dict | None:
    paths = sorted((Path(out) / "floors").glob(f"{key}_n{n}_s*.json"))
    if not paths:
        return None
    with open(paths[-1]) as fh:
        return json.load(fh)


def leaderboard_markdown(out: Path, run_ids: list[str] | None = None) -> str:
    """The Markdown leaderboard of the finished runs in ``out`` (or of ``run_ids``)."""
    table = final_table(out, run_ids)
    if table.empty:
        return "(no finished runs)\n"
    parts = []
    for (dataset, key), group in table.groupby(["dataset", "dataset_key"], sort=False):
        metrics = list(group["metrics"].iloc[0])
        n, t, m = (int(group[c].iloc[0]) for c in ("n_particles", "n_steps", "n_train"))
        parts.append(f"### {dataset}  (N = {n} particles, T = {t} steps, M = {m} training "
                     f"points; mean ± std over repetitions; ranked by final "
                     f"{LABELS.get(metrics[0], metrics[0])})\n")
        head = ["method", "uses", *[LABELS.get(x, x) for x in metrics], "fit s (median)",
                "sample s (median)", "ok"]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        # rank by the mean final value of the first metric; methods with no ok run go last
        first = metrics[0]
        order = (group[group["status"] == "ok"].groupby("method")[first].mean()
                 if first in group else pd.Series(dtype=float))
        ranked = sorted(group["method"].unique(),
                        key=lambda m: (m not in order.index, order.get(m, np.inf), m))
        for method in ranked:
            g = group[group["method"] == method]
            ok = g[g["status"] == "ok"]
            cells = [method, g["uses"].iloc[0], *[_fmt(ok[x]) if x in ok else "—"
                                                 for x in metrics],
                     _median(ok["fit_seconds"]), _median(ok["sample_seconds"]),
                     f"{len(ok)}/{len(g)}"]
            lines.append("| " + " | ".join(cells) + " |")
        floor = _floor(out, key, n)
        if floor is not None:
            cells = ["*noise floor*", "exact draws of π",
                     *[f"{floor[x]:.4g} ± {floor[x + '_std']:.2g}" if x in floor else "—"
                       for x in metrics], "", "", ""]
            lines.append("| " + " | ".join(cells) + " |")
        failed = group[group["status"] != "ok"]
        lines += [""] * (len(failed) > 0) + [
            f"- failed: {r['method']} rep {r['repetition']}: {r['reason']}"
            for _, r in failed.iterrows()]
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)





def _summary(out: Path) -> pd.DataFrame:
    """Mean final metrics and seconds per (dataset, method) over the ok runs of a folder."""
    table = final_table(out)
    if table.empty:
        return table
    ok = table[table["status"] == "ok"]
    metric_cols = sorted({m for ms in table["metrics"] for m in ms})
    cols = [c for c in metric_cols if c in ok] + ["fit_seconds", "sample_seconds"]
    # metrics: mean over repetitions; seconds: median (a method's first run in a process also
    # pays Numba's compile or cache load)
    summary = ok.groupby(["dataset", "method"])[cols].mean()
    secs = ["fit_seconds", "sample_seconds"]
    summary[secs] = ok.groupby(["dataset", "method"])[secs].median()
    summary["runs"] = table.groupby(["dataset", "method"]).size()
    summary["ok"] = ok.groupby(["dataset", "method"]).size()
    return summary


def compare_markdown(reference: Path, candidate: Path) -> str:
    """Side-by-side table of two results folders (e.g. two commits running the same suite):
    for each dataset × method in both, each metric and the seconds, with candidate/reference
    ratios (> 1 means the candidate is worse or slower; unbiased metrics near 0 give
    unstable ratios, so differences are shown for them)."""
    ref, new = _summary(reference), _summary(candidate)
    if ref.empty or new.empty:
        return "(nothing to compare: a folder has no finished runs)\n"
    common = ref.index.intersection(new.index)
    cols = [c for c in ref.columns if c in new.columns and c not in ("runs", "ok")]
    head = ["dataset", "method"]
    for c in cols:
        name = LABELS.get(c, c)
        head += [f"{name} ref", f"{name} new", "ratio" if c not in SIGNED else "diff"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key in common:
        cells = list(key)
        for c in cols:
            a, b = float(ref.loc[key, c]), float(new.loc[key, c])
            rel = (f"{b - a:+.3g}" if c in SIGNED
                   else (f"{b / a:.3f}" if a not in (0.0,) and np.isfinite(a) else "—"))
            cells += [f"{a:.4g}", f"{b:.4g}", rel]
        lines.append("| " + " | ".join(cells) + " |")
    only = ref.index.symmetric_difference(new.index)
    notes = [f"- only in one folder: {d} / {m}" for d, m in only]
    return "\n".join(lines + [""] + notes) + "\n"


#: Metrics whose unbiased estimates can be ≤ 0: compared by difference, not ratio.
SIGNED = {"mmd2", "mmd2_ms", "ksd", "energy"}
