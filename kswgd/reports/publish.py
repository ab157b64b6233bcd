"""Publish a results folder into ``results/NAME``: the Markdown and CSV leaderboards, the summary
across datasets, a small Parquet table of every run's final row (the run spec as flat columns,
metrics, health, git commit), and the figures (:func:`figures`). Everything written is small
enough to commit; the per-checkpoint rows and particles stay in the (git-ignored) results
folder, and no ``.gitignore`` is written here: published output is committed.

Inputs are checked before anything is written: the results folder must hold finished runs,
the destination must not be a file nor a non-empty folder (unless ``--replace``: then it is
replaced entirely, written beside it and renamed in), and every requested metric must have been
recorded. Only the current code's intact runs are published (stale ones are counted under the
leaderboard).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pandas as pd

from kswgd.engine import store
from kswgd.params import ConfigError, choice_error
from kswgd.reports.dimension import dimension_figures
from kswgd.reports.fields import velocity_figures
from kswgd.reports.leaderboard import (
    across_groups_markdown,
    board_rows,
    comparable_groups,
    final_rows,
    leaderboard,
    leaderboard_markdown,
    recorded_metrics,
    stored_rows,
    summary,
)
from kswgd.reports.plots import (
    MAX_PANEL_ROWS,
    convergence_figure,
    index_figure,
    index_points,
    results_rows,
    save_figure,
)


def _cells_as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Object columns holding mixed types (parameters of different methods) as text, so the
    table can be written as Parquet."""
    frame = frame.copy()
    for col in frame.columns:
        if frame[col].dtype == object:
            kinds = {type(v) for v in frame[col].dropna()}
            if len(kinds) > 1:
                frame[col] = frame[col].map(lambda v: None if v is None or v != v else str(v))
    return frame


def _destination(dest: Path, replace: bool) -> None:
    """Refuse a destination that is a file, or a non-empty folder unless ``replace``."""
    if dest.exists() and not dest.is_dir():
        raise ConfigError(f"--to {dest} is a file, not a folder")
    if dest.is_dir() and any(dest.iterdir()) and not replace:
        n = sum(1 for _ in dest.iterdir())
        raise ConfigError(f"--to {dest} is not empty ({n} entries): pass --replace to replace "
                          "it entirely, or choose an empty or new folder")


def _swap_in(tmp: Path, dest: Path) -> None:
    """Put the finished folder ``tmp`` at ``dest``: the old folder is renamed away first and
    removed last, so ``dest`` holds the old or the new publication, never a mix."""
    old = None
    if dest.exists():
        old = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.old-"))
        os.replace(dest, old / dest.name)
    os.replace(tmp, dest)
    if old is not None:
        shutil.rmtree(old)


