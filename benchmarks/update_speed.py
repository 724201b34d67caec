"""Incremental updates on a Gowalla-sized graph: add 1, 1,000 and 100,000 edges and re-propagate.

    python benchmarks/update_speed.py [--run runs/serve/gowalla-random] [--doc docs/serving.md]

The model is the real Gowalla graph (29,858 users x 40,981 items, 810k edges after carving validation) with
random E0 (``benchmarks/serve_load.py`` writes it): update cost does not depend on trained values. New edges
join random existing users to random existing items (a few may already exist and are skipped); one more row
adds 1,000 edges from 100 new users. Each size is timed on a freshly loaded model (median of ``--repeat``):
``add_edges`` is the graph maths (degrees, Â rows, E(T) rows; local for one Euler step when cheaper),
``add_interactions`` adds the id maps and seen items. A full re-propagation is timed for reference.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from lightgode.serving.foldin import PropagatedGraph, add_edges
from lightgode.serving.recommender import Recommender

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from docs_section import replace_section  # noqa: E402
from serve_load import gowalla_random_run  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default="runs/serve/gowalla-random")
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 1000, 100000])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--doc", default="docs/serving.md")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    run = gowalla_random_run(Path(args.run))
    rec = Recommender.load(run)
    g = rec.graph
    rng = np.random.default_rng(0)
    load_avg = os.getloadavg()
    cases = [(f"{n:,} edge{'s' if n != 1 else ''}, existing users and items", n, 0) for n in args.sizes]
    cases.append(("1,000 edges from 100 new users", 1000, 100))
    rows = []
    for label, n, n_new in cases:
        t_graph, t_api, stats = [], [], None
        for _ in range(args.repeat):
            u = rng.integers(0, g.n_users, n)
            i = rng.integers(0, g.n_items, n)
            if n_new:
                u = g.n_users + rng.integers(0, n_new, n)
            t0 = time.perf_counter()
            _, stats = add_edges(g, u, i, g.n_users + n_new, g.n_items, init=rec.foldin.init)
            t_graph.append(time.perf_counter() - t0)
            fresh = Recommender.load(run)
            users = np.concatenate([fresh.vocab.user_ids, np.array([f"new{j}" for j in range(n_new)])])
            pairs = list(zip(users[u].tolist(), fresh.vocab.item_ids[i].tolist()))
            t0 = time.perf_counter()
            fresh.add_interactions(pairs)
            t_api.append(time.perf_counter() - t0)
        rows.append((label, stats, float(np.median(t_graph)), float(np.median(t_api))))
        print(label, stats, f"add_edges {rows[-1][2]:.4f} s, add_interactions {rows[-1][3]:.4f} s", flush=True)
    t_full = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        PropagatedGraph.build(g.R, g.E0, g.ode)  # degrees, Â and E(T) of every node
        t_full.append(time.perf_counter() - t0)
    full = float(np.median(t_full))
    print(f"full re-propagation (degrees, Â, E(T)): {full:.3f} s")
    lines = [
        f"Command: `python benchmarks/update_speed.py` (x86_64, 2 cores, {datetime.date.today()}, "
        f"torch threads {args.threads}; load average {load_avg[0]:.1f} at the start). Real Gowalla graph ({g.n_users:,} users x {g.n_items:,} items, {g.R.nnz:,} edges) with random "
        f"E0, T = {g.ode.t}, one Euler step; median of {args.repeat}.",
        "",
        "| update | new edges | rows of E(T) recomputed | mode | add_edges s | add_interactions s |",
        "|---|---|---|---|---|---|",
    ]
    for label, s, tg, ta in rows:
        lines.append(f"| {label} | {s.new_edges:,} | {s.recomputed_rows:,} | {s.mode} | {tg:.4f} | {ta:.4f} |")
    lines += ["", f"For reference, a full rebuild of degrees and Â and re-propagation of every row: {full:.3f} s."]
    replace_section(ROOT / args.doc, "update_speed", "\n".join(lines))


if __name__ == "__main__":
    main()
