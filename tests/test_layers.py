"""The import graph runs one way: embedding at the bottom, the domain above it, api and
workers above that, the composition root on top. Read from the source with ast, so an
import hidden inside a function counts too."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROJECT = {"embedding", "catalogue", "training", "demo", "api", "workers", "vitrine",
           "testkit", "tests", "bench"}
# What each production package may import of the project (itself included).
ALLOWED = {
    "embedding": {"embedding"},
    "catalogue": {"catalogue", "embedding"},
    "training": {"training", "catalogue", "embedding"},
    "demo": {"demo", "catalogue"},
    "api": {"api", "catalogue", "embedding"},
    "workers": {"workers", "catalogue", "embedding"},
    "vitrine": {"vitrine", "api", "workers", "catalogue", "training", "demo", "embedding"},
}


def imports_of(path: Path) -> set[str]:
    """Top-level project packages that a module imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found |= {n.split(".")[0] for n in names} & PROJECT
    return found


def violations() -> list[str]:
    wrong = []
    for package, allowed in ALLOWED.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            for imported in sorted(imports_of(path) - allowed):
                wrong.append(f"{path.relative_to(ROOT)} imports {imported}")
    return wrong


def test_imports_run_down_the_layers():
    assert violations() == []


def test_the_check_sees_an_upward_import(tmp_path):
    """The checker itself: an import inside a function is found."""
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from api.main import create_app\n    import demo.generator\n")
    assert imports_of(module) == {"api", "demo"}


def test_the_local_profile_never_loads_celery():
    code = ("import sys, vitrine.wiring, vitrine.cli, api.main, catalogue.runner; "
            "loaded = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('celery', 'kombu', 'workers')); print(loaded); assert not loaded")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True)
    assert run.returncode == 0, run.stdout + run.stderr
