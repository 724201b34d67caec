"""Recall@20 of the approximate faiss indexes (HNSW, IVF) against exact search, with their build and query times.

    python benchmarks/index_recall.py [--runs runs/bench/amazon-beauty-2020 runs/bench/gowalla-2020]

Queries are the E(T) of ``--queries`` random users of each run, their seen items excluded, k = 20; the exact
answer is the flat inner-product search. Both default runs are trained paper-protocol models
(``bash benchmarks/studies/paper_protocol.sh amazon-beauty gowalla``): Beauty 12,101 items, Gowalla 40,981.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
from pathlib import Path

import faiss
import numpy as np
import torch

from lightgode.serving.index import IndexConfig, ItemIndex, recall_at_k
from lightgode.serving.recommender import Recommender

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from docs_section import replace_section  # noqa: E402

VARIANTS = [
    ("flat", {}),
    ("hnsw", {"ef_search": 64}),
    ("hnsw", {"ef_search": 128}),
    ("hnsw", {"ef_search": 256}),
    ("ivf", {"nprobe": 8}),
    ("ivf", {"nprobe": 32}),
    ("ivf", {"nprobe": 64}),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", nargs="+", default=["runs/bench/amazon-beauty-2020", "runs/bench/gowalla-2020"])
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--doc", default="docs/serving.md")
    args = ap.parse_args()
    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    load_avg = os.getloadavg()
    lines = [
        f"Command: `python benchmarks/index_recall.py --runs {' '.join(args.runs)}` (x86_64, 2 cores, "
        f"{datetime.date.today()}, one thread; load average {load_avg[0]:.1f} at the start; times "
        f"are pessimistic when it is above 1). {args.queries} random users per run, seen items "
        f"excluded, k = 20.",
        "",
        "| run | items | index | settings | recall@20 vs exact | build s | ms / query |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in args.runs:
        if not Path(run).is_dir():
            print(f"skipping {run}: not found")
            continue
        rec = Recommender.load(run)
        rng = np.random.default_rng(0)
        users = rng.choice(rec.n_users, min(args.queries, rec.n_users), replace=False)
        Q = rec.user_embeddings[torch.from_numpy(users)].numpy()
        seen = rec.seen[users]
        exact = None
        built: dict[str, tuple[ItemIndex, float]] = {}
        for kind, opts in VARIANTS:
            if kind not in built:
                t0 = time.perf_counter()
                built[kind] = (ItemIndex(rec.item_embeddings.numpy(), IndexConfig(kind=kind)), time.perf_counter() - t0)
            index, build_s = built[kind]
            index.set_search(**opts)
            t0 = time.perf_counter()
            got = np.vstack([index.search(Q[j : j + 1], 20, seen[j])[0] for j in range(len(Q))])
            ms = 1000 * (time.perf_counter() - t0) / len(Q)
            if kind == "flat":
                exact = got
            r = recall_at_k(got, exact)
            settings = ", ".join(f"{k}={v}" for k, v in opts.items()) or "-"
            if kind == "hnsw":
                settings = f"M={index.config.hnsw_m}, efConstruction={index.config.ef_construction}, " + settings
            if kind == "ivf":
                settings = f"nlist={index.nlist}, " + settings
            print(run, kind, settings, f"recall {r:.4f} build {build_s:.2f}s {ms:.3f} ms/query", flush=True)
            lines.append(
                f"| {Path(run).name} | {rec.n_items:,} | {kind} | {settings} | {r:.4f} | {build_s:.2f} | {ms:.3f} |"
            )
    replace_section(ROOT / args.doc, "index_recall", "\n".join(lines))


if __name__ == "__main__":
    main()
