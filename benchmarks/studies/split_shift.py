"""How a run's validation and test parts differ: items per user and how popular their items are in training.

Usage: .venv/bin/python benchmarks/studies/split_shift.py RUN_DIR [RUN_DIR ...]

Reads RUN_DIR/split/{train,valid,test}.csv (raw ids) and prints, per part: pairs, users, items per user, the mean
and median training degree of the part's items, and the share of its pairs on the 1% most popular training items.
NDCG@20 grows with the number of relevant items per user, faster for weak models than for strong ones, so a test
part with more items per user (or more popular ones) than validation lifts weaker and popularity-leaning models.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd


def shift_rows(split_dir: Path) -> list[str]:
    parts = {p: pd.read_csv(split_dir / f"{p}.csv", dtype=str) for p in ("train", "valid", "test")}
    degree = parts["train"].groupby("item").size()
    top = set(degree.sort_values(ascending=False).index[: max(1, len(degree) // 100)])
    rows = []
    for name, df in parts.items():
        if df.empty:
            continue
        d = degree.reindex(df["item"]).fillna(0).to_numpy()
        rows.append(
            f"| {name} | {len(df):,} | {df['user'].nunique():,} | {len(df) / df['user'].nunique():.2f} | "
            f"{d.mean():.1f} / {np.median(d):.0f} | {df['item'].isin(top).mean():.3f} |"
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", type=Path, nargs="+")
    for run in ap.parse_args().runs:
        print(
            f"\n{run}\n\n| part | pairs | users | items per user | training degree of its items (mean / median) "
            "| share on the top 1% of items |\n|---|---|---|---|---|---|"
        )
        print("\n".join(shift_rows(run / "split")))


if __name__ == "__main__":
    main()
