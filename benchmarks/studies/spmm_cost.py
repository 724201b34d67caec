"""Milliseconds of one full product Â E on LightGCN's Gowalla training graph (E: all nodes x 64), one thread.

Usage: .venv/bin/python benchmarks/studies/spmm_cost.py [--repeats 10]
Times torch's sparse CSR product (what LightGCN's step uses for its full layers), scipy's CSR product on the same
matrix, and torch's after a reverse Cuthill-McKee reordering of the nodes; writes docs/results/spmm_cost.md. It bounds
what any exact CPU LightGCN step can cost: about 2 + 2f such products per step (f: the share of Â that the
batch's neighbourhood reaches), so the fastest product sets a floor on a Gowalla epoch.
"""

from __future__ import annotations

import argparse
import platform
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch
from scipy.sparse.csgraph import reverse_cuthill_mckee

from lightgode.core.graph import normalized_adjacency, to_torch
from lightgode.data.datasets import load_dataset


def interleaved_ms(fns: dict, repeats: int) -> dict[str, tuple[float, float]]:
    """(best, median) ms of each function, timed in alternation so that all share the machine's load."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for f in fns.values():
        f()  # warm-up
    for _ in range(repeats):
        for name, f in fns.items():
            t = time.perf_counter()
            f()
            times[name].append(1000 * (time.perf_counter() - t))
    return {name: (min(v), float(np.median(v))) for name, v in times.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--out", default="docs/results/spmm_cost.md")
    args = p.parse_args()
    torch.set_num_threads(1)
    train, _ = load_dataset("gowalla", given_split=True)
    A = normalized_adjacency(train.n_users, train.n_items, train.users, train.items)
    E = torch.randn(A.shape[0], 64, generator=torch.Generator().manual_seed(0))
    At, En = to_torch(A), E.numpy()
    perm = reverse_cuthill_mckee(A, symmetric_mode=True)
    Ap = A[perm][:, perm].tocsr()
    Ap.sort_indices()
    Apt, Ep = to_torch(Ap), E[torch.from_numpy(perm.astype(np.int64))].contiguous()
    rows = interleaved_ms(
        {
            "torch sparse CSR": lambda: At @ E,
            "scipy CSR": lambda: A @ En,
            "torch sparse CSR, RCM-reordered nodes": lambda: Apt @ Ep,
        },
        args.repeats,
    )
    lines = [
        "# One full graph product on Gowalla (CPU)",
        "",
        f"Machine: {platform.machine()} ({platform.processor() or 'cpu'}), 1 thread; date {date.today()}.",
        "Command: `.venv/bin/python benchmarks/studies/spmm_cost.py`. Â of LightGCN's Gowalla training file: "
        f"{A.shape[0]:,} nodes, {A.nnz:,} non-zeros; E: {A.shape[0]:,} x 64 float32; {args.repeats} rounds, "
        "the three products timed in turn in each round.",
        "",
        "| product | best ms | median ms |",
        "|---|---|---|",
    ]
    lines += [f"| {name} | {best:.1f} | {median:.1f} |" for name, (best, median) in rows.items()]
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
