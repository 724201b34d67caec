"""benchmarks/: the suites list their parts, every script is accounted for, and no document names a missing one."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
SUITES = ("quality", "speed", "serving")
ELSEWHERE = {"benchmarks/LightGCN/LightGCN_TF_gowalla_x0.md"}  # a file of Open-CF-Benchmark, cited as a source


def _suite_module():
    spec = importlib.util.spec_from_file_location("benchmarks_suite", BENCH / "_suite.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _dry_run(*args: str) -> list[str]:
    done = subprocess.run([sys.executable, *args, "--dry-run"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return [line for line in done.stdout.splitlines() if line.startswith("== ")]


@pytest.mark.parametrize("suite", SUITES)
def test_every_part_of_a_suite_is_a_script_that_exists(suite):
    lines = _dry_run(f"benchmarks/{suite}.py")
    assert lines
    for line in lines:
        command = line.split(": python ", 1)[1].split("  ->  ")[0].split()
        if command[0] != "-m":
            assert (ROOT / command[0]).is_file(), line


def test_quality_replays_the_benchmark_then_rewrites_the_page_and_the_readme():
    commands = [line.split(": python ", 1)[1].split("  ->  ")[0] for line in _dry_run("benchmarks/quality.py")]
    assert all(c.startswith("-m lightgode benchmark --") for c in commands[:-2])
    assert commands[-2:] == ["-m lightgode benchmark --report-only", "benchmarks/readme_results.py"]
    short = _dry_run("benchmarks/quality.py", "--skip-long")
    assert len(short) == len(commands) - 2 and not any("--models lightgcn " in line for line in short)


def test_quick_quality_writes_nothing_under_docs_or_the_readme():
    lines = _dry_run("benchmarks/quality.py", "--quick")
    assert any("--quick" in line for line in lines)
    for line in lines:
        assert "docs/results" not in line and not line.endswith("README.md"), line
        assert "runs/benchmark-quick" in line, line


def test_a_part_whose_inputs_are_missing_is_skipped_and_the_suite_fails(tmp_path, capsys):
    s = _suite_module()
    (tmp_path / "made").write_text("")
    parts = [
        s.Part("missing", ("-c", "open('ran-missing', 'w')"), "p", needs=("absent",), made_by="make absent"),
        s.Part("present", ("-c", "open('ran-present', 'w')"), "p", needs=("made",)),
    ]
    assert s.run_parts(parts, root=tmp_path) == 1
    assert not (tmp_path / "ran-missing").exists() and (tmp_path / "ran-present").exists()
    assert "make absent" in capsys.readouterr().out


def test_a_failing_part_stops_the_suite_unless_it_keeps_going(tmp_path):
    s = _suite_module()
    parts = [s.Part("fails", ("-c", "raise SystemExit(3)"), "p"), s.Part("after", ("-c", "open('ran', 'w')"), "p")]
    assert s.run_parts(parts, keep_going=False, root=tmp_path) == 1
    assert not (tmp_path / "ran").exists()
    assert s.run_parts(parts, keep_going=True, root=tmp_path) == 1
    assert (tmp_path / "ran").exists()
    assert s.run_parts(parts[1:], only=["after"], root=tmp_path) == 0


def test_every_benchmark_script_is_listed_in_the_benchmarks_readme():
    readme = (BENCH / "README.md").read_text()
    scripts = [p for p in BENCH.rglob("*") if p.suffix in (".py", ".sh")]
    assert scripts
    missing = [
        str(p.relative_to(BENCH))
        for p in scripts
        if f"`{p.name}`" not in readme and f"benchmarks/{p.relative_to(BENCH).as_posix()}" not in readme
    ]
    assert not missing, f"not in benchmarks/README.md: {missing}"


def test_every_benchmarks_path_named_in_the_docs_exists():
    docs = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", BENCH / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    named = re.compile(r"(?<![\w/.-])(?:\.\./)?(benchmarks/[\w./-]*[\w/])")
    missing = []
    for doc in docs:
        for path in named.findall(doc.read_text(encoding="utf-8")):
            if path not in ELSEWHERE and not (ROOT / path).exists():
                missing.append(f"{doc.relative_to(ROOT)}: {path}")
    assert not missing, missing
