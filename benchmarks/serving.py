"""Serving: HTTP load, incremental updates, fold-in quality, approximate-index recall (docs/serving.md).

Usage: .venv/bin/python benchmarks/serving.py [--only PART ...] [--dry-run]

Runs each part in turn as its own process; each rewrites its own measured section of docs/serving.md, between
``<!-- begin:NAME -->`` and ``<!-- end:NAME -->`` (run one alone with ``--only``, or the script itself with its own
options); the command lines are those recorded in the sections. serve_load writes a Gowalla-sized model with
random weights to runs/serve/gowalla-random (reused by update_speed); foldin and index_recall start from the
paper-protocol runs runs/bench/amazon-beauty-2020 and runs/bench/gowalla-2020 (foldin trains its hidden-user model
under runs/foldin, reused when complete) and are skipped, with the command that makes those runs, when they are
missing. A failing part does not stop the others; the exit status is 1 if any failed or was skipped. Gowalla
must be under ../shared/datasets (or $LIGHTGODE_DATA); index_recall needs faiss. About half an hour on this
project's 2-core CPU machine.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _suite import Part, suite_main  # noqa: E402

SERVING = "docs/serving.md"
BEAUTY = "runs/bench/amazon-beauty-2020"
PAPER_RUNS = "bash benchmarks/studies/paper_protocol.sh amazon-beauty gowalla"
PARTS = [
    Part(
        "serve_load",
        ("benchmarks/serve_load.py", "--workers", "1", "2", "4", "--requests", "20000"),
        f"{SERVING}, section serve_load",
    ),
    Part("update_speed", ("benchmarks/update_speed.py",), f"{SERVING}, section update_speed"),
    Part(
        "foldin",
        ("benchmarks/foldin.py", "--full", BEAUTY),
        f"{SERVING}, section foldin",
        needs=(f"{BEAUTY}/COMPLETE",),
        made_by=PAPER_RUNS,
    ),
    Part(
        "foldin_proxy",
        ("benchmarks/foldin.py", "--full", BEAUTY, "--proxy"),
        f"{SERVING}, section foldin_proxy",
        needs=(f"{BEAUTY}/COMPLETE",),
        made_by=PAPER_RUNS,
    ),
    Part(
        "index_recall",
        ("benchmarks/index_recall.py", "--runs", BEAUTY, "runs/bench/gowalla-2020"),
        f"{SERVING}, section index_recall",
        needs=(f"{BEAUTY}/COMPLETE", "runs/bench/gowalla-2020/COMPLETE"),
        made_by=PAPER_RUNS,
    ),
]


def main(argv: list[str] | None = None) -> int:
    return suite_main(__doc__, PARTS, argv)


if __name__ == "__main__":
    sys.exit(main())
