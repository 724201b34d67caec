"""LightGODE trained with RowAdam (``--optimizer adam``) and with torch's dense Adam, epoch by epoch.

Usage: .venv/bin/python benchmarks/studies/row_adam.py [--dataset amazon-toys-games] [--epochs 15]
       -> prints and writes docs/results/row_adam.md

Both runs use the benchmark's settings (paper protocol, seed 2020, one thread) on a dataset without weight decay
(with weight decay ``adam`` is torch's Adam and the comparison is moot), the same seed and batches. RowAdam gives
torch's Adam weights up to float rounding, so the validation NDCG@20 of every epoch should agree to about 1e-5;
the training seconds show what it saves.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
from epoch_cost import short_run  # noqa: E402  (benchmarks/epoch_cost.py, a part of the speed suite)

OPTIMIZERS = ("adam", "dense-adam")


def refuse_weight_decay(cfg) -> None:
    if cfg.train.weight_decay > 0:
        raise SystemExit(
            f"{cfg.data.data} trains with weight decay {cfg.train.weight_decay}: adam is torch's Adam there"
        )


def history(dataset: str, optimizer: str, epochs: int) -> list[dict]:
    return short_run(dataset, "lightgode", epochs, 1, {"optimizer": optimizer}, check=refuse_weight_decay)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="amazon-toys-games")
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "row_adam.md")
    args = ap.parse_args()
    runs = {opt: history(args.dataset, opt, args.epochs) for opt in OPTIMIZERS}
    diffs = [abs(a["valid_ndcg@20"] - b["valid_ndcg@20"]) for a, b in zip(*runs.values())]
    secs = {opt: sum(r["train_seconds"] for r in rows) for opt, rows in runs.items()}
    lines = [
        "# RowAdam against torch's dense Adam (LightGODE)",
        "",
        f"Machine: {platform.machine()}, torch threads 1; date {datetime.date.today().isoformat()}.",
        f"Command: `.venv/bin/python benchmarks/studies/row_adam.py --dataset {args.dataset} --epochs {args.epochs}`",
        "",
        f"{args.dataset}, seed 2020, the benchmark's LightGODE settings. Largest difference in validation NDCG@20 "
        f"over the {args.epochs} epochs: {max(diffs):.1e}. Training seconds (all epochs): RowAdam "
        f"{secs['adam']:.1f}, dense Adam {secs['dense-adam']:.1f} ({secs['adam'] / secs['dense-adam']:.2f}x).",
        "",
        "| epoch | valid NDCG@20, RowAdam | valid NDCG@20, dense Adam | train s, RowAdam | train s, dense Adam |",
        "|---|---|---|---|---|",
    ]
    for a, b in zip(runs["adam"], runs["dense-adam"]):
        lines.append(
            f"| {a['epoch']} | {a['valid_ndcg@20']:.5f} | {b['valid_ndcg@20']:.5f} | "
            f"{a['train_seconds']:.2f} | {b['train_seconds']:.2f} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(args.out)


if __name__ == "__main__":
    main()
