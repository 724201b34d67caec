"""Validation and test metrics of a run still training (or interrupted), from its last checkpoint.

Usage: .venv/bin/python benchmarks/long_runs/checkpoint_eval.py RUN_DIR [--threads 1] [--every N]
                                                  [--append benchmarks/long_runs/logs/FILE.md]

RUN_DIR is the ``--out`` of ``lightgode train`` (or a benchmark run directory); its settings and weights come
from ``RUN_DIR.ckpt``, as for ``lightgode evaluate RUN_DIR --checkpoint``. The weights are those of the
checkpoint's last epoch, not of a best epoch, so this is a learning-curve reading for runs that take many
sessions (LightGCN on Gowalla), not a selection: a run reads its test metrics once, when it completes.
``--append`` adds one table row to a markdown file; ``--every N`` keeps watching the run and adds a row each time
its checkpoint reaches a multiple of N epochs.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import time
from pathlib import Path

import torch

from lightgode.atomic import write_text
from lightgode.core.checkpoint import Checkpoint
from lightgode.errors import RunDirError
from lightgode.runs.store import MARKER
from lightgode.runs.workflow import checkpoint_dir, checkpoint_model, evaluate_model, resume_config

HEADER = (
    "| date | run | epoch | train loss | valid Recall@20 / NDCG@20 | test Recall@20 / NDCG@20 |\n"
    "|---|---|---|---|---|---|\n"
)


def reading(run_dir: Path, threads: int) -> tuple[int, str]:
    """(epoch, table row) of the run's last saved epoch, on validation and on test."""
    cfg = resume_config(run_dir)
    model, split, state = checkpoint_model(run_dir)
    metrics = evaluate_model(model, split)
    epoch, loss = state.epoch, state.history[-1]["loss"] if state.history else float("nan")

    def pair(part: str) -> str:
        m = metrics.get(part)
        return f"{m['recall@20']:.4f} / {m['ndcg@20']:.4f}" if m else "-"

    print(f"{cfg.model} on {cfg.data.data}, epoch {epoch} ({platform.machine()}, {threads} thread(s))", flush=True)
    return epoch, (f"| {datetime.date.today()} | {run_dir} | {epoch} | {loss:.5f} | {pair('valid')} | {pair('test')} |")


def append(path: Path, row: str) -> None:
    old = path.read_text() if path.is_file() else ""
    if HEADER.splitlines()[0] not in old:  # a new file, or one with only an introduction so far
        old = old + ("\n" if old and not old.endswith("\n") else "") + HEADER
    write_text(path, old + row + "\n")


def saved_epoch(run_dir: Path) -> int | None:
    """The last epoch in the run's checkpoint, None when it has none (yet, or any more: the run completed)."""
    ckpt = Checkpoint(checkpoint_dir(run_dir) / "state.safetensors")
    try:
        return int(ckpt.metadata()["epoch"]) if ckpt.exists() else None
    except RunDirError:  # being replaced at this moment
        return None


def watch(run_dir: Path, every: int, threads: int, out: Path | None, poll: float = 5.0) -> None:
    """Read the run each time its checkpoint reaches a multiple of ``every`` epochs, until the run completes."""
    done: set[int] = set()
    while not (run_dir / MARKER).is_file():
        epoch = saved_epoch(run_dir)
        if epoch is not None and epoch % every == 0 and epoch not in done:
            try:
                got, row = reading(run_dir, threads)
            except RunDirError:  # the run completed (its checkpoint removed) while being read, or a file moved
                time.sleep(poll)
                continue
            done.add(got)
            if got % every == 0:  # the run may have saved a later epoch between the two reads
                print(row, flush=True)
                if out:
                    append(out, row)
        time.sleep(poll)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--append", type=Path, help="markdown file to add a row to (the table header is added when it has none)"
    )
    ap.add_argument(
        "--every",
        type=int,
        metavar="N",
        help="keep watching: a row each time the checkpoint reaches a multiple of N epochs, until the "
        "run completes (LightGCN's code tests every 20 epochs; docs/results/lightgcn_reference_curve.md)",
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.every:
        if args.every < 1:
            ap.error(f"--every must be >= 1, got {args.every}")
        watch(args.run_dir, args.every, args.threads, args.append)
        return
    _, row = reading(args.run_dir, args.threads)
    print(HEADER + row)
    if args.append:
        append(args.append, row)


if __name__ == "__main__":
    main()
