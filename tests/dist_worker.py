"""Run by tests/test_distributed.py under torchrun (2 gloo processes): writes each rank's results to --out."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import torch

from lightgode.core.config import TrainConfig
from lightgode.core.evaluate import EvalConfig, embedding_scorer
from lightgode.core.ode import ODEConfig
from lightgode.data.readers import read_lightgcn
from lightgode.data.split import split_random
from lightgode.models.mf import DirectAUMF
from lightgode.parallel.distributed import fit_distributed, init_from_env, shutdown
from lightgode.parallel.sharded import full_ranking_sharded, gather_rows, propagate_sharded, sharded_graph, topk_sharded

ODES = {"euler1": ODEConfig(t=1.8), "rk4": ODEConfig(t=1.0, solver="rk4", steps=2)}
TRAIN = TrainConfig(dim=16, lr=1e-2, gamma=0.5, batch_size=256, epochs=3)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    torch.set_num_threads(1)
    ctx = init_from_env(os.environ, "cpu")
    split = split_random(read_lightgcn(args.data), seed=7)
    tr = split.train
    out: dict[str, np.ndarray] = {}
    A = sharded_graph(tr.n_users, tr.n_items, tr.users, tr.items, ctx)
    r0, r1 = A.rows
    E0 = torch.randn(tr.n_users + tr.n_items, 16, generator=torch.Generator().manual_seed(3))
    for name, ode in ODES.items():
        out[f"E_{name}"] = gather_rows(propagate_sharded(A, E0[r0:r1], ode), A.offsets, ctx).numpy()
    E = torch.from_numpy(out["E_euler1"])
    metrics = full_ranking_sharded(
        embedding_scorer(E[: tr.n_users], E[tr.n_users :]),
        split.test.to_csr(),
        tr.to_csr() + split.valid.to_csr(),
        EvalConfig(batch_size=300),
        ctx,
    )
    top_scores, top_items = topk_sharded(
        embedding_scorer(E[: tr.n_users], E[tr.n_users :]), np.arange(tr.n_users), tr.to_csr(), 20, ctx
    )
    out["top_scores"], out["top_items"] = top_scores.numpy(), top_items.numpy()
    res = {}
    for mode in ("global", "rank"):
        module = DirectAUMF(tr.n_users, tr.n_items, TRAIN.dim, TRAIN.gamma, generator=torch.Generator().manual_seed(5))
        hist = fit_distributed(module, tr.users, tr.items, TRAIN, seed=11, ctx=ctx, uniformity=mode).history
        res[mode] = [row["loss"] for row in hist]
        out[f"user_{mode}"] = module.user.detach().numpy()
    np.savez(Path(args.out) / f"rank{ctx.rank}.npz", **out)
    info = {
        "metrics": metrics,
        "loss": res,
        "rows": [r0, r1],
        "offsets": A.offsets.tolist(),
        "block_bytes": A.block_bytes,
        "bytes_per_product": A.bytes_per_product(16),
        "backend": ctx.backend,
    }
    (Path(args.out) / f"rank{ctx.rank}.json").write_text(json.dumps(info))
    shutdown(ctx)


if __name__ == "__main__":
    main()
