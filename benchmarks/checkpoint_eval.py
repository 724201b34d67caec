"""Validation and test metrics of a run still training (or interrupted), from its last checkpoint.

Usage: .venv/bin/python benchmarks/checkpoint_eval.py RUN_DIR [--threads 1] [--append docs/FILE.md]

RUN_DIR is the ``--out`` of ``lightgode train`` (or a benchmark run directory); its settings and weights come
from ``RUN_DIR.ckpt``, as for ``lightgode evaluate RUN_DIR --checkpoint``. The weights are those of the
checkpoint's last epoch, not of a best epoch, so this is a learning-curve reading for runs that take many
sessions (LightGCN on Gowalla), not a selection: a run reads its test metrics once, when it completes.
``--append`` adds one table row to a markdown file.
"""

from __future__ import annotations

import argparse
import datetime
import platform
from pathlib import Path

import torch

from lightgode.pipeline import checkpoint_model, evaluate_model, resume_config

HEADER = ("| date | run | epoch | train loss | valid Recall@20 / NDCG@20 | test Recall@20 / NDCG@20 |\n"
          "|---|---|---|---|---|---|\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--append", type=Path, help="markdown file to add a row to (the table header is added when it has none)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = resume_config(args.run_dir)
    model, split, state = checkpoint_model(args.run_dir)
    metrics = evaluate_model(model, split)
    epoch, loss = state.epoch, state.history[-1]["loss"] if state.history else float("nan")

    def pair(part: str) -> str:
        m = metrics.get(part)
        return f"{m['recall@20']:.4f} / {m['ndcg@20']:.4f}" if m else "-"

    row = (f"| {datetime.date.today()} | {args.run_dir} | {epoch} | {loss:.5f} | {pair('valid')} | "
           f"{pair('test')} |")
    print(f"{cfg.model} on {cfg.data.data}, epoch {epoch} ({platform.machine()}, {args.threads} thread(s))")
    print(HEADER + row)
    if args.append:
        old = args.append.read_text() if args.append.is_file() else ""
        if HEADER.splitlines()[0] not in old:  # a new file, or one with only an introduction so far
            old = old + ("\n" if old and not old.endswith("\n") else "") + HEADER
        tmp = args.append.with_name(args.append.name + ".tmp")
        tmp.write_text(old + row + "\n")
        tmp.replace(args.append)


if __name__ == "__main__":
    main()
