"""Leaderboards from the tidy results tables (kswgd.engine.store.load_final / load_floors).

Rows are split into comparable groups (:func:`comparable_groups`): the same dataset with the
same parameters and the same budget (particles, steps, training points, reference points).
Runs that differ in any of these are never averaged together; each group gets its own table,
whose header says what it shares and what differs from the other tables of that dataset.

Each table has one row per configuration (:func:`config_columns`: the method, every method
parameter and the code fingerprint; the floors' seeds are part of the table's group), never per
label alone: when one label names several configurations, each row's label says what differs,
e.g. ``ula (step=0.1)`` and ``ula (step=0.5)``. A row shows the information the method uses, its
step (and how it was chosen), each metric's final value as mean ± the 95 % Student-t half-width
over the repetitions, fit and sampling seconds (medians), runs ok / runs, and run-health flags;
then the data floor and the noise floor rows; then a legend.

Only runs of the current code are shown (:func:`board_rows`): a run whose code fingerprint is not
what the current code gives for its dataset and method is stale, left out and counted in a line
under the tables. A published folder (``results/NAME``: no runs, a final.parquet) is shown as
published, with a line saying which code produced it and whether that is the current code.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from kswgd.core import metrics as M
from kswgd.core.health import AWAY_FACTOR, COLLAPSED_FRACTION, STRANDED_FRACTION
from kswgd.engine import store
from kswgd.engine import tuning as T
from kswgd.engine.spec import BUDGET_COLUMNS
from kswgd.params import ConfigError

FORMATS = ("md", "csv", "json")
BUDGET_NAMES = {"n_particles": "N particles", "n_steps": "T steps",
                "n_train": "M training points", "n_reference": "reference points"}


def group_columns(df: pd.DataFrame) -> list[str]:
    """The columns that define a comparable group: dataset, its parameters, the budget, and the
    floors' seed count when known (each group is compared with one floor record)."""
    params = sorted(c for c in df.columns if c.startswith("dataset."))
    return ["dataset", *params, *BUDGET_COLUMNS, *(["floor_seeds"] if "floor_seeds" in df
                                                    else [])]


def config_columns(df: pd.DataFrame) -> list[str]:
    """The columns that make one table row within a group: the method, each of its parameters,
    the code fingerprint and the tuning protocol that chose them (the same configuration
    chosen by two protocols is two rows). A label is only a name."""
    params = sorted(c for c in df.columns if c.startswith("method."))
    return [c for c in ("method", *params, "code", "tuning") if c in df.columns]


def _short(col: str, value) -> str:
    name = col.split(".", 1)[1] if col.startswith("method.") else col
    value = _clean(value)
    return f"{name}={str(value)[:8] if col == 'code' else value}"


