"""Seconds of one training step (gradient + Adam) of LightGCN and of LightGODE's DirectAU on a named dataset.

Usage: .venv/bin/python benchmarks/step_cost.py [--dataset gowalla] [--protocol lightgcn-gowalla] [--steps 30]
Prints ms per step and the implied seconds per epoch (steps of the benchmark's batch size over the training
pairs), with the benchmark's settings and one torch thread. For datasets where a full LightGCN run is too long
to make here (Gowalla), this is what the cost estimate in docs/benchmark_notes.md rests on.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from lightgode.benchmark import BenchmarkConfig, run_config
from lightgode.models import build_model
from lightgode.pipeline import prepare_split


def step_seconds(protocol: str, dataset: str, model: str, steps: int) -> tuple[float, int, int]:
    """(seconds per step, batch size, training pairs) with the benchmark's settings for ``model``."""
    cfg = run_config(BenchmarkConfig(datasets=(dataset,), protocol=protocol), dataset, model, 2020)
    train = prepare_split(cfg.data, cfg.seed).train
    est = build_model(cfg)
    if model == "lightgcn":
        est.n_users_ = train.n_users
        est._prepare_graph(train)
        module = est._module(train)
    else:
        from lightgode.models.mf import DirectAUMF
        module = DirectAUMF(train.n_users, train.n_items, cfg.train.dim, cfg.train.gamma,
                            generator=torch.Generator().manual_seed(cfg.seed))
    opt = torch.optim.Adam(list(module.parameters()), lr=cfg.train.lr, fused=True)
    users, items = (torch.from_numpy(a.astype(np.int64)) for a in (train.users, train.items))
    perm, bs = torch.randperm(len(users)), cfg.train.batch_size
    t0 = time.perf_counter()
    for s in range(0, bs * steps, bs):
        idx = perm[s:s + bs]
        module.compute_grads(users[idx], items[idx])
        opt.step()
    return (time.perf_counter() - t0) / steps, bs, len(users)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="gowalla")
    ap.add_argument("--protocol", default="lightgcn-gowalla")
    ap.add_argument("--steps", type=int, default=30)
    args = ap.parse_args()
    torch.set_num_threads(1)
    for model in ("lightgcn", "lightgode"):
        sec, bs, n = step_seconds(args.protocol, args.dataset, model, args.steps)
        batches = -(-n // bs)
        print(f"{args.dataset} ({args.protocol}) {model}: batch {bs}, {1000 * sec:.1f} ms per step, "
              f"{batches} steps per epoch -> {sec * batches:.0f} s per epoch ({n} training pairs)", flush=True)


if __name__ == "__main__":
    main()
