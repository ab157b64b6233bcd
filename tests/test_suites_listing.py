"""``kswgd suites``: columns as wide as their entries, the idle-machine assumption stated, the
estimate scaled by load / cores when the machine is loaded."""

from __future__ import annotations

import os

import pytest
from test_cli_errors import kswgd_cli

from kswgd.tools.catalog import format_minutes, load_factor, suites_listing

ROWS = [{"name": "a-rather-long-suite-name-indeed", "runs": 1200, "estimated_minutes": 0.5,
         "description": "first"},
        {"name": "s", "runs": None, "estimated_minutes": None, "description": "broken"},
        {"name": "mid", "runs": 7, "estimated_minutes": 90.0, "description": "third"}]


def test_load_factor_is_load_over_cores_only_above_the_core_count():
    assert load_factor(7.0, 2) == (3.5, 7.0, 2)
    assert load_factor(2.0, 2) == (1.0, 2.0, 2)
    assert load_factor(0.3, 4) == (1.0, 0.3, 4)
    factor, load, cores = load_factor()
    assert cores >= 1 and load >= 0 and factor == (load / cores if load > cores else 1.0)


def test_listing_aligns_every_column_whatever_the_name_length():
    lines = suites_listing(ROWS, load=7.0, cores=2).splitlines()
    body = lines[:4]
    # every description starts in the same column, after two spaces
    starts = {ln.index(d) for ln, d in zip(body, ["description", "first", "broken", "third"],
                                           strict=True)}
    assert len(starts) == 1
    assert body[0].split()[:2] == ["suite", "runs"]
    assert "est. now" in body[0]
    # 30 s idle × 3.5 = 105 s; 90 min × 3.5 = 315 min = 5.2 h
    assert body[1].split()[1:6] == ["1200", "30", "s", "105", "s"]
    assert body[3].split()[1:6] == ["7", "90", "min", "5.2", "h"]
    assert body[2].split()[1:3] == ["-", "?"]
    assert "idle 2-core machine" in lines[4]
    assert lines[5] == ("est. now: est. idle × 3.5, the current load average 7.0 over this "
                        "machine's 2 cores")


def test_an_idle_machine_gets_no_scaled_column():
    lines = suites_listing(ROWS, load=0.5, cores=2).splitlines()
    assert "est. now" not in lines[0] and lines[-1].startswith("load average 0.5 on 2 cores")


@pytest.mark.parametrize("m,text", [(0.5, "30 s"), (1.99, "119 s"), (12, "12 min"),
                                    (150, "2.5 h")])
def test_format_minutes(m, text):
    assert format_minutes(m) == text


def test_cli_suites_columns_line_up(tmp_path):
    text = kswgd_cli("suites", cwd=tmp_path, status=0, env={**os.environ}).stdout
    lines = text.splitlines()
    head = lines[0]
    col = head.index("description")
    rows = [ln for ln in lines[1:] if not ln.startswith(("est.", "load average"))]
    assert rows and all(ln[col - 2:col] == "  " and ln[col] != " " for ln in rows)
    assert any("idle 2-core machine" in ln for ln in lines)
