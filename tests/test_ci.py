"""Under CI (env CI=true) a test that skips because the real datasets are absent fails; elsewhere it skips."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import on_ci

TESTS = Path(__file__).resolve().parent


def run_real_data_test(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["LIGHTGODE_DATA"] = str(tmp_path / "absent")
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            str(TESTS / "test_data_datasets.py") + "::test_real_files",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )


def test_missing_data_skips_outside_ci(tmp_path):
    res = run_real_data_test(tmp_path, None)
    assert res.returncode == 0, res.stdout[-2000:]
    assert "1 skipped" in res.stdout and "real datasets not present" in res.stdout


def test_missing_data_fails_under_ci(tmp_path):
    res = run_real_data_test(tmp_path, "true")
    assert res.returncode == 1, res.stdout[-2000:]
    assert "skipped" not in res.stdout and "real datasets not present" in res.stdout


@pytest.mark.parametrize(
    "value,ci",
    [
        ("true", True),
        ("TRUE", True),
        ("1", True),
        ("yes", True),
        ("false", False),
        ("", False),
        ("0", False),
        (None, False),
    ],
)
def test_what_counts_as_ci(monkeypatch, value, ci):
    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    assert on_ci() is ci
