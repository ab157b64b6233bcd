"""``kswgd report``: one self-contained HTML page of a results folder.

Per comparable group (same dataset, dataset parameters and budget;
``kswgd.reports.leaderboard.comparable_groups``): the leaderboard with its legend (rendered from the
leaderboard module's Markdown), convergence figures of every metric against iteration and
against sampler seconds with the floors, a scatter of the final particles over the reference
(2-D and 3-D datasets), decoded image grids (datasets with ``decode_images``, e.g. ``digits``),
ablation heatmaps for every pair of method parameters that the group's runs cross
(:func:`is_ablation`: final value of the group's first metric and sampler seconds), and the
provenance of every run in a collapsible section.

Figures are embedded as base64 PNG; the page has its CSS inline and no script, font or link to
anything outside itself, so it opens from a file with no server and no network.
"""

from __future__ import annotations

import base64
import html
import itertools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from kswgd.engine.spec import BUDGET_COLUMNS
from kswgd.reports import plots

#: Number of decoded images shown per method in an image grid.
N_IMAGES = 12
#: At most this many parameter pairs get a heatmap per method and group.
MAX_HEATMAPS = 6

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:2em auto;
max-width:1200px;padding:0 1em;color:#222;line-height:1.4}
h1{font-size:1.6em}h2{font-size:1.3em;border-bottom:1px solid #ccc;padding-bottom:.2em;
margin-top:2em}h3{font-size:1.05em;margin-top:1.4em}
table{border-collapse:collapse;margin:.6em 0;font-size:.88em}
th,td{border:1px solid #ccc;padding:.25em .55em;text-align:right}
th{background:#f2f2f2}td:first-child,th:first-child{text-align:left}
img{max-width:100%;height:auto;display:block;margin:.4em 0}
code{background:#f4f4f4;padding:0 .2em}pre{background:#f7f7f7;padding:.6em;overflow:auto;
font-size:.8em}details{margin:.5em 0}summary{cursor:pointer;font-weight:600}
.legend{font-size:.85em;color:#444}.note{color:#666;font-size:.85em}nav li{margin:.1em 0}
"""


@dataclass
class Sources:
    """Where the report's inputs come from (a results folder in :func:`write_report`; plain
    values in tests).

    ``rows``: every checkpoint row (flat columns); ``floors``: the floors table;
    ``manifests``: run_id → manifest; ``leaderboard``: (group header, group rows) → the
    leaderboard's Markdown for the group; ``particles``: run_id → final particles or None;
    ``dataset``: run_id → the run's dataset instance; ``reference``: run_id → the reference
    points the run was scored against; ``notes``: lines for the top of the page (stale runs
    left out)."""

    rows: pd.DataFrame
    floors: pd.DataFrame
    manifests: Mapping[str, dict]
    leaderboard: Callable[[Mapping, pd.DataFrame], str]
    particles: Callable[[str], np.ndarray | None]
    dataset: Callable[[str], object]
    reference: Callable[[str], np.ndarray]
    notes: Sequence[str] = ()


# --- Markdown (the leaderboard's subset) to HTML ------------------------------------------------
def _inline(text: str) -> str:
    """Escape, then ``code``, **strong** and *emphasis*."""
    out = html.escape(text, quote=True)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    out = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)
    return re.sub(r"(?<![\w*])\*([^*]+)\*(?![\w*])", r"<em>\1</em>", out)


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def markdown_to_html(md: str) -> str:
    """Headings, pipe tables, bullet lists and paragraphs (the leaderboard's Markdown) as HTML;
    all text escaped."""
    out: list[str] = []
    lines = md.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
        elif line.lstrip().startswith("|"):
            block = []
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                block.append(lines[i])
                i += 1
            head, body = _cells(block[0]), block[1:]
            if body and set(body[0].replace("|", "").strip()) <= set("-: "):
                body = body[1:]
            out.append("<table><thead><tr>" + "".join(f"<th>{_inline(c)}</th>" for c in head)
                       + "</tr></thead><tbody>")
            for row in body:
                out.append("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in _cells(row))
                           + "</tr>")
            out.append("</tbody></table>")
        elif re.match(r"\s*[-*] ", line):
            out.append('<ul class="legend">')
            while i < len(lines) and re.match(r"\s*[-*] ", lines[i]):
                out.append(f"<li>{_inline(lines[i].strip()[2:])}</li>")
                i += 1
            out.append("</ul>")
        elif line.startswith("#"):
            level = min(len(line) - len(line.lstrip("#")) + 2, 6)  # under the page's h2
            out.append(f"<h{level}>{_inline(line.lstrip('#').strip())}</h{level}>")
            i += 1
        else:
            para = []
            while i < len(lines) and lines[i].strip() and not re.match(r"\s*([-*] |\||#)",
                                                                         lines[i]):
                para.append(lines[i].strip())
                i += 1
            out.append(f'<p class="legend">{_inline(" ".join(para))}</p>')
    return "\n".join(out)


# --- pieces ---------------------------------------------------------------------------------
REPORT_DPI = 90   # the page's images: sharp on a screen, a third of the bytes at 110 dpi


def _img(fig, alt: str) -> str:
    data = base64.b64encode(plots.figure_bytes(fig, "png", dpi=REPORT_DPI)).decode("ascii")
    return f'<img alt="{html.escape(alt, quote=True)}" src="data:image/png;base64,{data}">'


def _first_runs(rows: pd.DataFrame) -> dict[str, str]:
    """label → run_id of its lowest repetition (the run whose particles are shown)."""
    final = rows.sort_values(["label", "repetition", "run_id"]).drop_duplicates("label")
    return dict(zip(final["label"].astype(str), final["run_id"], strict=True))


MAX_SCATTER_PANELS = 12   # an ablation's 60 configurations would make a 4 MB scatter


def _best_labels(rows: pd.DataFrame, k: int) -> list[str]:
    """The k labels with the smallest mean final value of the group's first metric (all labels,
    in order, when there are at most k or no metric)."""
    labels = list(dict.fromkeys(rows["label"].astype(str)))
    metrics = plots.metric_columns(rows)
    if len(labels) <= k or not metrics:
        return labels
    final = rows[rows["iteration"] == rows.groupby("run_id")["iteration"].transform("max")]
    means = final.groupby(final["label"].astype(str))[metrics[0]].mean()
    return list(means.sort_values(kind="stable").index[:k])


def _scatter(src: Sources, rows: pd.DataFrame, title: str, styles: Mapping) -> str:
    shown = _best_labels(rows, MAX_SCATTER_PANELS)
    firsts = {k: v for k, v in _first_runs(rows).items() if k in shown}
    particles = {}
    for label, rid in firsts.items():
        p = src.particles(rid)
        if p is not None:
            particles[label] = p
    if not particles or next(iter(particles.values())).shape[1] not in (2, 3):
        return ""
    reference = src.reference(next(iter(firsts.values())))
    which = ("" if len(shown) == rows["label"].nunique() else
             f" · the {len(shown)} best of {rows['label'].nunique()} configurations by "
             f"{plots.metric_columns(rows)[0]}")
    fig = plots.scatter_figure(particles, reference, title + " · final particles (first "
                               "repetition) over the reference (grey)" + which, styles)
    return "<h3>Final particles</h3>" + _img(fig, f"particles {title}")


def _image_grid(src: Sources, rows: pd.DataFrame, title: str, styles: Mapping) -> str:
    firsts = _first_runs(rows)
    dataset = src.dataset(next(iter(firsts.values())))
    decode = getattr(dataset, "decode_images", None)
    if decode is None:
        return ""
    images = {}
    for label, rid in firsts.items():
        p = src.particles(rid)
        if p is not None:
            images[label] = decode(p[:N_IMAGES])
    if not images:
        return ""
    ref = src.reference(next(iter(firsts.values())))
    images = {"reference (held out)": decode(ref[:N_IMAGES]), **images}
    top = max(float(np.max(v)) for v in images.values())
    fig = plots.image_grid_figure(images, title + " · decoded final particles", vmax=top,
                                  styles=styles)
    return "<h3>Decoded particles</h3>" + _img(fig, f"decoded particles {title}")


def _cell_text(v) -> str:
    return "—" if plots._missing(v) else plots._fmt_value(v)


def varying_parameters(final: pd.DataFrame) -> list[str]:
    """``method.<param>`` columns that take more than one value among one method's runs; a
    parameter the tuning protocol chose (the step, or any searched one) is left out unless
    every run fixes it (a chosen value is an outcome, not an axis of the design)."""
    cols = [c for c in final.columns if c.startswith("method.")]
    if "step_rule" in final and not final["step_rule"].isin(["fixed", ""]).all():
        cols = [c for c in cols if c != "method.step"]
    if "tuning.choice" in final:
        chosen = {f"method.{part.split('=', 1)[0].strip()}"
                  for text in final["tuning.choice"].dropna() for part in str(text).split(",")}
        cols = [c for c in cols if c not in chosen]
    return [c for c in cols if final[c].notna().any()
            and final[c].map(_cell_text).nunique() > 1]


def is_ablation(table: pd.DataFrame) -> bool:
    """Whether a heatmap table (:func:`ablation_tables`) crosses its two parameters: two of
    its rows and two of its columns whose four cells all hold a configuration, i.e. each of
    the two parameters takes ≥ 2 values at two common values of the other. A table of
    configurations that differ in both parameters at once (a diagonal), or in one only (a
    single row or column), is not an ablation and gets no heatmap."""
    filled = np.isfinite(table.to_numpy(dtype=float))
    shared = filled.astype(int) @ filled.T.astype(int)   # [i, j]: columns rows i, j both fill
    return bool((np.triu(shared, k=1) >= 2).any())


def ablation_tables(final: pd.DataFrame, a: str, b: str, metric: str
                    ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Heatmap tables over parameters ``a`` (rows) × ``b`` (columns) of one method's final rows:
    per configuration (label) the mean over repetitions of ``metric`` and the median sampler
    seconds; where a cell holds several configurations (another parameter varies too), the one
    with the lowest mean metric is shown and the cell is marked. Returns (metric, seconds,
    marks)."""
    per = final.groupby("label").agg(value=(metric, "mean"), seconds=("seconds", "median"),
                                     a=(a, "first"), b=(b, "first"))
    per["a"], per["b"] = per["a"].map(_cell_text), per["b"].map(_cell_text)
    per = per.sort_values("value", na_position="last")
    counts = per.groupby(["a", "b"]).size()
    best = per.drop_duplicates(["a", "b"])

    def order(values):
        def key(v):
            try:
                return (0, float(v), "")
            except ValueError:
                return (1, 0.0, v)
        return sorted(set(values), key=key)

    rows_, cols_ = order(best["a"]), order(best["b"])
    tables = []
    for col in ("value", "seconds"):
        t = best.pivot(index="a", columns="b", values=col).reindex(index=rows_, columns=cols_)
        t.index.name, t.columns.name = a.removeprefix("method."), b.removeprefix("method.")
        tables.append(t.astype(float))
    marks = (counts > 1).reindex(pd.MultiIndex.from_product([rows_, cols_]), fill_value=False)
    marks = marks.unstack().reindex(index=rows_, columns=cols_).fillna(False).astype(bool)
    return tables[0], tables[1], marks


def _heatmaps(rows: pd.DataFrame, metrics: Sequence[str], title: str) -> str:
    if not metrics:
        return ""
    metric = metrics[0]
    last = rows.sort_values("iteration").groupby("run_id").tail(1)
    parts = []
    for method, final in last.groupby("method", sort=True):
        params = varying_parameters(final)
        pairs = [(a, b) for a, b in itertools.combinations(params, 2)
                 if final[a].notna().any() and final[b].notna().any()][:MAX_HEATMAPS]
        for a, b in pairs:
            value, secs, marks = ablation_tables(final, a, b, metric)
            if not is_ablation(value):
                continue
            fig = plots.heatmap_figure(
                [(value, f"final {metric} (mean over repetitions)"),
                 (secs, "sampler seconds (median)")],
                f"{title} · {method}: {a.removeprefix('method.')} × "
                f"{b.removeprefix('method.')}", marks=marks)
            parts.append(_img(fig, f"ablation heatmap {method} {a} {b}"))
    if not parts:
        return ""
    return ("<h3>Ablation heatmaps</h3><p class=\"note\">Each cell: one configuration; a "
            "<code>*</code> marks a cell holding several configurations (another parameter "
            "varies too), of which the one with the lowest final value is shown.</p>"
            + "".join(parts))


def _find(obj, names: Sequence[str]):
    """The first value under any of ``names`` in a nested dict (depth-first)."""
    if isinstance(obj, Mapping):
        for name in names:
            if name in obj and not isinstance(obj[name], Mapping):
                return obj[name]
        for v in obj.values():
            found = _find(v, names)
            if found is not None:
                return found
    return None


_SPEC_KEYS = ("dataset_params", "method_params", "n_particles", "n_steps", "n_train",
              "n_reference", "root_seed", "floor_seeds", "code")


def _spec_text(spec: Mapping) -> str:
    """The run's spec in one line: what tells two runs of one label apart (parameters, budget,
    seeds, code fingerprint); the run folder's manifest.json has the rest."""
    return json.dumps({k: spec[k] for k in _SPEC_KEYS if k in spec}, sort_keys=True,
                      separators=(",", ":"), default=str)


def _provenance(src: Sources, rows: pd.DataFrame) -> str:
    """One table row per run (pilots and failures included): id, label, repetition, status,
    commit, CPU, threads, versions and the spec in one line. A column whose value is the same
    for every run is stated once above the table instead."""
    runs = rows.sort_values(["pilot", "label", "repetition", "run_id"]).drop_duplicates("run_id")
    table = []
    for _, r in runs.iterrows():
        man = src.manifests.get(r["run_id"], {})
        # the package versions are a dict ({"numpy": "2.4.6", ...}), which _find passes over
        versions = (man.get("environment") or {}).get("packages") or _find(man, ["versions"])
        table.append({
            "run": r["run_id"], "label": r["label"], "repetition": r["repetition"],
            "pilot": bool(r["pilot"]), "status": r["status"],
            "commit": _find(man, ["git_commit", "commit"]), "CPU": _find(man, ["cpu"]),
            "threads": _find(man, ["numba_threads", "threads"]),
            "versions": ", ".join(f"{k} {v}" for k, v in versions.items())
            if isinstance(versions, Mapping) else versions or "",
            "platform": (man.get("platform") or {}).get("hash"),
            "spec": _spec_text(man.get("spec", {}))})
    keep = ("run", "label", "repetition", "pilot", "status", "commit", "spec")
    shared = {k: table[0][k] for k in table[0] if k not in keep
              and len({str(t[k]) for t in table}) == 1} if table else {}
    head = [k for k in (table[0] if table else keep) if k not in shared]
    out = [f"<details><summary>Provenance of the {len(runs)} runs (commit, versions, CPU, "
           "threads, spec)</summary>"]
    out += [f'<p class="note">{html.escape(k)} (every run): {html.escape(str(v))}</p>'
            for k, v in shared.items() if v not in (None, "")]
    out.append("<table><thead><tr>" + "".join(f"<th>{h}</th>" for h in head)
               + "</tr></thead><tbody>")
    for t in table:
        out.append("<tr>" + "".join(f"<td>{html.escape(str(t[h]))}</td>" for h in head)
                   + "</tr>")
    out.append("</tbody></table></details>")
    return "".join(out)


def _group_section(src: Sources, index: int, header: Mapping, rows: pd.DataFrame,
                   styles: Mapping) -> str:
    ok = plots.results_rows(rows)
    title = plots.group_title(header, rows)
    budget = ", ".join(f"{k} = {int(header[k])}" for k in BUDGET_COLUMNS if k in header)
    parts = [f'<section id="g{index}"><h2>{html.escape(title)}</h2>',
             f'<p class="note">{html.escape(budget)}</p>',
             markdown_to_html(src.leaderboard(header, rows))]
    metrics = plots.metric_columns(ok)
    if len(ok):
        parts.append("<h3>Convergence</h3>")
        for metric in metrics:
            fig = plots.convergence_figure([(header, rows)], metric, src.floors, styles)
            parts.append(_img(fig, f"convergence of {metric}: {title}"))
        parts.append(_scatter(src, ok, title, styles))
        parts.append(_image_grid(src, ok, title, styles))
        parts.append(_heatmaps(ok, metrics, title))
    else:
        parts.append('<p class="note">No finished run in this group.</p>')
    parts.append(_provenance(src, rows))
    parts.append("</section>")
    return "\n".join(p for p in parts if p)


def report_groups(rows: pd.DataFrame) -> list[tuple[dict, pd.DataFrame]]:
    """The page's sections: the comparable groups of the runs (``comparable_groups``), each with
    the step-size pilots that tuned it. A suite's ``pilot_steps`` gives pilots a shorter budget
    than the runs, so a pilot joins the group of the same dataset, parameters and budget except
    ``n_steps``, the first one at least as long as the pilot; pilots of no such group (their
    method never ran) keep a section of their own."""
    from kswgd.reports.leaderboard import comparable_groups

    if rows.empty:
        return []
    rows = rows.reset_index(drop=True)
    pilot = rows["pilot"].astype(bool)
    out = []
    for _, coarse in comparable_groups(rows.drop(columns="n_steps")):
        fine = comparable_groups(coarse[~coarse["pilot"].astype(bool)].join(rows["n_steps"]))
        left = coarse[coarse["pilot"].astype(bool)].join(rows["n_steps"])
        for header, sub in fine:
            take = left["n_steps"] <= header["n_steps"]
            out.append((header, pd.concat([sub, left[take]])))
            left = left[~take]
        out += comparable_groups(left) if len(left) else []
    order = {rid: i for i, rid in enumerate(rows.loc[~pilot, "run_id"])}
    return sorted(out, key=lambda g: min((order.get(r, len(order)) for r in g[1]["run_id"]),
                                         default=len(order)))


def render_report(src: Sources, title: str = "kswgd report") -> str:
    """The whole HTML page (a string)."""
    groups = report_groups(src.rows)
    nav = "".join(f'<li><a href="#g{i}">{html.escape(plots.group_title(h, r))}</a></li>'
                  for i, (h, r) in enumerate(groups))
    # one label -> (colour, marker) map for every figure of the page
    styles = plots.method_styles(src.rows["label"]) if not src.rows.empty else {}
    body = [_group_section(src, i, h, r, styles) for i, (h, r) in enumerate(groups)]
    if not groups:
        body = ['<p class="note">No finished run.</p>']
    body = [f'<p class="note">{html.escape(n)}</p>' for n in src.notes] + body
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><nav><ul>{nav}</ul></nav>\n"
            + "\n".join(body) + "\n</body></html>\n")


# --- a results folder -----------------------------------------------------------------------
def folder_sources(out: Path) -> Sources:
    """The report's inputs read from the results folder ``out`` (``kswgd.engine.store``); the
    reference points are the runner's own (its session of the run's spec), so no seed is
    derived here."""
    from functools import cache

    from kswgd.engine import store
    from kswgd.engine.spec import RunSpec
    from kswgd.engine.target import target_for
    from kswgd.reports import leaderboard

    out = Path(out)
    manifests = store.load_manifests(out)
    stored, floors = leaderboard.stored_rows(out, manifests), store.load_floors(out)  # once

    @cache
    def session(rid: str):
        return target_for(RunSpec.from_dict(manifests[rid]["spec"]))

    def board(header: Mapping, rows: pd.DataFrame) -> str:
        return leaderboard.leaderboard_markdown(out, sorted(set(rows["run_id"])),
                                                stored=stored, floors=floors)

    rows, notes = leaderboard.board_rows(out, stored=stored)  # current, intact; label per config
    return Sources(rows=rows, floors=floors, notes=notes,
                   manifests=manifests, leaderboard=board,
                   particles=lambda rid: store.load_particles(out, rid),
                   dataset=lambda rid: session(rid).dataset,
                   reference=lambda rid: session(rid).ctx.reference)


def write_report(out: Path, path: Path) -> Path:
    """Write the HTML report of the results folder ``out`` to ``path`` (atomically)."""
    from kswgd.engine import store
    from kswgd.params import ConfigError

    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"report file {path} is a folder: give a file name, e.g. report.html")
    text = render_report(folder_sources(out), title=f"kswgd report: {Path(out)}")
    store.write_text(path, text)
    return path
