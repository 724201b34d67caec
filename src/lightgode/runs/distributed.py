"""A whole training run over torch.distributed ranks: what ``torchrun -m lightgode train`` does.

Every rank reads and splits the data (deterministic, same seed), holds its block of Â, trains its shard of
each batch, and evaluates its share of users; rank 0 alone writes the run directory and the checkpoint.
The run directory is the same as a single-process run's.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch

from lightgode.core.config import RunConfig
from lightgode.core.evaluate import embedding_scorer
from lightgode.errors import ConfigError, DataError, RunDirError
from lightgode.models.lightgode import LightGODE
from lightgode.models.mf import DirectAUMF
from lightgode.parallel.distributed import DistContext, RankZeroCheckpoint, all_gather_rows, barrier, fit_distributed
from lightgode.parallel.sharded import (
    ShardedAdjacency,
    full_ranking_sharded,
    gather_rows,
    propagate_sharded,
    sharded_graph,
)
from lightgode.runs import store as artifacts
from lightgode.runs.workflow import (
    RunSummary,
    _start_checkpoint,
    checkpoint_dir,
    peak_rss_mb,
    prepare_split,
    run_info,
    write_run,
)

DISTRIBUTED_MODELS = ("lightgode", "directau")


def _propagated(A: ShardedAdjacency, E0: torch.Tensor, model: LightGODE, ctx: DistContext) -> torch.Tensor:
    r0, r1 = A.rows
    return gather_rows(propagate_sharded(A, E0[r0:r1], model.ode), A.offsets, ctx)


def train_run_distributed(
    cfg: RunConfig,
    out: Path | None,
    ctx: DistContext,
    *,
    uniformity: str = "rank",
    env_data_dir: str | None = None,
    overwrite: bool = False,
    show_progress: bool = False,
    on_epoch: Callable[[dict], None] | None = None,
    resume: bool = False,
    checkpoint_every: int = 1,
) -> RunSummary:
    """:func:`lightgode.runs.workflow.train_run` on every rank of ``ctx``; collective. Rank 0 writes ``out``."""
    t_start = time.perf_counter()
    if cfg.model not in DISTRIBUTED_MODELS:
        raise ConfigError(f"multi-process training supports {', '.join(DISTRIBUTED_MODELS)}, not {cfg.model!r}")
    if cfg.train.device.startswith("cuda"):
        raise ConfigError(
            "multi-process training keeps its tables on the CPU (each rank's collectives use the "
            "rank's GPU when there is one); --device cuda applies to one-process training"
        )
    if cfg.ode.solver not in ("euler", "midpoint", "rk4"):
        raise ConfigError(f"multi-process propagation needs a fixed-step solver, not {cfg.ode.solver!r}")
    if resume and out is None:
        raise RunDirError("resume needs the run directory of the interrupted run")
    # Every rank checks what rank 0 would refuse, so that no rank waits for a peer that has stopped.
    if out is not None and not resume:
        artifacts.check_out_dir(out, overwrite)
        if checkpoint_dir(out).exists() and not overwrite and checkpoint_every > 0:
            raise RunDirError(
                f"an interrupted run of {out} left a checkpoint in {checkpoint_dir(out)}; continue "
                f"it with --resume {out}, or pass --overwrite to start again"
            )
    barrier(ctx)  # every rank has checked before rank 0 creates anything
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    split = prepare_split(cfg.data, cfg.seed, env_data_dir=env_data_dir)
    train = split.train
    if len(train) == 0:
        raise DataError("the split left no training interactions")
    checkpoint = None  # made once the data is read, so a run that fails on its data leaves no checkpoint
    if out is not None and (checkpoint_every > 0 or resume):
        if ctx.is_main:
            _start_checkpoint(cfg, out, overwrite, resume, checkpoint_every)
        barrier(ctx)
        checkpoint = RankZeroCheckpoint(checkpoint_dir(out) / "state.safetensors", max(checkpoint_every, 1), ctx.rank)
    t_data = time.perf_counter() - t_start
    ode = replace(cfg.ode, t=0.0) if cfg.model == "directau" else cfg.ode
    model = LightGODE(cfg.train, ode, cfg.eval, seed=cfg.seed)
    n_users, n_items = train.n_users, train.n_items
    A = sharded_graph(n_users, n_items, train.users, train.items, ctx)
    gen = torch.Generator().manual_seed(cfg.seed)
    module = DirectAUMF(n_users, n_items, cfg.train.dim, cfg.train.gamma, generator=gen)
    train_csr = train.to_csr()
    validate = None
    if len(split.valid):
        valid_csr = split.valid.to_csr()

        def validate() -> dict[str, float]:
            E = _propagated(A, module.E0(), model, ctx)
            return full_ranking_sharded(embedding_scorer(E[:n_users], E[n_users:]), valid_csr, train_csr, cfg.eval, ctx)

    t0 = time.perf_counter()
    model.result_ = fit_distributed(
        module,
        train.users,
        train.items,
        cfg.train,
        seed=cfg.seed,
        ctx=ctx,
        uniformity=uniformity,
        validate=validate,
        valid_metric=cfg.eval.valid_metric,
        show_progress=show_progress,
        on_epoch=on_epoch,
        checkpoint=checkpoint,
    )
    t_fit = time.perf_counter() - t0
    model.E0_, model.n_users_, model.A_hat_ = module.E0().clone(), n_users, None
    E = _propagated(A, model.E0_, model, ctx)
    model.user_embeddings_, model.item_embeddings_ = E[:n_users], E[n_users:]
    score = embedding_scorer(model.user_embeddings_, model.item_embeddings_)
    metrics: dict[str, dict[str, float]] = {}
    if len(split.valid):
        metrics["valid"] = full_ranking_sharded(score, split.valid.to_csr(), train_csr, cfg.eval, ctx)
    if len(split.test):
        exclude = train_csr + split.valid.to_csr() if len(split.valid) else train_csr
        metrics["test"] = full_ranking_sharded(score, split.test.to_csr(), exclude, cfg.eval, ctx)
    rss = all_gather_rows(torch.tensor([[peak_rss_mb()]], dtype=torch.float64), [1] * ctx.world_size, ctx)
    info = run_info(
        cfg, split, model.result_, seconds={"data": t_data, "fit": t_fit}, t_start=t_start, peak_mb=float(rss.max())
    )
    info.update(
        {
            "distributed": {
                "world_size": ctx.world_size,
                "backend": ctx.backend,
                "uniformity": uniformity,
                "peak_rss_mb_per_rank": rss.ravel().tolist(),
                "row_offsets": A.offsets.tolist(),
                "adjacency_block_bytes": A.block_bytes,
                "propagation_bytes_sent_per_step": A.bytes_per_product(cfg.train.dim),
                "training_bytes_sent": int(getattr(module, "bytes_sent_", 0)),
            },
        }
    )
    if out is not None and ctx.is_main:
        write_run(out, cfg, split, model, metrics, info)
        shutil.rmtree(checkpoint_dir(out), ignore_errors=True)
    barrier(ctx)
    return RunSummary(out, metrics, info)
