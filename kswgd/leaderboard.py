"""Leaderboards: per dataset, one row per method with final metrics as mean ± std over
repetitions, the information the method uses, wall-clock, and the noise-floor row (the same
metrics for fresh independent draws of π of the particles' size)."""

from __future__ import annotations

import json
from pathlib import Path

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
                     f"points; mean ± std over repetitions)\n")
        head = ["method", "uses", *[LABELS.get(x, x) for x in metrics], "fit s", "sample s",
                "ok"]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for method, g in group.groupby("method", sort=False):
            ok = g[g["status"] == "ok"]
            cells = [method, g["uses"].iloc[0], *[_fmt(ok[x]) if x in ok else "—"
                                                 for x in metrics],
                     _fmt(ok["fit_seconds"]), _fmt(ok["sample_seconds"]), f"{len(ok)}/{len(g)}"]
            lines.append("| " + " | ".join(cells) + " |")
        floor = _floor(out, key, n)
        if floor is not None:
            cells = ["*noise floor*", "exact draws of π",
                     *[f"{floor[x]:.4g} ± {floor[x + '_std']:.2g}" if x in floor else "—"
                       for x in metrics], "", "", ""]
            lines.append("| " + " | ".join(cells) + " |")
        parts.append("\n".join(lines) + "\n")
        failed = group[group["status"] != "ok"]
        for _, r in failed.iterrows():
            parts.append(f"- failed: {r['method']} rep {r['repetition']}: {r['reason']}\n")
    return "\n".join(parts)


__all__ = ["final_table", "leaderboard_markdown"]
