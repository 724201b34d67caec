"""Quality side by side: every model on the paper's datasets, the page docs/results/benchmark.md, README's table.

Usage: .venv/bin/python benchmarks/quality.py [--quick] [--skip-long] [--only PART ...] [--dry-run]

Runs in turn the ``lightgode benchmark`` invocations that made docs/results/benchmark.md (listed at its end:
Amazon-Beauty and Amazon-Toys with the learning-rate grid, Gowalla with gamma 5 in the grid, LightGCN's Gowalla
split with refits), then ``lightgode benchmark --report-only`` (the page, benchmark.csv and the plots) and
benchmarks/readme_results.py (README's results table from the same CSV). Resumable as ``lightgode benchmark``
is: complete runs are skipped, interrupted ones continue from their checkpoints, and a run recorded in
docs/results/benchmark.csv with the benchmark's settings counts as complete; after an interruption, run the same
command again. A failing step stops the suite. The runs go to runs/benchmark/.

Cost on this project's 2-core CPU machine (fit seconds in docs/results/benchmark.csv, one core per run): about 24
core-hours without the two LightGCN-on-Gowalla steps, which add 2 to 3 core-days (``--skip-long`` leaves them
out; benchmarks/long_runs/device_long_runs.sh trains them on a GPU).

``--quick`` checks the machinery in minutes: every model but BSPM on the bundled Amazon-Beauty, one seed, 3 epochs
and rank 8 (``lightgode benchmark --quick``), with the runs, the report and README's table under
runs/benchmark-quick/; docs/ and README.md are not touched. BSPM is left out because its item-item sharpening
does not shrink with --quick (9 of the 13 minutes that all models took on 2026-12-04).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _suite import ROOT, Part, add_arguments, run_parts  # noqa: E402

BENCH = ("-m", "lightgode", "benchmark")
PAGE = "docs/results/benchmark.md (runs under runs/benchmark/)"
QUICK = "runs/benchmark-quick"
QUICK_MODELS = ("pop", "mf-bpr", "directau", "lightgcn", "mf-conv", "lightgode", "gf-cf")


def full_parts(skip_long: bool) -> list[Part]:
    """The recorded invocations, then the report and README's table."""
    paper = ("--seeds", "3", "--max-train-minutes", "0")
    split = ("--protocol", "lightgcn-gowalla", "--datasets", "gowalla", "--seeds", "1")
    parts = [
        Part("beauty-toys", (*BENCH, "--datasets", "amazon-beauty", "amazon-toys-games", *paper), PAGE),
        Part(
            "beauty-toys-lr",
            (
                *BENCH,
                "--datasets",
                "amazon-beauty",
                "amazon-toys-games",
                "--models",
                "mf-bpr",
                "directau",
                "lightgcn",
                "mf-conv",
                "lightgode",
                *paper,
                "--grid",
                "lr=2e-3",
            ),
            PAGE,
        ),
        Part(
            "gowalla",
            (
                *BENCH,
                "--datasets",
                "gowalla",
                "--models",
                "pop",
                "gf-cf",
                "lightgode",
                "bspm",
                *paper,
                "--grid",
                "gamma=5",
            ),
            PAGE,
        ),
        Part(
            "gowalla-mf",
            (*BENCH, "--datasets", "gowalla", "--models", "mf-bpr", "mf-conv", "directau", *paper, "--grid", "gamma=5"),
            PAGE,
        ),
        Part("split", (*BENCH, *split, "--models", "lightgode", "gf-cf", "bspm", "--refit"), PAGE),
        Part("split-gamma5", (*BENCH, *split, "--models", "lightgode", "--grid", "gamma=5", "--refit"), PAGE),
        Part("split-pop", (*BENCH, *split, "--models", "pop", "--refit"), PAGE),
    ]
    if not skip_long:
        parts += [
            Part("gowalla-lightgcn", (*BENCH, "--datasets", "gowalla", "--models", "lightgcn", *paper), PAGE),
            Part("split-lightgcn", (*BENCH, *split, "--models", "lightgcn", "--max-train-minutes", "0"), PAGE),
        ]
    return parts + [
        Part("report", (*BENCH, "--report-only"), "docs/results/benchmark.md, benchmark.csv, benchmark_*.png"),
        Part("readme", ("benchmarks/readme_results.py",), "README.md, between <!-- begin:results --> markers"),
    ]


def quick_parts() -> list[Part]:
    docs = f"{QUICK}/docs"
    return [
        Part(
            "quick",
            (
                *BENCH,
                "--quick",
                "--datasets",
                "amazon-beauty",
                "--models",
                *QUICK_MODELS,
                "--seeds",
                "1",
                "--out-dir",
                QUICK,
                "--docs-dir",
                docs,
            ),
            f"{docs}/benchmark.md",
        ),
        Part(
            "readme",
            ("benchmarks/readme_results.py", "--csv", f"{docs}/benchmark.csv", "--readme", f"{docs}/README_results.md"),
            f"{docs}/README_results.md",
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[2:]),
    )
    ap.add_argument(
        "--quick", action="store_true", help=f"minutes on the bundled Beauty, without BSPM; output under {QUICK}/"
    )
    ap.add_argument("--skip-long", action="store_true", help="leave out the LightGCN runs on Gowalla (core-days)")
    names = {p.name for p in full_parts(False) + quick_parts()}
    add_arguments(ap, [Part(n, (), "") for n in sorted(names)])
    args = ap.parse_args(argv)
    parts = quick_parts() if args.quick else full_parts(args.skip_long)
    return run_parts(parts, only=args.only, dry_run=args.dry_run, keep_going=False, root=ROOT)


if __name__ == "__main__":
    sys.exit(main())