def row_labels(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows relabelled so that within each comparable group one label is one configuration
    (:func:`config_columns`): the labels a configuration was stored under, joined by " / ";
    when several configurations share a label, each gets ``label (what differs)``, e.g.
    ``ula (step=0.1)``. Pilot rows keep their label."""
    if rows.empty:
        return rows
    rows = rows.copy()
    runs = ~rows["pilot"].astype(bool) if "pilot" in rows else pd.Series(True, rows.index)
    gcols = [c for c in group_columns(rows) if c in rows]
    ccols = config_columns(rows)
    for _, group in rows[runs].groupby(gcols, sort=False, dropna=False):
        configs = [(key if isinstance(key, tuple) else (key,), g.index) for key, g in
                   group.groupby(ccols, sort=False, dropna=False)]
        names = {key: " / ".join(dict.fromkeys(rows.loc[idx, "label"].astype(str)))
                 for key, idx in configs}
        index = dict(configs)
        for name in set(names.values()):
            keys = [k for k, v in names.items() if v == name]
            for key in keys:
                idx = index[key]
                if len(keys) == 1:
                    rows.loc[idx, "label"] = name
                    continue
                table = pd.DataFrame([dict(zip(ccols, k, strict=True)) for k in keys],
                                     dtype=object)
                differs = [c for c in ccols if table[c].astype(str).nunique() > 1]
                mine = dict(zip(ccols, key, strict=True))
                rows.loc[idx, "label"] = (f"{name} (" + ", ".join(
                    _short(c, mine[c]) for c in differs) + ")")
    return rows


def current_code(dataset: str, method: str) -> str | None:
    """The code fingerprint the current code gives a run of ``method`` on ``dataset``; None
    when either plug-in is no longer registered."""
    from kswgd.engine.spec import code_fingerprint

    try:
        return code_fingerprint(dataset, method)
    except KeyError:
        return None


def stale_mask(rows: pd.DataFrame) -> pd.Series:
    """True for the rows of runs whose code fingerprint is not the current code's."""
    pairs = rows[["dataset", "method"]].drop_duplicates().itertuples(index=False)
    now = {(d, m): current_code(d, m) for d, m in pairs}
    return pd.Series([c != now[(d, m)] for d, m, c in
                      zip(rows["dataset"], rows["method"], rows["code"], strict=True)],
                     index=rows.index, dtype=bool)


def _stale_note(stale: pd.DataFrame) -> str:
    runs = stale[~stale["pilot"].astype(bool)] if "pilot" in stale else stale
    labels = sorted({f"{d}/{lab}" for d, lab in zip(runs["dataset"], runs["label"],
                                                    strict=True)})
    return (f"{runs['run_id'].nunique()} stale run(s) left out (computed by code other than "
            f"the current one; `kswgd run` computes them again): {', '.join(labels)}")


def stored_rows(out: Path, manifests: dict | None = None) -> pd.DataFrame:
    """Every checkpoint row of the intact runs of ``out`` (``store.load_rows``), each with its
    run's ``floor_seeds`` (from its manifest; ``manifests``: ``store.load_manifests(out)`` when
    the caller has read them): what :func:`board_rows` selects from. A command that draws
    several boards of one folder (``kswgd report``: one per group; ``kswgd publish``) reads it
    once and passes it as ``stored``."""
    rows = store.load_rows(out)
    if rows.empty:
        return rows
    manifests = store.load_manifests(out) if manifests is None else manifests
    return rows.assign(floor_seeds=rows["run_id"].map(
        lambda rid: manifests[rid]["spec"].get("floor_seeds")))


def board_rows(out: Path, run_ids: list[str] | None = None,
               labels: dict[str, str] | None = None, stored: pd.DataFrame | None = None
               ) -> tuple[pd.DataFrame, list[str]]:
    """The checkpoint rows a leaderboard, publish, plot or report shows, and the notes to print
    under them: the intact runs of ``out`` (or of ``run_ids``, named by ``labels``: run_id →
    label, e.g. those of the suite just run), each with its ``floor_seeds``, stale runs left
    out (one note), labels one per configuration (:func:`row_labels`). ``stored``: the
    folder's :func:`stored_rows`, when the caller has read them already."""
    rows = stored_rows(out) if stored is None else stored
    if rows.empty:
        return rows, []
    if run_ids is not None:
        rows = rows[rows["run_id"].isin(run_ids)]
    if labels:
        rows = rows.assign(label=rows["run_id"].map(labels).fillna(rows["label"]))
    stale = stale_mask(rows)
    notes = [_stale_note(rows[stale])] if stale[~rows["pilot"].astype(bool)].any() else []
    return row_labels(rows[~stale]), notes


def missing_floors(final: pd.DataFrame, floors: pd.DataFrame) -> list[str]:
    """The comparable groups of ``final`` that have no floor record yet, as short titles."""
    missing = []
    for header, _ in comparable_groups(final):
        if floors.empty or group_floors(floors, header).empty:
            budget = ", ".join(f"{k}={header[k]}" for k in (*BUDGET_COLUMNS, "floor_seeds")
                               if k in header)
            missing.append(f"{header['dataset']} ({budget})")
    return missing


def final_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """The last checkpoint row of each run of ``rows``, with ``start.<metric>``: each
    metric's value at iteration 0 (the initial particles), for the "worse than start" flag."""
    final = rows.sort_values(["run_id", "iteration"], kind="stable").groupby(
        "run_id", sort=False).tail(1).sort_index()
    names = [m for m in recorded_metrics(rows) if m in rows and f"start.{m}" not in rows]
    if names and "iteration" in rows:
        start = rows[rows["iteration"] == 0].drop_duplicates("run_id").set_index("run_id")
        for m in names:
            final[f"start.{m}"] = final["run_id"].map(start[m]).to_numpy()
    return final


def _clean(value):
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None if isinstance(value, float) and np.isnan(value) else value


def comparable_groups(df: pd.DataFrame) -> list[tuple[dict, pd.DataFrame]]:
    """Split rows into the groups that may be compared in one table: same dataset, same
    dataset parameters and same budget (n_particles, n_steps, n_train, n_reference).

    Returns [(header, rows)] in order of first appearance; the header maps each shared column
    to its value (dataset parameters a dataset does not have are left out)."""
    if df.empty:
        return []
    cols = [c for c in group_columns(df) if c in df.columns]
    out = []
    for key, sub in df.groupby(cols, sort=False, dropna=False):
        header = {c: _clean(v) for c, v in zip(cols, key, strict=True)}
        out.append(({k: v for k, v in header.items() if v is not None}, sub))
    return out


def recorded_metrics(df: pd.DataFrame) -> list[str]:
    """The metrics recorded by the runs of a frame (column ``metrics``: each run's comma-joined
    metric names), in suite order."""
    names = [m for ms in df["metrics"].dropna() for m in str(ms).split(",") if m]
    return list(dict.fromkeys(names))


def interval(values) -> tuple[float, float, int]:
    """(mean, 95 % half-width, n) with the Student-t interval mean ± t_{0.975, n−1} s/√n;
    half-width NaN for n < 2."""
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    if len(v) == 0:
        return np.nan, np.nan, 0
    if len(v) == 1:
        return float(v[0]), np.nan, 1
    from scipy import stats

    half = stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))
    return float(v.mean()), float(half), len(v)


def health_flags(ok: pd.DataFrame, metric: str | None = None) -> str:
    """"stranded" when more than STRANDED_FRACTION of a run's final particles are away from
    the training data, "collapsed" when fewer than COLLAPSED_FRACTION · N are distinct,
    "worse than start" when its final ``metric`` exceeds that of its initial particles
    (kswgd.engine.tuning's rules, one home); with the count of runs so flagged."""
    if ok.empty or "health.away" not in ok:
        return "-"
    flags = []
    stranded = ok["health.away"].map(T.stranded).sum()
    collapsed = sum(T.collapsed(d, n) for d, n in zip(ok["health.distinct"], ok["n_particles"],
                                                      strict=True))
    if stranded:
        flags.append(f"stranded {stranded}/{len(ok)} "
                     f"({ok['health.away'].max():.0%} away)")
    if collapsed:
        flags.append(f"collapsed {collapsed}/{len(ok)} "
                     f"({int(ok['health.distinct'].min())} distinct)")
    if metric is not None and f"start.{metric}" in ok and not M.signed(metric):
        worse = sum(T.worse_than_start(f, s) for f, s in zip(ok[metric], ok[f"start.{metric}"],
                                                              strict=True))
        if worse:
            flags.append(f"worse than start {worse}/{len(ok)}")
    return ", ".join(flags) or "ok"


