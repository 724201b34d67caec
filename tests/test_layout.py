"""The package's shape: floors with imports only downward, a light command line, registries that match their names."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "lightgode"

# Each floor may import its own floor and the floors below it, never one above.
FLOORS = {
    "errors": 0,
    "atomic": 0,
    "locks": 0,
    "names": 0,
    "fieldtypes": 0,
    "data": 1,
    "core": 2,
    "models": 3,
    "parallel": 4,
    "runs": 5,
    "serving": 6,
    "bench": 7,
    "commands": 8,
    "cli": 8,
    "__main__": 8,
    "__init__": 8,
}


def floor_of(module: str) -> int:
    parts = module.split(".")
    assert parts[0] == "lightgode"
    return FLOORS[parts[1] if len(parts) > 1 else "__init__"]


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1] if len(parts) > 2 else [*parts[:-1], "__init__"]
    return ".".join(parts)


def imports_of(path: Path) -> list[str]:
    """Absolute lightgode modules imported anywhere in the file (function-level imports included)."""
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import (the package uses absolute imports)"
            if node.module and node.module.split(".")[0] == "lightgode":
                found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] == "lightgode"]
    return found


SOURCES = sorted(SRC.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_only_go_down(path: Path) -> None:
    mine = floor_of(module_name(path))
    up = [m for m in imports_of(path) if m != "lightgode" and floor_of(m) > mine]
    assert not up, f"{path.relative_to(SRC)} (floor {mine}) imports from a higher floor: {up}"


def test_every_module_has_a_floor() -> None:
    tops = {p.relative_to(SRC).parts[0].removesuffix(".py") for p in SOURCES}
    assert tops <= set(FLOORS), tops - set(FLOORS)


def test_serving_never_imports_the_training_workflow() -> None:
    for path in (SRC / "serving").rglob("*.py"):
        bad = [
            m
            for m in imports_of(path)
            if m.startswith(("lightgode.runs.workflow", "lightgode.core.train", "lightgode.runs.distributed"))
        ]
        assert not bad, f"{path.name} imports {bad}"


def test_help_loads_no_numerical_library() -> None:
    """``lightgode --help`` and every ``COMMAND --help`` build the parser without torch, scipy or pandas."""
    code = (
        "import sys; from lightgode.cli import build_parser; build_parser(); "
        "heavy = [m for m in ('torch', 'scipy', 'pandas', 'numpy', 'matplotlib') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"parsing imported {out.stdout.strip()}"


def test_name_lists_match_their_registries() -> None:
    from lightgode import names
    from lightgode.core import ode
    from lightgode.data.readers import FORMATS
    from lightgode.models import MODELS

    assert set(names.MODEL_NAMES) == set(MODELS)
    assert set(names.FORMATS) == set(FORMATS)
    assert set(names.BENCH_MODELS) <= set(MODELS)
    assert set(names.TRAINING_FREE) <= set(MODELS)
    assert ode.SOLVERS == names.SOLVERS
