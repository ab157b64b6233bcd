"""The package's rooms and the direction of its imports (README, 'Layout').

Every ``import`` of a kswgd module, at the top of a file or inside a function, is an edge of the
import graph. The graph must have no cycle, and each room may only import the rooms below it:

    core/                 -> core/, params
    plug-in interfaces    -> core/, the interfaces (params, dataset, sampler, registry, helpers)
    engine/               -> the above, engine/
    reports/, tools/      -> anything but cli
    plug-ins              -> core/, the interfaces (never the engine, the reports or each other)
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
INTERFACES = {"kswgd", "kswgd.params", "kswgd.dataset", "kswgd.sampler", "kswgd.registry",
              "kswgd.helpers"}


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[0] in ("baselines", "datasets"):
        parts = ["kswgd", *parts]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _sources() -> dict[str, Path]:
    files = [*ROOT.glob("kswgd/**/*.py"), *ROOT.glob("baselines/*.py"), *ROOT.glob("datasets/*.py")]
    return {_module_name(p): p for p in files if "__pycache__" not in p.parts}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The kswgd modules ``path`` imports (``from kswgd.x import y`` counts as kswgd.x.y when
    that is a module, else kswgd.x)."""
    out: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("kswgd"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            if not base.startswith("kswgd"):
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out.add(sub if sub in known else base)
    return {m for m in out if m in known and m != name}


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    sources = _sources()
    known = set(sources)
    return {name: _imports(name, path, known) for name, path in sources.items()}


def _room(name: str) -> str:
    parts = name.split(".")
    if len(parts) > 1 and parts[1] in ("core", "engine", "reports", "tools", "baselines",
                                        "datasets"):
        return parts[1]
    if name == "kswgd.cli":
        return "cli"
    return "interfaces"


ALLOWED = {
    "core": {"core"},
    "interfaces": {"core", "interfaces"},
    "engine": {"core", "interfaces", "engine"},
    "reports": {"core", "interfaces", "engine", "reports", "tools", "baselines", "datasets"},
    "tools": {"core", "interfaces", "engine", "reports", "tools", "baselines", "datasets"},
    "cli": {"core", "interfaces", "engine", "reports", "tools"},
    "baselines": {"core", "interfaces"},
    "datasets": {"core", "interfaces"},
}


def test_the_graph_finds_the_known_edges(graph):
    # the check below is only as good as the parser: a few edges we know exist
    assert "kswgd.core.dictionaries" in graph["kswgd.core.estimators"]
    assert "kswgd.engine.execute" in graph["kswgd.engine.driver"]
    assert "kswgd.sampler" in graph["kswgd.baselines.kswgd"]
    assert "kswgd.helpers" in graph["kswgd.datasets.gaussian"]


def test_each_room_imports_only_the_rooms_below_it(graph):
    bad = []
    for name, deps in graph.items():
        room = _room(name)
        for dep in deps:
            if name.startswith("kswgd.core") and dep == "kswgd.params":
                continue  # the one leaf every room may use: ConfigError and parameter checks
            if _room(dep) not in ALLOWED[room]:
                bad.append(f"{name} ({room}) imports {dep} ({_room(dep)})")
    assert not bad, "\n".join(sorted(bad))


def test_plugins_never_import_each_other(graph):
    bad = [f"{n} imports {d}" for n, d_ in graph.items() for d in d_
           if _room(n) in ("baselines", "datasets") and _room(d) in ("baselines", "datasets")]
    assert not bad, "\n".join(bad)


def test_the_import_graph_has_no_cycle(graph):
    # Tarjan's strongly connected components; any component of two or more modules is a cycle
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles, cycles
