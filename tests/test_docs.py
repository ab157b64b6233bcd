"""docs/plugins.md runs as printed, so the page cannot rot.

The page's ```python blocks whose first line is ``# baselines/NAME.py`` or ``# datasets/NAME.py``
are written to a temporary ``KSWGD_PLUGIN_PATH`` folder; every command of its bash block that
sets that variable runs in a subprocess through the real entry points (the ``kswgd`` console
script, ``python -m pytest``), its ```toml block is the suite of its ``kswgd run``, and its other
```python blocks run as scripts. The page must also name every member of the two interfaces and
every public helper, and the contract test's failures must point back to it.
"""

from __future__ import annotations

import ast
import inspect
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import kswgd
from kswgd import helpers
from kswgd.dataset import Dataset
from kswgd.sampler import Sampler

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "plugins.md"
_SCRIPT = Path(sys.executable).with_name("kswgd")
_KSWGD = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "kswgd.cli"]
_FILE_LINE = re.compile(r"# ((?:baselines|datasets)/\w+\.py)\n")
#: What a plug-in may import from kswgd (docs/plugins.md, 'Helpers a plug-in may import').
PUBLIC_MODULES = {"kswgd": kswgd.__all__, "kswgd.helpers": dir(helpers),
                  "kswgd.params": ["ConfigError", "Interval", "Choice", "Boolean", "Text",
                                   "Floats", "ListOf"]}


def blocks(lang: str) -> list[str]:
    """The page's fenced code blocks of one language, in order."""
    return re.findall(rf"^```{lang}\n(.*?)^```$", PAGE.read_text(), re.S | re.M)


def plugin_files() -> dict[str, str]:
    """Relative path -> source of the page's plug-in files."""
    found = {}
    for block in blocks("python"):
        m = _FILE_LINE.match(block)
        if m:
            found[m.group(1)] = block
    return found


def page_commands() -> list[list[str]]:
    """The commands of the bash block that exports KSWGD_PLUGIN_PATH (the export itself left
    out), split as a shell would, comments dropped."""
    (block,) = [b for b in blocks("bash") if "export KSWGD_PLUGIN_PATH=" in b]
    lines = [shlex.split(line, comments=True) for line in block.splitlines()]
    return [cmd for cmd in lines if cmd and cmd[0] != "export"]


def command(first: str, second: str) -> list[str]:
    (cmd,) = [c for c in page_commands() if c[:2] == [first, second]]
    return cmd


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory) -> dict:
    """os.environ plus KSWGD_PLUGIN_PATH pointing at the page's files, written out."""
    folder = tmp_path_factory.mktemp("plugins")
    for rel, source in plugin_files().items():
        (folder / rel).parent.mkdir(exist_ok=True)
        (folder / rel).write_text(source)
    return {**os.environ, "KSWGD_PLUGIN_PATH": str(folder), "OMP_WAIT_POLICY": "passive"}


def run(cmd: list[str], cwd: Path, env: dict, timeout: int = 900) -> subprocess.CompletedProcess:
    """A page command with ``kswgd`` and ``python`` resolved to this environment's."""
    exe = {"kswgd": _KSWGD, "python": [sys.executable]}[cmd[0]]
    return subprocess.run([*exe, *cmd[1:]], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_page_gives_one_sampler_file_and_one_dataset_file_importing_only_public_names():
    files = plugin_files()
    assert sorted(files) == ["baselines/mysampler.py", "datasets/mydata.py"]
    for rel, source in files.items():
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ImportFrom) and node.module.startswith("kswgd"):
                assert node.module in PUBLIC_MODULES, (rel, node.module)
                public = PUBLIC_MODULES[node.module]
                for alias in node.names:
                    assert alias.name in public, f"{rel} imports {alias.name}, not public"
            elif isinstance(node, ast.Import):
                assert not any(a.name.startswith("kswgd") for a in node.names), rel


def _members(cls: type) -> set[str]:
    return {k for c in cls.__mro__[:-1] for k in vars(c) if not k.startswith("_")}


def test_page_names_every_member_of_both_interfaces_and_every_helper():
    text = PAGE.read_text()
    own_helpers = {n for n, obj in vars(helpers).items() if not n.startswith("_")
                   and (inspect.isfunction(obj) or inspect.isclass(obj))
                   and obj.__module__ == helpers.__name__}
    for name in _members(Dataset) | _members(Sampler) | own_helpers:
        assert re.search(rf"`{name}[`(]", text), f"docs/plugins.md does not describe {name!r}"


