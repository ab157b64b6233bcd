"""Build step for asv: list every ``kswgd`` subpackage in the checked-out commit's pyproject.

Commits from the package restructure (core/, engine/, reports/, tools/) up to the fix of
pyproject.toml list only ``kswgd``, ``kswgd.datasets`` and ``kswgd.baselines``: their wheel
lacks the subpackages and nothing imports. asv runs this in the commit's build folder (a
throwaway checkout) before ``pip wheel``; it adds each folder under ``kswgd/`` holding an
``__init__.py`` to ``[tool.setuptools] packages`` and leaves a complete list unchanged.

Only the ``__main__`` block acts: asv imports every module of the benchmark folder.
"""

import re
import tomllib
from pathlib import Path


def missing_packages(root: Path) -> list[str]:
    """Dotted names of the packages under ``root/kswgd`` absent from pyproject's list."""
    listed = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    found = sorted(".".join(p.parent.relative_to(root).parts)
                   for p in (root / "kswgd").rglob("__init__.py"))
    return [name for name in found if name not in listed]


def patch(root: Path) -> list[str]:
    """Append the missing packages to the ``packages = [...]`` line; return what was added."""
    extra = missing_packages(root)
    if extra:
        path = root / "pyproject.toml"
        text = path.read_text()
        line = re.compile(r"^(packages\s*=\s*\[)(.*?)(\])", re.M)
        new, count = line.subn(lambda m: m[1] + m[2] + "".join(f', "{e}"' for e in extra) + m[3],
                               text, count=1)
        if count != 1:
            raise SystemExit("pyproject.toml: no one-line 'packages = [...]' to extend")
        path.write_text(new)
    return extra


if __name__ == "__main__":
    added = patch(Path.cwd())
    print("wheel packages added:", ", ".join(added) if added else "none")
