"""The committed asv history (results/asv/<machine>/, results/asv-html/) is complete and consistent.

No asv run: these read the committed JSON. They check that every file parses, that each machine
folder has its machine.json, that the results cover at least 20 commits of HEAD's history, that
every benchmark a result names still exists in benchmarks/, and that the published dashboard has
a graph point for every recorded result. Also that the wheel asv builds holds every subpackage.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import importlib.util
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results" / "asv"
HTML = ROOT / "results" / "asv-html"
BENCHMARKS = ROOT / "benchmarks"
MIN_COMMITS = 20
ASV_FILES = {"machine.json", "benchmarks.json"}


def _load(path: Path) -> dict:
    with path.open() as fh:
        return json.load(fh)


def _machines() -> list[Path]:
    return sorted(p.parent for p in RESULTS.glob("*/machine.json"))


def _result_files(machine: Path) -> list[Path]:
    return sorted(p for p in machine.glob("*.json") if p.name not in ASV_FILES)


def _methods(cls: ast.ClassDef, classes: dict[str, ast.ClassDef]) -> set[str]:
    """Names of the functions ``cls`` defines or inherits from a base among ``classes``."""
    own = {f.name for f in cls.body if isinstance(f, ast.FunctionDef)}
    for base in cls.bases:
        if isinstance(base, ast.Name) and base.id in classes:
            own |= _methods(classes[base.id], classes)
    return own


def _benchmark_names() -> set[str]:
    """``module.Class.method`` of every time_/track_ method in benchmarks/bench_*.py (a class
    also offers the methods of its bases defined in the same module), read with ast."""
    names = set()
    for path in BENCHMARKS.glob("bench_*.py"):
        classes = {node.name: node for node in ast.parse(path.read_text()).body
                   if isinstance(node, ast.ClassDef)}
        for cls_name, cls in classes.items():
            for m in _methods(cls, classes):
                if m.startswith(("time_", "track_")):
                    names.add(f"{path.stem}.{cls_name}.{m}")
    return names


def _ancestors() -> set[str]:
    """Full hashes of HEAD's history; skips when this is no complete git checkout."""
    if shutil.which("git") is None:
        pytest.skip("git not installed")

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)

    if git("rev-parse", "--is-inside-work-tree").returncode != 0:
        pytest.skip("not a git checkout")
    if git("rev-parse", "--is-shallow-repository").stdout.strip() == "true":
        pytest.skip("shallow clone: older commits are not here")
    return set(git("rev-list", "HEAD").stdout.split())


def test_every_file_is_json_and_each_machine_has_machine_json():
    files = sorted(RESULTS.rglob("*.json"))
    assert files, f"no asv results under {RESULTS}"
    for path in files:
        _load(path)  # raises on invalid JSON
    machines = _machines()
    assert machines, "no results/asv/<machine>/machine.json"
    for machine in machines:
        assert _load(machine / "machine.json")["machine"] == machine.name
        for path in _result_files(machine):
            data = _load(path)
            assert data["params"]["machine"] == machine.name, path
            assert path.name.startswith(data["commit_hash"][:8]), path
    # every JSON is either asv's benchmark list or sits in a machine folder
    stray = [p for p in files if p.name != "benchmarks.json" and p.parent not in machines]
    assert not stray, stray


def test_results_cover_enough_commits_of_this_history():
    ancestors = _ancestors()
    for machine in _machines():
        commits = {_load(p)["commit_hash"] for p in _result_files(machine)}
        assert commits <= ancestors, f"{machine.name}: not in HEAD's history: {commits - ancestors}"
        assert len(commits) >= MIN_COMMITS, f"{machine.name}: {len(commits)} commits"


def test_results_name_only_existing_benchmarks():
    existing = _benchmark_names()
    assert "bench_transport.Quality.track_kswgd_ou_w2_over_floor" in existing  # the parser works
    for machine in _machines():
        for path in _result_files(machine):
            unknown = set(_load(path)["results"]) - existing
            assert not unknown, f"{path.name}: benchmarks no longer in benchmarks/: {unknown}"