def publish(out: Path, dest: Path, metrics: list[str] | None = None,
            note: str | None = None, replace: bool = False) -> list[Path]:
    """Write leaderboard.md (headed by ``note`` if given), leaderboard.csv, summary.md (the
    summary across datasets, when there are several), final.parquet, tuning.csv (every tuned
    method's configurations and their validation scores, :func:`tuning_table`), the
    :func:`figures` and
    the KSWGD velocity fields of flat 2-D datasets (:func:`kswgd.reports.fields.velocity_figures`)
    into ``dest``: the current, intact runs only
    (:func:`kswgd.reports.leaderboard.board_rows`). A non-empty ``dest`` is refused unless
    ``replace``; then it is replaced entirely (written beside it, then renamed)."""
    dest = Path(dest)
    _destination(dest, replace)
    manifests = store.load_manifests(out)  # these three are read once for every table
    stored, floors = stored_rows(out, manifests), store.load_floors(out)
    rows, notes = board_rows(out, stored=stored)
    if rows.empty or rows["pilot"].astype(bool).all():
        raise ConfigError(f"nothing to publish: {out} has no finished runs of the current code")
    final = final_rows(rows[~rows["pilot"].astype(bool)]).reset_index(drop=True)
    recorded = recorded_metrics(final)
    for name in metrics or []:
        if name not in recorded:
            raise choice_error("metric to plot (not recorded in this folder)", name, recorded)
    final["git_commit"] = final["run_id"].map(lambda rid: manifests[rid].get("git_commit"))
    final = final.drop(columns="floor_seeds")  # from the manifests; not a row column
    ok = final[final["status"] == "ok"]
    env = manifests[ok["run_id"].iloc[0]]["environment"] if len(ok) else {}
    suites = sorted(final["suite"].unique())
    commits = sorted({str(c) for c in final["git_commit"]})
    header = (f"Suite {', '.join(suites)}: `kswgd run --suite {suites[0]}`; "
              f"code at {', '.join(commits)}; CPU {env.get('cpu', '?')}, "
              f"{env.get('numba_threads', '?')} Numba threads.\n\n"
              + (f"{note}\n\n" if note else ""))
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.new-"))
    try:
        names = ["leaderboard.md", "leaderboard.csv"]
        store.write_text(tmp / "leaderboard.md", header + leaderboard_markdown(
            out, stored=stored, floors=floors))
        store.write_text(tmp / "leaderboard.csv", leaderboard(out, "csv", stored=stored,
                                                              floors=floors))
        if final.groupby("dataset").ngroups > 1:
            store.write_text(tmp / "summary.md", header + across_groups_markdown(
                out, stored=stored, floors=floors))
            names.append("summary.md")
        store.write_parquet(tmp / "final.parquet", _cells_as_text(final))
        names.append("final.parquet")
        table = tuning_table(out)
        if not table.empty:
            store.write_text(tmp / "tuning.csv", table.to_csv(index=False))
            names.append("tuning.csv")
        plottable = [m for m in recorded if ok[m].notna().any()] if len(ok) else []
        for name, make in (figure_list(rows, floors, metrics or plottable)
                           + velocity_figures(out)):
            save_figure(make(), [tmp / name])
            names.append(name)
        os.chmod(tmp, 0o755)
        _swap_in(tmp, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return [dest / name for name in names]


def tuning_table(out: Path) -> pd.DataFrame:
    """Every tuned method's search, one row per (dataset, label, configuration) from the
    tuning records (``OUT/tuning/``): the information class, the validation mean, spread and
    standard error over the validation repetitions or why the configuration was excluded, and
    whether it was chosen (with the step margin's note)."""
    recs = []
    for path in sorted((Path(out) / "tuning").glob("*.json")):
        rec = store.read_json(path)
        for st in rec["stats"]:
            recs.append({"dataset": rec["dataset"], "label": rec["label"],
                         "selection": rec["selection"],
                         "config": ", ".join(f"{k}={v}" for k, v in sorted(st["config"].items())),
                         "mean": st["mean"], "spread": st["spread"], "se": st["se"],
                         "excluded": st["excluded"], "validated": st["config"] == rec["validated"],
                         "chosen": st["config"] == rec["chosen"],
                         "margin": rec["margin"] if st["config"] == rec["validated"] else None})
    return pd.DataFrame(recs)


#: The diagnostic figures publish writes when finished rows carry the column: file → column.
DIAGNOSTIC_FIGURES = {"spectral_residual.png": "diag.residual"}


def figures(out: Path, metrics: list[str]) -> list[tuple[str, Callable[[], object]]]:
    """The figures of a published folder, as (file name, figure maker), drawn from the current,
    intact runs (:func:`kswgd.reports.leaderboard.board_rows`):

    - ``convergence_<metric>.png`` per metric (:func:`kswgd.reports.plots.convergence_figure`;
      small multiples against iteration beyond ``MAX_PANEL_ROWS`` groups, then also
      ``convergence_<metric>_seconds.png`` against sampler seconds);
    - ``index_<metric>.png`` per metric that at least two groups have a finished run and a
      noise floor of (:func:`kswgd.reports.plots.index_figure`);
    - every :data:`DIAGNOSTIC_FIGURES` file whose column has values in finished rows (e.g.
      ``spectral_residual.png``: the spectral residual S_n of the spectral samplers);
    - a dimension study (a dataset at ≥ 2 values of ``d``, :mod:`kswgd.reports.dimension`):
      ``dimension_<metric>.png`` (final metric / noise floor against d, 95 % intervals),
      ``dimension_seconds.png`` (fit and sampler seconds against d) and
      ``dimension_memory.png`` (peak memory against d)."""
    return figure_list(board_rows(out)[0], store.load_floors(out), metrics)


def figure_list(rows: pd.DataFrame, floors: pd.DataFrame, metrics: list[str]
                ) -> list[tuple[str, Callable[[], object]]]:
    """:func:`figures` of checkpoint rows (``store.load_rows``; final rows alone do too) and
    a floors table."""
    rows = results_rows(rows)
    groups = comparable_groups(rows)
    out_list: list[tuple[str, Callable[[], object]]] = []
    for metric in metrics:
        out_list.append((f"convergence_{metric}.png",
                         partial(convergence_figure, groups, metric, floors)))
        if len(groups) > MAX_PANEL_ROWS:
            out_list.append((f"convergence_{metric}_seconds.png",
                             partial(convergence_figure, groups, metric, floors, x="seconds")))
    if len(groups) > 1:
        final = rows.sort_values(["run_id", "iteration"], kind="stable").groupby(
            "run_id", sort=False).tail(1)
        table = summary(final, floors)
        suites = ", ".join(sorted({str(s) for s in rows["suite"].dropna()}))
        for metric in metrics:
            if index_points(table, metric)["group"].nunique() > 1:
                out_list.append((f"index_{metric}.png",
                                 partial(index_figure, table, metric, suites)))
    for name, column in DIAGNOSTIC_FIGURES.items():
        if column in rows and rows[column].notna().any():
            out_list.append((name, partial(convergence_figure, groups, column, floors)))
    out_list += dimension_figures(rows, floors, metrics)
    return out_list
