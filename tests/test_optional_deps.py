"""A command whose optional extra is missing says so in one line with the install command (exit 2)."""

from __future__ import annotations

import importlib.util

import pytest

from lightgode.cli import main
from lightgode.errors import MissingDependencyError, require


def hide(monkeypatch, *names: str) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a, **k: None if name in names else real(name, *a, **k)
    )


@pytest.mark.parametrize("missing", ["uvicorn", "fastapi"])
def test_serve_without_the_serving_extra_is_one_line(monkeypatch, tmp_path, capsys, missing):
    hide(monkeypatch, missing)
    assert main(["serve", str(tmp_path / "no-run-needed")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert f"'{missing}'" in err and "pip install 'lightgode[serve]'" in err


def test_an_approximate_index_without_faiss_is_one_line(monkeypatch, tmp_path, capsys):
    hide(monkeypatch, "faiss")
    assert main(["serve", str(tmp_path / "run"), "--index", "hnsw"]) == 2
    assert "pip install 'lightgode[serve]'" in capsys.readouterr().err


def test_require_passes_for_installed_modules_and_names_the_extra():
    require("json", "serve", "x")  # installed: no error
    with pytest.raises(MissingDependencyError, match=r"pip install 'lightgode\[serve\]'"):
        require("surely_not_a_module_xyz", "serve", "lightgode serve")


def test_search_without_optuna_is_one_line_naming_the_extra(monkeypatch, tmp_path, capsys):
    hide(monkeypatch, "optuna")
    assert main(["search", "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "'optuna'" in err and "pip install 'lightgode[search]'" in err
    assert main(["train", "--search", "5", "--out", str(tmp_path / "r")]) == 2
    assert "pip install 'lightgode[search]'" in capsys.readouterr().err
    assert not (tmp_path / "s").exists() and not (tmp_path / "r").exists()
