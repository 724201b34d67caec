"""README.md's results table is generated from docs/results/benchmark.csv and chooses on validation only."""

from __future__ import annotations

import csv
import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "readme_results.py"
COLUMNS = (
    "protocol",
    "dataset",
    "model",
    "seed",
    "variant",
    "test_ndcg@20",
    "valid_ndcg@20",
    "fit_seconds",
    "peak_rss_mb",
    "capped",
)


def _module():
    spec = importlib.util.spec_from_file_location("readme_results", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write(path: Path, rows: list[tuple]) -> Path:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(COLUMNS)
        w.writerows(rows)
    return path


def test_the_readme_table_is_what_the_benchmark_csv_gives():
    done = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_check_fails_when_the_readme_differs(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n<!-- begin:results -->\n| stale |\n<!-- end:results -->\n")
    args = [sys.executable, str(SCRIPT), "--readme", str(readme)]
    assert subprocess.run(args + ["--check"], capture_output=True, check=False).returncode == 1
    assert subprocess.run(args, capture_output=True, check=False).returncode == 0
    assert "| stale |" not in readme.read_text() and readme.read_text().startswith("# x\n")
    assert subprocess.run(args + ["--check"], capture_output=True, check=False).returncode == 0


def test_each_seed_keeps_its_best_validation_point_and_the_filter_is_chosen_on_validation(tmp_path):
    m = _module()
    rows = m.read_rows(
        _write(
            tmp_path / "b.csv",
            [
                ("paper", "gowalla", "lightgode", 1, "a", 0.30, 0.10, 10, 100, "False"),  # best on test, worse on valid
                ("paper", "gowalla", "lightgode", 1, "b", 0.20, 0.11, 20, 200, "False"),
                ("paper", "gowalla", "lightgode", 2, "a", 0.10, "nan", 30, 300, "False"),
                ("paper", "gowalla", "lightgode", 2, "b", 0.12, 0.05, 40, 400, "False"),
                ("paper", "gowalla", "gf-cf", 1, "", 0.50, 0.01, 1, 1, "False"),  # better on test only
                ("paper", "gowalla", "bspm", 1, "", 0.40, 0.02, 1, 1, "False"),
                ("lightgcn-gowalla", "gowalla", "lightgcn", 1, "", 0.9, 0.9, 1, 1, "False"),  # another protocol
            ],
        )
    )
    assert [r["variant"] for r in m.chosen(rows, "gowalla", "lightgode")] == ["b", "b"]
    assert m.best_filter(rows, "gowalla") == "bspm"
    text = m.section(rows, "b.csv")
    assert "| Gowalla | LightGODE | 2 | 0.1600 ± 0.0566 | 30 | 300 |" in text
    assert "BSPM" in text and "GF-CF" not in text and "LightGCN" not in text


def test_the_readme_rows_agree_with_the_benchmark_page():
    """Each README row's seeds, test NDCG@20 and peak memory are those of the same row on the results page."""
    m = _module()
    page = (ROOT / "docs" / "results" / "benchmark.md").read_text().split("## LightGCN's fixed Gowalla split")[0]
    cells = {}
    for line in page.splitlines():
        parts = [p.strip() for p in line.strip("|").split("|")]
        if len(parts) == 11 and parts[0] in m.DATASETS:
            cells[(parts[0], parts[1])] = (parts[2], parts[4], parts[9])
    names = {v: k for k, v in m.DATASETS.items()}
    labels = {v: k for k, v in {**m.MODELS, **m.FILTERS}.items()}
    seen = 0
    for line in (ROOT / "README.md").read_text().splitlines():
        parts = [p.strip() for p in line.strip("|").split("|")]
        if len(parts) == 6 and parts[0] in names:
            model = labels[parts[1].split(" (")[0]]
            assert cells[(names[parts[0]], model)] == (parts[2], parts[3], parts[5]), line
            seen += 1
    assert seen == 12