def _graph_revisions(machine: str, benchmark: str) -> set[int]:
    """The revisions with a value in the dashboard's graph of ``benchmark`` on ``machine``."""
    paths = [p for p in HTML.glob(f"graphs/**/{benchmark}.json")
             if f"machine-{machine}" in p.parts]
    assert paths, f"no graph of {benchmark} for {machine}"
    revisions = set()
    for path in paths:
        for revision, value in _load(path):
            values = value if isinstance(value, list) else [value]
            if any(v is not None for v in values):
                revisions.add(int(revision))
    return revisions


def test_dashboard_has_every_recorded_commit():
    assert (HTML / "index.html").is_file()
    index = _load(HTML / "index.json")
    revision_of = {h: int(r) for r, h in index["revision_to_hash"].items()}
    for machine in _machines():
        assert machine.name in index["params"]["machine"]
        graphs: dict[str, set[int]] = {}
        for path in _result_files(machine):
            data = _load(path)
            commit = data["commit_hash"]
            assert commit in revision_of, f"{commit[:8]} recorded but not published"
            for name, row in data["results"].items():
                if all(v is None or v != v for v in row[0]):  # failed, skipped or not selected
                    continue
                if name not in graphs:
                    graphs[name] = _graph_revisions(machine.name, name)
                assert revision_of[commit] in graphs[name], f"{name} at {commit[:8]} not drawn"


def _wheel_packages():
    spec = importlib.util.spec_from_file_location("_wheel_packages",
                                                  BENCHMARKS / "_wheel_packages.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pyproject_lists_every_subpackage():
    assert _wheel_packages().missing_packages(ROOT) == []


def test_build_step_adds_missing_subpackages_once(tmp_path):
    wp = _wheel_packages()
    (tmp_path / "pyproject.toml").write_text(
        '[tool.setuptools]\npackages = ["kswgd", "kswgd.datasets"]\n')
    for sub in ("kswgd", "kswgd/core", "kswgd/core/metrics"):
        (tmp_path / sub).mkdir(parents=True)
        (tmp_path / sub / "__init__.py").write_text("")
    assert wp.patch(tmp_path) == ["kswgd.core", "kswgd.core.metrics"]
    assert wp.missing_packages(tmp_path) == []
    assert wp.patch(tmp_path) == []  # a complete list is left as it is


def _offline_html():
    spec = importlib.util.spec_from_file_location("_offline_html",
                                                  BENCHMARKS / "_offline_html.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_localise_points_known_cdn_tags_at_vendor_copies_and_reports_others():
    oh = _offline_html()
    url = "https://code.jquery.com/jquery-3.3.1.min.js"
    html = (f'<script src="{url}" integrity="sha256-cdn" crossorigin="anonymous"></script>\n'
            '<script src="https://example.org/new.js"></script>\n'
            '<a href="https://github.com/">not a script</a>')
    out, unknown = oh.localise(html)
    assert unknown == ["https://example.org/new.js"]
    local = oh.VENDOR / oh.LOCAL[url]
    digest = base64.b64encode(hashlib.sha384(local.read_bytes()).digest()).decode()
    assert f'src="vendor/{local.name}" integrity="sha384-{digest}"' in out
    assert url not in out and '<a href="https://github.com/">' in out


def test_every_vendored_library_is_there():
    oh = _offline_html()
    for name in oh.LOCAL.values():
        assert (oh.VENDOR / name).stat().st_size > 1000, name


def test_committed_dashboard_loads_nothing_from_outside():
    oh = _offline_html()
    html = (HTML / "index.html").read_text()
    assert oh.EXTERNAL.findall(html) == []
    for src in re.findall(r'<script\b[^>]*\bsrc="(vendor/[^"]+)"', html):
        assert (HTML / src).is_file(), src
