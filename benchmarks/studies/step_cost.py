"""Seconds of one training step (gradient + Adam) of LightGCN and of LightGODE's DirectAU on a named dataset.

Usage: .venv/bin/python benchmarks/studies/step_cost.py [--dataset gowalla] [--protocol lightgcn-gowalla] [--steps 30]
Prints ms per step and the implied seconds per epoch (steps of the benchmark's batch size over the training
pairs), with the benchmark's settings and one torch thread. For datasets where a full LightGCN run is too long
to make here (Gowalla), this is what the cost estimate in docs/results/benchmark_notes.md rests on.

``--compare-full`` also times LightGCN's gradient computed with every propagation in full (2L sparse products
over all of Â, as before the batch-row restriction of ``LightGCNModule.compute_grads``), alternating with the
library's step in one process, after checking on one batch that both give the same gradient.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace

import numpy as np
import torch

from lightgode.bench import BenchmarkConfig, run_config
from lightgode.models import build_model
from lightgode.runs.workflow import prepare_split


def training_module(protocol: str, dataset: str, model: str):
    """(run config, training interactions, trainable module) of ``model`` with the benchmark's settings, seed 2020."""
    cfg = run_config(BenchmarkConfig(datasets=(dataset,), protocol=protocol), dataset, model, 2020)
    train = prepare_split(cfg.data, cfg.seed).train
    if model == "lightgcn":
        est = build_model(cfg)
        est.n_users_ = train.n_users
        est.prepare_graph(train)
        return cfg, train, est.training_module(train)
    from lightgode.models.mf import DirectAUMF

    return (
        cfg,
        train,
        DirectAUMF(
            train.n_users,
            train.n_items,
            cfg.train.dim,
            cfg.train.gamma,
            generator=torch.Generator().manual_seed(cfg.seed),
        ),
    )


def full_propagation_grads(module, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
    """LightGCN's BPR gradient w.r.t. E0 with L full products forward and L full products back (no restriction)."""
    from lightgode.models.lightgcn import layer_mean

    neg = module.sampler.sample(users, module.generator)
    nu, L, A = module.n_users, module.layers, module.A_hat
    with torch.no_grad():
        E0 = torch.cat([module.user, module.item], dim=0)
        E = layer_mean(A, E0, L)
        pi, ni = nu + items, nu + neg
        u, p, n = E[users], E[pi], E[ni]
        c = (-torch.sigmoid(-(u * (p - n)).sum(1)) / len(users))[:, None]
        G = torch.zeros_like(E0)
        G.index_add_(0, users, c * (p - n))
        G.index_add_(0, pi, c * u)
        G.index_add_(0, ni, -c * u)
        acc = G
        for _ in range(L):
            acc = A @ acc + G
        grad = acc / (L + 1)
        k = module.reg / len(users)
        grad.index_add_(0, users, k * E0[users])
        grad.index_add_(0, pi, k * E0[pi])
        grad.index_add_(0, ni, k * E0[ni])
    return grad


def compare_full(protocol: str, dataset: str, steps: int, repeats: int = 3) -> tuple[float, float]:
    """Median seconds per LightGCN gradient: (library step, full propagation), alternating in one process."""
    cfg, train, module = training_module(protocol, dataset, "lightgcn")
    users, items = (torch.from_numpy(a.astype(np.int64)) for a in (train.users, train.items))
    perm, bs = torch.randperm(len(users)), cfg.train.batch_size
    state = module.generator.get_state()
    module.compute_grads(users[perm[:bs]], items[perm[:bs]])
    module.generator.set_state(state)
    ref = full_propagation_grads(module, users[perm[:bs]], items[perm[:bs]])
    got = torch.cat([module.user.grad, module.item.grad])
    if not torch.allclose(got, ref, rtol=1e-4, atol=1e-7):
        raise SystemExit(f"the two gradients differ (max abs {float((got - ref).abs().max()):.3g})")
    times: dict[str, list[float]] = {"library": [], "full": []}
    for _ in range(repeats):
        for name, f in (("library", module.compute_grads), ("full", lambda u, i: full_propagation_grads(module, u, i))):
            t0 = time.perf_counter()
            for s in range(0, bs * steps, bs):
                f(users[perm[s : s + bs]], items[perm[s : s + bs]])
            times[name].append((time.perf_counter() - t0) / steps)
    return statistics.median(times["library"]), statistics.median(times["full"])


def step_seconds(
    protocol: str, dataset: str, model: str, steps: int, optimizer: str = "adam"
) -> tuple[float, int, int]:
    """(seconds per step, batch size, training pairs) with the benchmark's settings for ``model``, the optimiser
    as ``lightgode train --optimizer`` builds it (for LightGODE without weight decay "adam" is RowAdam)."""
    from lightgode.core.train import make_optimizer

    cfg, train, module = training_module(protocol, dataset, model)
    opt = make_optimizer(module, list(module.parameters()), replace(cfg.train, optimizer=optimizer))
    users, items = (torch.from_numpy(a.astype(np.int64)) for a in (train.users, train.items))
    perm, bs = torch.randperm(len(users)), cfg.train.batch_size
    t0 = time.perf_counter()
    for s in range(0, bs * steps, bs):
        idx = perm[s : s + bs]
        module.compute_grads(users[idx], items[idx])
        opt.step()
    if hasattr(opt, "flush"):
        opt.flush()  # once per epoch in training; counted here as if every epoch were this short
    return (time.perf_counter() - t0) / steps, bs, len(users)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="gowalla")
    ap.add_argument("--protocol", default="lightgcn-gowalla")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument(
        "--compare-full",
        action="store_true",
        help="also time LightGCN's gradient with every propagation over all of the graph",
    )
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.compare_full:
        lib, full = compare_full(args.protocol, args.dataset, args.steps)
        print(
            f"{args.dataset} ({args.protocol}) lightgcn gradient: {1000 * lib:.1f} ms with the batch's rows, "
            f"{1000 * full:.1f} ms with full propagations ({full / lib:.2f}x; medians of 3 alternating "
            f"repeats of {args.steps} steps, no optimiser step)",
            flush=True,
        )
    for model, optimizer in (("lightgcn", "adam"), ("lightgode", "adam"), ("lightgode", "dense-adam")):
        sec, bs, n = step_seconds(args.protocol, args.dataset, model, args.steps, optimizer)
        batches = -(-n // bs)
        print(
            f"{args.dataset} ({args.protocol}) {model} ({optimizer}): batch {bs}, {1000 * sec:.2f} ms per step, "
            f"{batches} steps per epoch -> {sec * batches:.1f} s per epoch ({n} training pairs)",
            flush=True,
        )


if __name__ == "__main__":
    main()
