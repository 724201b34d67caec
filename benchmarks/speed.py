"""Speed: command-line start-up, Gowalla's propagation and evaluation, training cost and profile, time to accuracy.

Usage: .venv/bin/python benchmarks/speed.py [--only PART ...] [--dry-run]

Runs each part in turn as its own process; each writes its own page under docs/results/ (run one alone with
``--only``, or the script itself with its own options). A failing part does not stop the others; the exit status
is 1 if any failed. Timings mean something only on an otherwise idle machine. Gowalla must be under
../shared/datasets (or $LIGHTGODE_DATA); epoch_cost and time_to_accuracy read the epoch counts and LightGCN's marks
from docs/results/benchmark.csv (benchmarks/quality.py). About 18 minutes on this project's 2-core CPU machine,
most of it training epochs.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _suite import Part, suite_main  # noqa: E402

PARTS = [
    Part("cli_start", ("benchmarks/cli_start.py", "--repeats", "5"), "docs/results/cli_start.md"),
    Part("gowalla_speed", ("benchmarks/gowalla_speed.py",), "docs/results/gowalla_speed.md"),
    Part("epoch_cost", ("benchmarks/epoch_cost.py", "--compare-dense"), "docs/results/epoch_cost.md"),
    Part("epoch_profile", ("benchmarks/epoch_profile.py",), "docs/results/epoch_profile.md"),
    Part("time_to_accuracy", ("benchmarks/time_to_accuracy.py", "--seeds", "3"), "docs/results/time_to_accuracy.md"),
]


def main(argv: list[str] | None = None) -> int:
    return suite_main(__doc__, PARTS, argv)


if __name__ == "__main__":
    sys.exit(main())
