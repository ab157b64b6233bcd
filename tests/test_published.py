"""The published results on main are the current code's, and the README quotes them as they are.

A published number must come from the code on main: every run in every ``results/*/final.parquet``
carries the code fingerprint of the sources that computed it, and it must equal the fingerprint
the current sources give that dataset/method pair. When a change to ``kswgd/`` or a plug-in
makes a folder stale, this test fails until the suite is rerun and republished (the failure
names the command). The README's headline table must be the leaderboard summary's rows.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from kswgd.reports.leaderboard import stale_mask

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