def test_kswgd_list_and_datasets_commands_show_the_page_plugins(plugin_env, tmp_path):
    listed = run(command("kswgd", "list"), tmp_path, plugin_env)
    assert listed.returncode == 0, listed.stderr
    assert re.search(r"^  mydata +anisotropic", listed.stdout, re.M), listed.stdout
    assert re.search(r"^  mysampler +uses samples ", listed.stdout, re.M), listed.stdout
    shown = run(command("kswgd", "datasets"), tmp_path, plugin_env)
    assert shown.returncode == 0, shown.stderr
    line = next(x for x in shown.stdout.splitlines() if x.startswith("mydata "))
    assert "d=2" in line and "trajectories+samples" in line and "score+log_density+spectrum" \
        in line, line


def test_contract_command_of_the_page_checks_the_page_plugins_and_they_pass(plugin_env):
    cmd = command("python", "-m")
    proc = run([*cmd, "-p", "no:cacheprovider", "-rA"], ROOT, plugin_env)
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:]
    passed = set(re.findall(r"^PASSED tests/test_contract.py::(\S+)", out, re.M))
    for test in ("test_dataset_parameters_round_trip_and_unknown_ones_are_refused[mydata]",
                 "test_dataset_draw_train_initial_shapes_kinds_and_seeds[mydata]",
                 "test_dataset_exact_quantities_agree_with_its_draws[mydata]",
                 "test_sampler_parameters_round_trip_and_declarations[mysampler]",
                 "test_sampler_steps_reproducibly_within_its_declared_uses[mysampler-mydata]",
                 "test_sampler_steps_reproducibly_within_its_declared_uses[ula-mydata]"):
        assert test in passed, f"{test} did not pass:\n{out[-3000:]}"


def test_suite_of_the_page_runs_through_kswgd_run(plugin_env, tmp_path):
    from kswgd.engine.store import load_final

    (toml,) = blocks("toml")
    cmd = command("kswgd", "run")
    suite = cmd[cmd.index("--suite") + 1]
    (tmp_path / suite).write_text(toml)
    proc = run(cmd, tmp_path, plugin_env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for method in ("mysampler", "ula"):
        assert re.search(rf"^\| {method} \|.*\| 2/2 \|", proc.stdout, re.M), proc.stdout
    final = load_final(tmp_path / cmd[cmd.index("--out") + 1])
    final = final[~final["pilot"]]
    assert sorted(final["method"]) == ["mysampler", "mysampler", "ula", "ula"]
    assert (final["status"] == "ok").all()
    # The page's grad_evals_per_step: 0 for the fitted score, 1 per particle and step for ULA.
    for method, per_step in (("mysampler", 0), ("ula", 1)):
        rows = final[final["method"] == method]
        assert (rows["diag.grad_evals"] == per_step * rows["iteration"]).all(), rows
        assert (rows["iteration"] == 40).all()


def test_python_script_of_the_page_runs(plugin_env, tmp_path):
    scripts = [b for b in blocks("python") if not _FILE_LINE.match(b)]
    assert len(scripts) == 1
    (tmp_path / "script.py").write_text(scripts[0])
    proc = subprocess.run([sys.executable, "script.py"], cwd=tmp_path, env=plugin_env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("mean ")


_ANY_KIND = '''
from kswgd import Dataset, TrainingData


class AnyKind(Dataset):
    name = "anykind"
    description = "train accepts any kind"
    dim = 1

    def draw(self, n, rng):
        return rng.standard_normal((n, 1))

    def train(self, n, rng, kind=None):
        return TrainingData(self.draw(n, rng))

    initial = draw
'''

_BROKEN_SAMPLER = '''
from kswgd import Sampler


class NoRefusal(Sampler):
    name = "norefusal"
    description = "accepts any parameter"

    def __init__(self, **params):
        self.params = {"step": 0.1, **params}

    def step(self, x, rng):
        return x + 0.0
'''


def test_contract_failures_say_what_the_interface_requires_and_where_the_page_says_it(tmp_path):
    """Broken plug-ins fail the contract test with messages naming the missing requirement:
    a dataset whose ``train`` accepts any kind and a sampler that accepts an unknown parameter
    (the failures the page was written for)."""
    (tmp_path / "datasets").mkdir()
    (tmp_path / "baselines").mkdir()
    (tmp_path / "datasets" / "broken.py").write_text(_ANY_KIND)
    (tmp_path / "baselines" / "broken.py").write_text(_BROKEN_SAMPLER)
    env = {**os.environ, "KSWGD_PLUGIN_PATH": str(tmp_path)}
    select = ("test_dataset_draw_train_initial_shapes_kinds_and_seeds and anykind "
              "or test_sampler_parameters_round_trip_and_declarations and norefusal")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                           "tests/test_contract.py", "-k", select], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    out = proc.stdout
    assert proc.returncode == 1 and "2 failed" in out, out[-3000:]
    for needle in ("anykind.train(kind='bogus') must raise ConfigError naming the valid kinds",
                   "method norefusal: an unknown parameter must raise ConfigError"):
        assert needle in out and "docs/plugins.md" in out, f"{needle!r} not in\n{out[-3000:]}"
