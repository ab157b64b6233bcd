"""The published results on main are the current code's, and the README quotes them as they are.

A published number must come from the code on main: every run in every ``results/*/final.parquet``
carries the code fingerprint of the sources that computed it, and it must equal the fingerprint
the current sources give that dataset/method pair. When a change to ``kswgd/`` or a plug-in
makes a folder stale, this test fails until the suite is rerun and republished (the failure
names the command). Each folder's tables must be the ones its final rows give with the current
report code, and the README's headline table must be the leaderboard summary's rows.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kswgd.reports.leaderboard import (
    across_groups_text,
    board_line,
    comparable_groups,
    rank_metric,
    recorded_metrics,
    stale_mask,
    summary,
)

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = sorted(p.parent for p in (ROOT / "results").glob("*/final.parquet"))


def test_there_are_published_folders():
    assert len(FOLDERS) >= 10, FOLDERS


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_published_folder_is_the_current_codes(folder):
    final = pd.read_parquet(folder / "final.parquet")
    stale = final[stale_mask(final)]
    pairs = sorted({f"{d}/{m}" for d, m in zip(stale["dataset"], stale["method"], strict=True)})
    assert not pairs, (
        f"{folder.name}: {len(pairs)} dataset/method pairs come from other code ({pairs[:4]}...); "
        f"republish: kswgd run --suite {folder.name} --out runs/{folder.name} --jobs 2 && "
        f"kswgd publish --out runs/{folder.name} --to results/{folder.name} --replace")


def _table(text: str, header: str) -> list[list[str]]:
    """The rows (cells stripped) of the first Markdown table whose header row starts so."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    return rows


def test_readme_headline_is_the_leaderboard_summary():
    summary = (ROOT / "results" / "leaderboard" / "summary.md").read_text()
    readme = (ROOT / "README.md").read_text()
    want = _table(summary, "| method | datasets run | mean rank")
    got = _table(readme, "| method | datasets run | mean rank")
    # the README may explain a method's name in brackets: "kswgd (tuned from its data alone)"
    got = [[re.sub(r"\s*\(.*\)$", "", row[0]), *row[1:]] for row in got]
    assert got == want


#: Relative tolerance between a published leaderboard.csv and its summary recomputed from the
#: folder's final.parquet: the same means and Student-t half-widths of at most a few dozen
#: numbers, recomputed on another CPU (a few ulp, ~1e-15); CSV round-trips floats exactly.
TABLE_RTOL = 1e-12


def _published_table(folder: Path) -> pd.DataFrame:
    table = pd.read_csv(folder / "leaderboard.csv")
    for col in ("uses", "config", "tuning", "health"):  # empty cells of the floor rows
        table[col] = table[col].fillna("")
    return table


def _same(a, b) -> bool:
    """One parameter value, read back from CSV (a number) and from final.parquet (its cells
    as text: '-1.0')."""
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return str(a) == str(b)


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_published_tables_are_drawn_from_the_folders_final_rows(folder):
    """leaderboard.csv's method rows are the summary of final.parquet (so a table that another
    run, an edit or older report code wrote is caught, not only older run code); every row of
    it is a row of leaderboard.md; summary.md is the ranking of leaderboard.csv."""
    final = pd.read_parquet(folder / "final.parquet")
    table = _published_table(folder)
    want = summary(final).reset_index(drop=True)
    got = table[table["kind"] == "method"].reset_index(drop=True)
    assert list(got["label"]) == list(want["label"])
    for col in ("config", "tuning", "health", "uses"):
        assert list(got[col].astype(str)) == list(want[col].astype(str)), col
    for col in ("ok", "runs"):
        assert list(got[col].astype(int)) == list(want[col].astype(int)), col
    for col in (c for c in got.columns if c.endswith("_ci95")):
        for c in (col[:-len("_ci95")], col):
            np.testing.assert_allclose(got[c].to_numpy(float), want[c].to_numpy(float),
                                       rtol=TABLE_RTOL, atol=0, err_msg=c)
    lines = set((folder / "leaderboard.md").read_text().splitlines())
    for header, group in comparable_groups(final):
        rows = table[[all(_same(r[k], v) for k, v in header.items())
                      for _, r in table.iterrows()]]
        assert len(rows) > 0, header
        for _, r in rows.iterrows():
            assert board_line(r, recorded_metrics(group)) in lines, (header, r["label"])
    if (folder / "summary.md").exists():
        text = (folder / "summary.md").read_text()
        body = text.split("\n\n", 1)[1]  # under the provenance line
        assert body == across_groups_text(table, rank_metric(recorded_metrics(final)))