def _config(g: pd.DataFrame) -> tuple[str, str]:
    """(configuration, tuning) cells of a row: the chosen values of the searched parameters,
    and the information class that chose them with the tuning's cost; or the fixed step."""
    g = g[g["status"] == "ok"] if (g["status"] == "ok").any() else g
    if "tuning.choice" in g and g["tuning.choice"].notna().any():
        r = g[g["tuning.choice"].notna()].iloc[0]
        cost = (f"{r['tuning.by']}: {int(r['tuning.configurations'])} configs, "
                f"{int(r['tuning.pilots'])} pilots, {float(r['tuning.seconds']):.0f} s")
        if str(r.get("tuning.margin", "")).startswith("fallback"):
            cost += " (none healthy: least unhealthy chosen)"
        return str(r["tuning.choice"]), cost
    if "method.step" not in g or g["method.step"].isna().all():
        return "-", "fixed"
    steps = sorted(set(g["method.step"].dropna()))
    rule = g["step_rule"].iloc[0] if "step_rule" in g else ""
    how = "fixed" if rule in ("fixed", "") else rule
    return ", ".join(f"step={h:g}" for h in steps), how


def summary(final: pd.DataFrame, floors: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per (comparable group, label) of the non-pilot final rows, ranked within each
    group by the first metric's mean; then the group's data-floor and noise-floor rows.
    Columns: the group columns, kind ("method" | "data floor" | "noise floor"), label,
    method, method.<param>..., uses, step, <metric>, <metric>_ci95, <metric>_n, fit_seconds,
    sample_seconds, ok, runs, health."""
    final = final[~final["pilot"].astype(bool)] if "pilot" in final else final
    final = row_labels(final)
    recs = []
    for header, group in comparable_groups(final):
        metrics = recorded_metrics(group)
        order = []
        for label, g in group.groupby("label", sort=False):
            ok = g[g["status"] == "ok"]
            rec = {**header, "kind": "method", "label": label, "method": g["method"].iloc[0]}
            rec.update({c: _clean(g[c].iloc[0]) for c in g.columns
                        if c.startswith("method.") and g[c].notna().any()})
            if "code" in g:
                rec["code"] = g["code"].iloc[0]
            config, tuning = _config(g)
            rec.update(uses=g["uses"].iloc[0], config=config, tuning=tuning)
            for m in metrics:
                mean, half, n = interval(ok[m]) if m in ok else (np.nan, np.nan, 0)
                rec.update({m: mean, f"{m}_ci95": half, f"{m}_n": n})
            evals = ok["diag.grad_evals"].median() if "diag.grad_evals" in ok else np.nan
            rec.update(fit_seconds=ok["fit_seconds"].median(),
                       sample_seconds=ok["seconds"].median(), grad_evals=evals, ok=len(ok),
                       runs=len(g), health=health_flags(ok, metrics[0] if metrics else None))
            order.append(rec)
        first = metrics[0] if metrics else None
        order.sort(key=lambda r: (not np.isfinite(r.get(first, np.nan)) if first else 0,
                                  r.get(first, 0) if first else 0))
        recs += order
        if floors is not None and not floors.empty:
            recs += _floor_rows(header, floors, metrics)
    return pd.DataFrame(recs)


def group_floors(floors: pd.DataFrame, header: dict) -> pd.DataFrame:
    """The floor rows of a comparable group: every column the group header shares with the
    floors table (dataset, its parameters, particle count, reference and training sizes) must
    match (a header value that is missing matches a missing one); the number of steps does not
    matter, floors do not depend on it."""
    sel = pd.Series(True, index=floors.index)
    for key, value in header.items():
        if key in floors.columns and key != "n_steps":
            missing = value is None or isinstance(value, float) and np.isnan(value)
            sel &= floors[key].isna() if missing else floors[key] == value
    return floors[sel]


def _floor_rows(header: dict, floors: pd.DataFrame, metrics: list[str]) -> list[dict]:
    sel = group_floors(floors, header)
    out = []
    for kind, label, uses in (("data", "data floor", "training points, subsampled to N"),
                              ("noise", "noise floor", "exact draws of π, N of them")):
        rows = sel[sel["kind"] == kind]
        if rows.empty:
            continue
        rec = {**header, "kind": label, "label": f"*{label}*", "method": "", "uses": uses,
               "config": "", "tuning": "", "health": ""}
        for m in metrics:
            r = rows[rows["metric"] == m]
            rec[m] = float(r["value"].iloc[-1]) if len(r) else np.nan
            rec[f"{m}_ci95"] = float(r["std"].iloc[-1]) if len(r) else np.nan
            rec[f"{m}_n"] = int(r["floor_seeds"].iloc[-1]) if len(r) else 0
        if (rows["status"] != "ok").any():
            rec["health"] = f"failed: {rows['reason'].dropna().iloc[0]}"
        out.append(rec)
    return out


def _fmt(mean: float, half: float, n: int) -> str:
    if not np.isfinite(mean):
        return "—"
    if n < 2 or not np.isfinite(half):
        return f"{mean:.4g}"
    return f"{mean:.4g} ± {half:.2g}"


def _title(header: dict, others: list[dict]) -> str:
    params = [f"{k.split('.', 1)[1]} = {v}" for k, v in header.items()
              if k.startswith("dataset.")]
    budget = ", ".join(f"{BUDGET_NAMES[k].split(' ', 1)[0]} = {header[k]}"
                       if k in ("n_particles", "n_steps", "n_train")
                       else f"{header[k]} reference points" for k in BUDGET_COLUMNS)
    title = f"### {header['dataset']}" + (f" ({', '.join(params)})" if params else "")
    title += f" · {budget}"
    same = [o for o in others if o is not header and o.get("dataset") == header["dataset"]]
    if same:
        differs = sorted({k for o in same for k in set(o) | set(header)
                          if o.get(k) != header.get(k)})
        title += f"\n\n(another table of {header['dataset']} differs in: {', '.join(differs)})"
    return title


def _legend(group: pd.DataFrame, table: pd.DataFrame, metrics: list[str]) -> list[str]:
    lines = ["", "Legend: every metric is its final value (lower is better), mean ± the 95 % "
             "Student-t half-width over the ok repetitions (a value alone: one run). "
             "uses: the information the method learns from. configuration: the values of "
             "the parameters its suite searched (or its fixed step). tuned by: the "
             "information that chose them — 'held-out' (the W2 distance to a held-out part "
             "of the method's own training data), 'ksd' (the kernel Stein discrepancy, which "
             "needs only the score), 'oracle' (exact draws of π: an upper bound, not a "
             "user's result) — with the configurations and pilot runs it took (validation "
             "repetitions with their own data and seeds) and their seconds; 'fixed': given "
             "by the suite. fit s, sample s: median seconds of setup and of sampling "
             "(metrics excluded). grad evals: median gradient (score) evaluations per "
             "particle over the run. health: 'stranded' when more than "
             f"{STRANDED_FRACTION:.0%} of a run's final particles are farther from the "
             f"nearest training point than {AWAY_FACTOR:g}× the training points' median "
             "nearest-neighbour spacing (judged for methods that learn from the data only); "
             "'collapsed' when fewer than "
             f"{COLLAPSED_FRACTION:.0%} of the particles are distinct; 'worse than start' "
             "when a run's final first metric exceeds that of its initial particles (doing "
             "nothing would have scored better)."]
    for m in metrics:
        if m in M.METRICS:
            lines.append(f"- {M.label(m)}: {M.METRICS[m].meaning}.")
    if any(M.signed(m) for m in metrics):
        lines.append("- Unbiased metrics are ≈ 0 with either sign for exact draws of π: a "
                     "method can land below the noise floor by chance.")
    lines.append("- Floors: *noise floor* = the same metrics for fresh exact draws of π of "
                 "size N; *data floor* = the training points themselves, subsampled to N "
                 "(what learning from this data allows). A floor's ± is the standard "
                 "deviation over its seeds (draws or subsamples), not an interval; a method "
                 "within it is as close to π as N exact draws.")
    start = group[(group["iteration"] == 0) & (group["status"] == "ok")]
    if not start.empty:
        lines.append("- At the start (iteration 0, the initial particles, mean over runs): "
                     + ", ".join(f"{M.label(m)} {start[m].mean():.4g}"
                                 for m in metrics if m in start) + ".")
    return lines


def _notes(final_group: pd.DataFrame) -> list[str]:
    notes = []
    bad = final_group[final_group["status"] != "ok"]
    for (label, status, reason), g in bad.groupby(["label", "status", "reason"], sort=False,
                                                  dropna=False):
        reps = ", ".join(str(r) for r in sorted(g["repetition"]))
        notes.append(f"- {status}: {label} (rep {reps}): {reason}")
    if "skipped_metrics" in final_group:
        for text in final_group["skipped_metrics"].dropna().unique():
            notes.append(f"- metric skipped: {text}")
    return notes


def leaderboard(out: Path, fmt: str = "md", run_ids: list[str] | None = None,
                labels: dict[str, str] | None = None, stored: pd.DataFrame | None = None,
                floors: pd.DataFrame | None = None) -> str:
    """The leaderboard of the current, intact runs in ``out`` (or of ``run_ids``, named by
    ``labels``; see :func:`board_rows`) as Markdown, CSV or JSON (CSV/JSON: the :func:`summary`
    table, with the group and parameter columns; their notes go to stderr). A published
    folder is shown by :func:`published_leaderboard`. ``stored`` and ``floors``: the folder's
    :func:`stored_rows` and ``store.load_floors``, when the caller has read them already."""
    if is_published(out):
        return published_leaderboard(out, fmt)
    rows, notes = board_rows(out, run_ids, labels, stored)
    if rows.empty:
        return "\n".join(["(no finished runs)", *notes]) + "\n"
    pilots = rows["run_id"][rows["pilot"].astype(bool)].nunique()
    rows = rows[~rows["pilot"].astype(bool)]
    floors = store.load_floors(out) if floors is None else floors
    final = final_rows(rows)
    missing = missing_floors(final, floors)
    if missing:
        notes.append(f"{final['run_id'].nunique()} runs stored; floors missing for "
                     f"{'; '.join(missing)} (the sweep stopped before them: `kswgd run` "
                     "computes them)")
    if final.empty:
        notes.append(f"{pilots} step-size pilot run(s) stored; no repetition finished yet")
    table = summary(final, floors)
    if fmt in ("csv", "json"):
        for note in notes:
            print(f"kswgd: {note}", file=sys.stderr)
        if fmt == "csv":
            return table.to_csv(index=False)
        return json.dumps(json.loads(table.to_json(orient="records")), indent=1) + "\n"
    groups = comparable_groups(final)
    headers = [h for h, _ in groups]
    parts = []
    for header, group in groups:
        metrics = recorded_metrics(group)
        sub = table
        for k, v in header.items():
            sub = sub[sub[k] == v]
        head = ["method", "uses", "configuration", "tuned by", *[M.label(m) for m in metrics],
                "fit s", "sample s", "grad evals", "ok", "health"]
        lines = [_title(header, headers), "",
                 "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += [board_line(r, metrics) for _, r in sub.iterrows()]
        group_rows = rows[rows["run_id"].isin(group["run_id"])]
        lines += _legend(group_rows, sub, metrics)
        failures = _notes(group)
        if failures:
            lines += ["", *failures]
        parts.append("\n".join(lines) + "\n")
    if notes:
        parts.append("\n".join(f"- {note}" for note in notes) + "\n")
    return "\n".join(parts)


def board_line(r: pd.Series, metrics: list[str]) -> str:
    """One Markdown row of a leaderboard table from one row of the :func:`summary` table (a
    method's, or a floor's)."""
    is_run = r["kind"] == "method"
    cells = [str(r["label"]), str(r["uses"]), str(r["config"]), str(r["tuning"]),
             *[_fmt(r[m], r[f"{m}_ci95"], r[f"{m}_n"] if is_run else 1)
               if is_run else _floor_cell(r, m) for m in metrics],
             _num(r.get("fit_seconds")) if is_run else "",
             _num(r.get("sample_seconds")) if is_run else "",
             _num(r.get("grad_evals")) if is_run else "",
             f"{int(r['ok'])}/{int(r['runs'])}" if is_run else "",
             str(r["health"])]
    return "| " + " | ".join(cells) + " |"


def published_leaderboard(out: Path, fmt: str = "md") -> str:
    """The leaderboard a published folder (``kswgd publish``) holds, under a line saying which
    code produced it and whether that is the current code (from final.parquet's ``code``)."""
    out = Path(out)
    final = pd.read_parquet(out / "final.parquet")
    notes = []
    for (dataset, method), g in final.groupby(["dataset", "method"], sort=True):
        now = current_code(dataset, method)
        made = ", ".join(sorted(set(g["code"].astype(str))))
        if {made} != {now}:
            notes.append(f"{dataset}/{method}: produced by code {made}; current code is "
                         f"{now or 'none (plug-in not registered)'}")
    pairs = final.groupby(["dataset", "method"]).ngroups
    commits = sorted({str(c)[:12] for c in final.get("git_commit", pd.Series(dtype=str)).dropna()})
    shown = "; ".join(notes[:3]) + (f"; and {len(notes) - 3} more" if len(notes) > 3 else "")
    head = ([f"published results in {out} (made by `kswgd publish` at commit "
             f"{', '.join(commits) or '?'}) are NOT the current code's: {len(notes)} of {pairs} "
             f"dataset/method pairs were produced by other code ({shown})"] if notes else
            [f"published results in {out}, produced by the current code"])
    name = "leaderboard.csv" if fmt in ("csv", "json") else "leaderboard.md"
    if fmt != "md":
        print(f"kswgd: {head[0]}", file=sys.stderr)
        text = (out / name).read_text()
        if fmt == "json":
            text = pd.read_csv(out / name).to_json(orient="records", indent=1) + "\n"
        return text
    return head[0] + "\n\n" + (out / name).read_text()


def _floor_cell(r: pd.Series, m: str) -> str:
    v, s = r.get(m, np.nan), r.get(f"{m}_ci95", np.nan)
    if not np.isfinite(v):
        return "—"
    return f"{v:.4g} ± {s:.2g}" if np.isfinite(s) else f"{v:.4g}"


def _num(v) -> str:
    return f"{v:.3g}" if v is not None and np.isfinite(v) else "—"


def leaderboard_markdown(out: Path, run_ids: list[str] | None = None,
                         labels: dict[str, str] | None = None,
                         stored: pd.DataFrame | None = None,
                         floors: pd.DataFrame | None = None) -> str:
    """The Markdown leaderboard (see :func:`leaderboard`)."""
    return leaderboard(out, "md", run_ids, labels, stored, floors)


def is_published(out: Path) -> bool:
    """Is ``out`` a folder written by ``kswgd publish`` (a ``final.parquet``, no run store)?"""
    out = Path(out)
    return not (out / "runs").is_dir() and (out / "final.parquet").is_file()


def compared_rows(out: Path) -> pd.DataFrame:
    """The final rows ``kswgd compare`` reads: a run store's intact runs, whatever code made
    them, as :func:`final_rows` (with the ``start.<metric>`` the "worse than start" flag
    needs), or a published folder's ``final.parquet`` (the same rows, written by ``kswgd
    publish``). Refuses a folder that holds neither, or no finished run, in one line."""
    out = Path(out)
    if is_published(out):
        final = pd.read_parquet(out / "final.parquet")
    else:
        store._require(out)
        if not (out / "runs").is_dir():
            raise ConfigError(f"{out} is neither a results folder of `kswgd run` (no runs/) nor "
                              "a folder of `kswgd publish` (no final.parquet)")
        rows = stored_rows(out)  # intact runs of any code: the candidate may be a branch's
        final = (final_rows(row_labels(rows[~rows["pilot"].astype(bool)])) if not rows.empty
                 else rows)
    if final.empty:
        raise ConfigError(f"{out} has no finished runs: nothing to compare")
    return final


def _value(v):
    """A parameter value as one text, whether it was read as a number or as its text (a
    published final.parquet stores some cells as text: '-1.0')."""
    try:
        return _clean(float(v))
    except (TypeError, ValueError):
        return _clean(v)


def _summary(final: pd.DataFrame) -> pd.DataFrame:
    """Mean final metrics and median seconds per (comparable group, label) over ok runs,
    indexed by the group's dataset, its parameters written out (``setting``), the budget and
    the label, so that a run store and a published folder of one suite share their keys."""
    table = summary(final)  # pilots left out there
    params = sorted(c for c in table.columns if c.startswith("dataset."))
    table["setting"] = [", ".join(f"{c[len('dataset.'):]}={_value(r[c])}" for c in params
                                  if _clean(r[c]) is not None) for _, r in table.iterrows()]
    for c in BUDGET_COLUMNS:
        table[c] = table[c].map(_clean)
    return table.set_index(["dataset", "setting", *BUDGET_COLUMNS, "label"])


#: Default slowdown factor of ``kswgd compare``'s speed check (a shared machine's timings drift
#: by 1.3–1.5× between runs: below 1.3 a ratio is noise).
COMPARE_FACTOR = 1.5


#: What :func:`run_setting` says of a setting a published folder does not record.
NOT_RECORDED = "not recorded (a published folder)"


def run_setting(out: Path, final: pd.DataFrame | None = None) -> dict[str, set]:
    """What decides a folder's timings and last bits, over its finished runs: the backend
    (kind and worker count: ``--jobs``), the threads per run and the platform fingerprint's
    hash (manifests' ``backend``, ``threads``, ``platform``). A published folder keeps only
    the platform (its rows' ``platform``); the other two are :data:`NOT_RECORDED`."""
    found: dict[str, set] = {"backend": set(), "threads per run": set(), "platform": set()}
    if is_published(out):
        platforms = final["platform"] if final is not None and "platform" in final else []
        found.update(backend={NOT_RECORDED}, **{"threads per run": {NOT_RECORDED}},
                     platform={str(v) for v in platforms} or {NOT_RECORDED})
        return found
    for man in store.load_manifests(out).values():
        backend = man.get("backend") or {}
        found["backend"].add(f"{backend.get('kind', '?')}×{backend.get('workers', '?')}")
        found["threads per run"].add(str((man.get("threads") or {}).get("per_run", "?")))
        found["platform"].add(str((man.get("platform") or {}).get("hash", "none recorded")))
    return found


def compare_gate(ref: pd.DataFrame, new: pd.DataFrame, factor: float = COMPARE_FACTOR,
                 timings: bool = True) -> list[str]:
    """The regressions of candidate ``new`` against reference ``ref`` (two :func:`summary`
    tables indexed by group and label), one line each:

    quality: a metric whose candidate mean is worse (higher; lower for a higher-is-better
             metric) by more than both 95 % half-widths together, |m_new − m_ref| > h_ref + h_new
             (the test a rerun on another platform passes: two draws of one law fail it in
             about 0.5 % of comparisons at 3 repetitions), or a row with fewer ok runs;
    speed:   median sampler seconds more than ``factor`` × the reference's (only when
             ``timings``: folders run with the same backend, threads and platform)."""
    out = []
    for key in (k for k in ref.index if k in new.index):
        r, n = ref.loc[key], new.loc[key]
        name = f"{key[0]} / {key[-1]}"
        if n.get("ok", 0) < r.get("ok", 0):
            out.append(f"{name}: {int(n['ok'])} runs ok, reference {int(r['ok'])}")
        for m in (c for c in ref.columns if f"{c}_ci95" in ref.columns and c in new.columns):
            a, b = float(r[m]), float(n[m])
            ha, hb = float(r[f"{m}_ci95"]), float(n[f"{m}_ci95"])
            if not (np.isfinite(a) and np.isfinite(b)):
                continue
            worse = (a - b) if (m in M.METRICS and M.METRICS[m].higher_is_better) else (b - a)
            slack = (ha if np.isfinite(ha) else 0.0) + (hb if np.isfinite(hb) else 0.0)
            if worse > slack:
                out.append(f"{name}: {M.label(m)} {b:.4g} against {a:.4g} (worse by "
                           f"{worse:.3g} > the intervals' {slack:.3g})")
        a, b = float(r["sample_seconds"]), float(n["sample_seconds"])
        if timings and np.isfinite(a) and np.isfinite(b) and a > 0 and b > factor * a:
            out.append(f"{name}: sampler seconds {b:.3g} against {a:.3g} (× {b / a:.2f} > "
                       f"{factor:g})")
    return out


def compare(reference: Path, candidate: Path, factor: float = COMPARE_FACTOR
            ) -> tuple[str, list[str], list[str]]:
    """(side-by-side Markdown, regressions, warnings) of two results folders, each a run store
    or a published folder (:func:`compared_rows`): the table of :func:`compare_markdown`,
    :func:`compare_gate`'s regressions and a warning for each :func:`run_setting` in which the
    folders differ or that one does not record (then timing ratios mean little and the speed
    check is off; the quality check still applies). ConfigError when no row is in both."""
    ref_rows, new_rows = compared_rows(reference), compared_rows(candidate)
    ref, new = _summary(ref_rows), _summary(new_rows)
    if not any(k in new.index for k in ref.index):
        raise ConfigError(f"no dataset, budget and method label is in both {reference} and "
                          f"{candidate}: nothing to compare")
    a, b = run_setting(reference, ref_rows), run_setting(candidate, new_rows)
    warnings = []
    for what in a:
        unknown = [name for name, found in (("reference", a), ("candidate", b))
                   if NOT_RECORDED in found[what]]
        if unknown:
            warnings.append(f"the {what} of the {' and the '.join(unknown)} is not recorded "
                            "(a published folder keeps only the platform)")
        elif a[what] != b[what]:
            warnings.append(f"the folders differ in {what}: reference "
                            f"{', '.join(sorted(a[what]))}, candidate {', '.join(sorted(b[what]))}")
    if warnings:
        warnings.append("timings are not comparable: the speed check is off")
    regressions = compare_gate(ref, new, factor, timings=not warnings)
    return _compare_table(ref, new), regressions, warnings


def compare_markdown(reference: Path, candidate: Path) -> str:
    """Side-by-side table of two results folders (e.g. two commits running the same suite):
    for each comparable group × method label in both, each metric and the seconds, with
    candidate/reference ratios (> 1 means the candidate is worse or slower; unbiased metrics
    near 0 give unstable ratios, so differences are shown for them)."""
    return compare(reference, candidate)[0]


def _compare_table(ref: pd.DataFrame, new: pd.DataFrame) -> str:
    """The side-by-side table, then a note for each label whose chosen configuration or health
    differs between the folders (a ratio under one label may compare two configurations) and
    for each row in one folder only."""
    common = [k for k in ref.index if k in new.index]
    metric_cols = [c for c in ref.columns if c in new.columns and f"{c}_ci95" in ref.columns]
    cols = metric_cols + ["fit_seconds", "sample_seconds"]
    names = list(ref.index.names)
    head = ["dataset", "setting", "budget", "method"]
    for c in cols:
        name = M.label(c)
        head += [f"{name} ref", f"{name} new", "ratio" if not M.signed(c) else "diff"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key in common:
        k = dict(zip(names, key, strict=True))
        budget = ", ".join(f"{c}={k[c]}" for c in BUDGET_COLUMNS)
        cells = [str(k["dataset"]), k["setting"] or "-", budget, str(k["label"])]
        for c in cols:
            a, b = float(ref.loc[key, c]), float(new.loc[key, c])
            if not (np.isfinite(a) and np.isfinite(b)):
                cells += [_num(a), _num(b), "—"]
                continue
            rel = (f"{b - a:+.3g}" if M.signed(c)
                   else (f"{b / a:.3f}" if a != 0.0 and np.isfinite(a) else "—"))
            cells += [f"{a:.4g}", f"{b:.4g}", rel]
        lines.append("| " + " | ".join(cells) + " |")
    only = [k for k in ref.index if k not in new.index] + [k for k in new.index
                                                            if k not in ref.index]
    notes = []
    for key in common:
        for what, of in (("configuration", lambda r: r.get("config")),
                         ("chosen by", lambda r: str(r.get("tuning")).split(":", 1)[0]),
                         ("health", lambda r: r.get("health"))):
            was, now = of(ref.loc[key]), of(new.loc[key])
            if str(was) != str(now):
                notes.append(f"- {what} differs: {key[0]} / {key[-1]}: {was} → {now}")
    notes += [f"- only in the {'reference' if k in ref.index else 'candidate'}: {k[0]} / "
              f"{k[-1]}" for k in only]
    return "\n".join(lines + [""] + notes) + "\n"


#: Relative difference below which two means tie in a rank. Rows that share a configuration
#: differ only in the last bits (another CPU's kernels: a few ulp, ~1e-15 relative), and tables
#: print 3 significant digits; 1e-9 is far from both.
TIE_RTOL = 1e-9


def tied_ranks(values: np.ndarray, rtol: float = TIE_RTOL) -> np.ndarray:
    """Competition ("min") ranks, 1 = lowest, where values within ``rtol`` tie:
    rank_i = 1 + #{j : v_j < v_i − rtol·|v_i|}. Unlike ranking exact values (or values rounded
    to some digits, which splits a tie that straddles a rounding boundary), ulp-level
    differences never decide an order."""
    v = np.asarray(values, dtype=float)
    return 1 + (v[None, :] < (v - rtol * np.abs(v))[:, None]).sum(axis=1)


def across_groups(table: pd.DataFrame, metric: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The summary across comparable groups (e.g. across datasets) of a :func:`summary` table,
    by one unsigned metric (lower is better):

    matrix:   one row per group (its title columns ``dataset`` and ``budget``), one column per
              method label: the label's mean final metric divided by the group's noise floor
              (1 = as close to π as N exact draws), NaN where the label did not run ok;
    per label: ``groups`` (groups where it ran ok), ``mean_rank`` (its rank by the metric's mean
              within each such group, 1 = best, averaged; means within a relative
              :data:`TIE_RTOL` tie, :func:`tied_ranks`), ``wins`` (groups where it ranks
              first), ``median_noise_ratio`` and ``median_data_ratio`` (median over its groups
              of metric / noise floor and metric / data floor).
    """
    if M.signed(metric):
        raise ValueError(f"{metric} can be negative: ratios and ranks across groups need an "
                         "unsigned metric such as w2")
    if metric in M.METRICS and M.METRICS[metric].higher_is_better:
        raise ValueError(f"{metric}: higher is better, ranks across groups need a metric for "
                         "which lower is better, such as w2")
    keys = [c for c in group_columns(table) if c in table]
    rows, per = [], {}
    for key, g in table.groupby(keys, sort=False, dropna=False):
        head = dict(zip(keys, key if isinstance(key, tuple) else (key,), strict=True))
        runs = g[(g["kind"] == "method") & g[metric].notna() & (g.get(f"{metric}_n", 1) > 0)]
        floor = {k: g.loc[g["kind"] == k, metric] for k in ("noise floor", "data floor")}
        noise = float(floor["noise floor"].iloc[0]) if len(floor["noise floor"]) else np.nan
        data = float(floor["data floor"].iloc[0]) if len(floor["data floor"]) else np.nan
        budget = ", ".join(f"{short}={_clean(head[c])}" for c, short in
                           zip(BUDGET_COLUMNS, ("N", "T", "M", "ref"), strict=True) if c in head)
        rec = {"dataset": head["dataset"], "budget": budget}
        ranks = tied_ranks(runs[metric].to_numpy())
        for (_, r), rank in zip(runs.iterrows(), ranks, strict=True):
            rec[r["label"]] = r[metric] / noise if noise > 0 else np.nan
            p = per.setdefault(r["label"], {"ranks": [], "noise": [], "data": []})
            p["ranks"].append(rank)
            p["noise"].append(r[metric] / noise if noise > 0 else np.nan)
            p["data"].append(r[metric] / data if data > 0 else np.nan)
        rows.append(rec)
    labels = pd.DataFrame([{"label": k, "groups": len(v["ranks"]),
                            "mean_rank": float(np.mean(v["ranks"])),
                            "wins": int(sum(r == 1 for r in v["ranks"])),
                            "median_noise_ratio": float(np.nanmedian(v["noise"])),
                            "median_data_ratio": float(np.nanmedian(v["data"]))}
                           for k, v in per.items()])
    if not labels.empty:
        labels = labels.sort_values(["mean_rank", "label"]).reset_index(drop=True)
    return pd.DataFrame(rows), labels


def rank_metric(metrics: list[str]) -> str | None:
    """The metric a summary across groups ranks by: the first unsigned one for which lower
    is better (W2 in every shipped suite that records it)."""
    return next((m for m in metrics if not M.signed(m) and not (
        m in M.METRICS and M.METRICS[m].higher_is_better)), None)


def across_groups_markdown(out: Path, metric: str | None = None,
                           stored: pd.DataFrame | None = None,
                           floors: pd.DataFrame | None = None) -> str:
    """Markdown of :func:`across_groups` for the finished runs of ``out`` (default metric: the
    first unsigned metric the runs recorded; ``stored``, ``floors``: as for
    :func:`leaderboard`)."""
    rows, _ = board_rows(out, stored=stored)
    final = final_rows(rows[~rows["pilot"].astype(bool)]) if not rows.empty else rows
    metric = metric or rank_metric(recorded_metrics(final) if not final.empty else [])
    if metric is None:
        return "(no unsigned metric to rank by)\n"
    floors = store.load_floors(out) if floors is None else floors
    return across_groups_text(summary(final, floors), metric)


def across_groups_text(table: pd.DataFrame, metric: str) -> str:
    """The Markdown of :func:`across_groups` for a :func:`summary` table with its floor rows
    (a run store's, or a published ``leaderboard.csv`` read back)."""
    matrix, labels = across_groups(table, metric)
    name = M.label(metric)
    methods = [c for c in labels["label"]] if not labels.empty else []
    lines = [f"### {name} / noise floor, per dataset (1 = as close to π as N exact draws; "
             "lower is better; — = cannot run or failed)", "",
             "| dataset | budget | " + " | ".join(methods) + " |",
             "|" + "---|" * (len(methods) + 2)]
    for _, r in matrix.iterrows():
        best = np.nanmin([r.get(m, np.nan) for m in methods]) if methods else np.nan
        cells = []
        for m in methods:
            v = r.get(m, np.nan)
            txt = "—" if not np.isfinite(v) else f"{v:.3g}"
            first = np.isfinite(v) and tied_ranks([best, v])[1] == 1
            cells.append(f"**{txt}**" if first else txt)
        lines.append(f"| {r['dataset']} | {r['budget']} | " + " | ".join(cells) + " |")
    lines += ["", f"### Across datasets, by {name}", "",
              "| method | datasets run | mean rank | wins | median ratio to noise floor | "
              "median ratio to data floor |", "|---|---|---|---|---|---|"]
    for _, r in labels.iterrows():
        lines.append(f"| {r['label']} | {r['groups']} | {r['mean_rank']:.2f} | {r['wins']} | "
                     f"{r['median_noise_ratio']:.3g} | {r['median_data_ratio']:.3g} |")
    lines += ["", f"Rank: position by mean final {name} within each dataset's table, among the "
              "methods that ran ok there (1 = best; means within a relative 1e-9 of each other "
              "tie); a method that cannot run on a dataset has no rank there. The data floor "
              "is the training points themselves subsampled to N: a ratio below 1 means the "
              "particles are closer to π than the data."]
    return "\n".join(lines) + "\n"
