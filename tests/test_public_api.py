"""The public API: ``lightgode.__all__`` is short, every name in it resolves and is documented, and importing the
package alone loads no numerical library."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

import lightgode

PUBLIC = list(lightgode.__all__)


def test_all_is_short_and_listed_by_dir() -> None:
    assert 10 <= len(PUBLIC) <= 20
    assert len(set(PUBLIC)) == len(PUBLIC)
    assert set(PUBLIC) <= set(dir(lightgode))
    assert set(lightgode._LAZY) <= set(PUBLIC)


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_name_resolves(name: str) -> None:
    value = getattr(lightgode, name)
    assert value is not None
    if name != "__version__":
        assert getattr(value, "__name__", name) == name, f"lightgode.{name} is {value!r}"
        assert inspect.getdoc(value), f"lightgode.{name} has no docstring"


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        lightgode.not_a_name  # noqa: B018


def test_lazy_names_are_the_library_objects() -> None:
    from lightgode.models.lightgode import LightGODE
    from lightgode.runs.workflow import train_run
    from lightgode.serving.recommender import Recommender

    assert lightgode.LightGODE is LightGODE
    assert lightgode.Recommender is Recommender
    assert lightgode.train_run is train_run


def test_import_alone_loads_no_numerical_library() -> None:
    code = (
        "import sys, lightgode; names = dir(lightgode); "
        "heavy = [m for m in ('torch', 'scipy', 'pandas', 'numpy', 'matplotlib') if m in sys.modules]; "
        "print(','.join(heavy)); print(len(names))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    heavy, n_names = out.stdout.split("\n")[:2]
    assert heavy == "", f"import lightgode loaded {heavy}"
    assert int(n_names) >= len(PUBLIC)


def test_public_callables_document_their_parameters() -> None:
    """Numpydoc sections on the public functions and on the public methods of the public classes."""
    missing = []
    for name in PUBLIC:
        obj = getattr(lightgode, name)
        if inspect.isfunction(obj):
            targets = [(name, obj)]
        elif inspect.isclass(obj) and not issubclass(obj, Exception):
            targets = [
                (f"{name}.{m}", f)
                for m, f in vars(obj).items()
                if not m.startswith("_") and (inspect.isfunction(f) or isinstance(f, classmethod))
            ]
        else:
            continue
        for label, f in targets:
            f = f.__func__ if isinstance(f, classmethod) else f
            params = [p for p in inspect.signature(f).parameters if p not in ("self", "cls")]
            doc = inspect.getdoc(f) or ""
            if params and "Parameters\n----------" not in doc:
                missing.append(f"{label}: Parameters")
            if "Returns\n-------" not in doc and "Yields\n------" not in doc:
                missing.append(f"{label}: Returns")
    assert not missing, missing


def test_benchmarks_use_only_public_names() -> None:
    """No benchmark script imports a private name of lightgode or reaches into a private attribute."""
    import ast
    from pathlib import Path

    found = []
    for path in sorted((Path(__file__).resolve().parents[1] / "benchmarks").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("lightgode"):
                found += [
                    f"{path.name}:{node.lineno} {node.module}.{a.name}"
                    for a in node.names
                    if a.name.startswith("_") or any(p.startswith("_") for p in node.module.split("."))
                ]
            elif isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                if not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                    found.append(f"{path.name}:{node.lineno} {ast.unparse(node)}")
    assert not found, found
