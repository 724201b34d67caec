"""Time for LightGODE to reach LightGCN's accuracy, against LightGCN's own time to it (paper protocol).

Usage: .venv/bin/python benchmarks/time_to_accuracy.py [--datasets amazon-beauty amazon-toys-games] [--seeds 3]
                                                       [--max-epochs 30] [--lightgcn-epochs 2] [--threads 1]

The issue's time target compares whole runs (each model trained to early stopping). This script asks the other
question behind "LightGCN-level accuracy at MF cost": how long until LightGODE's validation NDCG@20 (with the
ODE applied) first reaches the best validation NDCG@20 that the benchmark's LightGCN run of the same seed ever
reached (docs/results/benchmark.csv), and how long that LightGCN run took to get there (its best epoch). Both in this one
process, with the benchmark's settings and one thread: LightGODE is trained epoch by epoch until it reaches the
mark (at most ``--max-epochs``); LightGCN's seconds per epoch (training plus validation) are the median of a
short run, times its best epoch. Writes docs/results/time_to_accuracy.md. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
from pathlib import Path

import torch
from epoch_cost import short_run

from lightgode.atomic import write_text
from lightgode.bench import read_recorded

ROOT = Path(__file__).resolve().parents[1]


class Reached(Exception):
    """Raised from the epoch callback to stop training once the mark is reached."""


def lightgcn_marks(csv_path: Path, dataset: str) -> dict[int, tuple[float, int]]:
    """{seed: (best validation NDCG@20, best epoch)} of the benchmark's LightGCN runs on ``dataset``."""
    return {
        r["seed"]: (r["valid_ndcg@20"], r["best_epoch"])
        for r in read_recorded(csv_path)
        if (r["protocol"], r["dataset"], r["model"], r["variant"]) == ("paper", dataset, "lightgcn", "")
    }


def lightgode_until(dataset: str, seed: int, mark: float, max_epochs: int, threads: int) -> tuple[int | None, float]:
    """(first epoch whose validation NDCG@20 >= mark, or None; seconds of training and validation up to it)."""
    seen: list[dict] = []

    def check(row: dict) -> None:
        seen.append(row)
        if row["valid_ndcg@20"] >= mark:
            raise Reached

    try:
        short_run(dataset, "lightgode", max_epochs, threads, seed=seed, on_epoch=check)
    except Reached:
        pass
    seconds = sum(r["train_seconds"] + r.get("valid_seconds", 0.0) for r in seen)
    reached = seen[-1]["epoch"] if seen and seen[-1]["valid_ndcg@20"] >= mark else None
    return reached, seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=["amazon-beauty", "amazon-toys-games"])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--max-epochs", type=int, default=30)
    ap.add_argument("--lightgcn-epochs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--docs-dir", type=Path, default=ROOT / "docs" / "results")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for dataset in args.datasets:
        marks = lightgcn_marks(ROOT / "docs" / "results" / "benchmark.csv", dataset)
        gcn = short_run(dataset, "lightgcn", args.lightgcn_epochs, args.threads)
        gcn_epoch = statistics.median(r["train_seconds"] + r.get("valid_seconds", 0.0) for r in gcn)
        for seed in range(2020, 2020 + args.seeds):
            if seed not in marks:
                print(f"{dataset} seed {seed}: no LightGCN row in docs/results/benchmark.csv, skipped")
                continue
            mark, gcn_best = marks[seed]
            epoch, seconds = lightgode_until(dataset, seed, mark, args.max_epochs, args.threads)
            gcn_seconds = gcn_best * gcn_epoch
            reached = (
                f"{epoch} | {seconds:.0f} | {seconds / gcn_seconds:.3f} (1/{gcn_seconds / seconds:.0f})"
                if epoch
                else f"not in {args.max_epochs} | - | -"
            )
            rows.append(f"| {dataset} | {seed} | {mark:.4f} | {gcn_best} | {gcn_seconds:.0f} | {reached} |")
            print(rows[-1], flush=True)
    md = [
        "# Time to LightGCN's accuracy",
        "",
        f"Machine: {platform.machine()}, torch threads {args.threads}; date {datetime.date.today()}. Command: "
        f"`.venv/bin/python benchmarks/time_to_accuracy.py --datasets {' '.join(args.datasets)} --seeds "
        f"{args.seeds}`.",
        "",
        "The mark is the best validation NDCG@20 of the benchmark's LightGCN run of that seed (docs/results/benchmark.csv; "
        "paper protocol, early stopping). LightGCN's seconds to it are its best epoch times its seconds per epoch "
        f"(training and validation, median of {args.lightgcn_epochs} epochs measured in this process); "
        "LightGODE's are the seconds of its first epochs, trained here with the benchmark's settings, up to the "
        "first whose validation NDCG@20 (ODE applied) reaches the mark. Validation only: test plays no part.",
        "",
        "| dataset | seed | LightGCN's best valid NDCG@20 | its best epoch | LightGCN s to it | LightGODE epochs "
        "to it | LightGODE s to it | LightGODE / LightGCN |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
        "",
    ]
    out = args.docs_dir / "time_to_accuracy.md"
    write_text(out, "\n".join(md))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
