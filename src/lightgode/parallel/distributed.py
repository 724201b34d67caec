"""torch.distributed for LightGODE: the process group, rank helpers and data-parallel DirectAU training.

Launch with ``torchrun --nproc_per_node=N -m lightgode train ...`` (or ``lightgode launch --nproc N train ...``).
The backend follows the device: gloo on CPU, NCCL on CUDA. Sharded propagation and evaluation live in
:mod:`lightgode.parallel.sharded`.

Data-parallel training keeps a full replica of the embedding tables and of Adam's state on every rank. Every
epoch's seeded permutation is the same on all ranks; each global batch of ``batch_size`` pairs is cut into
``world_size`` contiguous shards, rank r computes the exact DirectAU gradient of its shard's rows, and the rows'
gradients (not the dense tables) are all-gathered, so every rank applies the same Adam step.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from lightgode.core.checkpoint import Checkpoint, TrainState
from lightgode.core.config import TrainConfig
from lightgode.core.losses import directau_with_grad, normalize_backward
from lightgode.core.train import TrainResult, Validate, fit
from lightgode.core.train import resolve_device as resolve_training_device
from lightgode.errors import ConfigError

log = logging.getLogger(__name__)

UNIFORMITY_MODES = ("rank", "global")
LAUNCH_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: its rank among ``world_size`` processes and the device it computes on."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str | None = None  # None when no process group was started (a single process)

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that writes files."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


def backend_for(device: torch.device | str) -> str:
    """The collective backend for a device: NCCL for CUDA, gloo otherwise."""
    return "nccl" if torch.device(device).type == "cuda" else "gloo"


def launched_world_size(env: Mapping[str, str]) -> int:
    """WORLD_SIZE set by torchrun (1 when not launched by it)."""
    try:
        return int(env.get("WORLD_SIZE", "1"))
    except ValueError:
        raise ConfigError(f"WORLD_SIZE must be an integer, got {env.get('WORLD_SIZE')!r}") from None


def resolve_device(device: str, local_rank: int) -> torch.device:
    """:func:`lightgode.core.train.resolve_device`, a GPU becoming this rank's GPU (local rank modulo the count)."""
    d = resolve_training_device(device)
    if d.type == "cuda":
        d = torch.device("cuda", local_rank % torch.cuda.device_count())
        torch.cuda.set_device(d)
    return d


def init_from_env(env: Mapping[str, str], device: str = "auto") -> DistContext:
    """Start the process group from torchrun's variables; a single-process context when they are absent."""
    world = launched_world_size(env)
    if world <= 1:
        return DistContext(device=resolve_device(device, 0))
    missing = [k for k in LAUNCH_VARS if k not in env]
    if missing:
        raise ConfigError(f"WORLD_SIZE={world} but {', '.join(missing)} not set; launch with torchrun")
    rank, local_rank = int(env["RANK"]), int(env["LOCAL_RANK"])
    d = resolve_device(device, local_rank)
    backend = backend_for(d)
    if not dist.is_initialized():
        dist.init_process_group(backend, init_method="env://", rank=rank, world_size=world)
    log.info("rank %d of %d on %s (%s)", rank, world, d, backend)
    return DistContext(rank, world, local_rank, d, backend)


def shutdown(ctx: DistContext) -> None:
    if ctx.active and dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    if ctx.active:
        dist.barrier()


def all_reduce_sum(x: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Sum of ``x`` over ranks (``x`` itself when single-process)."""
    if not ctx.active:
        return x
    y = x.to(ctx.device).clone()
    dist.all_reduce(y)
    return y.to(x.device)


def all_gather_rows(x: torch.Tensor, counts: list[int], ctx: DistContext) -> torch.Tensor:
    """Concatenate every rank's ``x`` (rank r holds ``counts[r]`` rows) in rank order, on every rank."""
    if not ctx.active:
        return x
    width = max(max(counts), 1)
    buf = x.new_zeros((width,) + tuple(x.shape[1:]), device=ctx.device)
    buf[: x.shape[0]] = x.to(ctx.device)
    out = [torch.empty_like(buf) for _ in range(ctx.world_size)]
    dist.all_gather(out, buf)
    return torch.cat([o[:c] for o, c in zip(out, counts)]).to(x.device)


def shard_bounds(n: int, world_size: int) -> np.ndarray:
    """Boundaries (world_size + 1,) of ``n`` items cut into contiguous shards whose sizes differ by at most 1."""
    return (np.arange(world_size + 1, dtype=np.int64) * n) // world_size


class DataParallelDirectAU:
    """A DirectAU model whose ``compute_grads`` takes the global batch and computes only this rank's shard.

    ``uniformity="rank"``: each rank's loss is DirectAU over its shard (uniformity among its own rows); the
    global loss is the pair-weighted mean of the ranks' losses. ``uniformity="global"``: uniformity runs over
    the whole global batch, split by rows of the kernel matrix, so the loss and gradient equal a single
    process's with the same batch (up to float summation order). Rows are read from the local replica, so the
    global mode exchanges three numbers more than the rank mode, not the batch.
    """

    def __init__(self, module, ctx: DistContext, uniformity: str = "rank", t: float = 2.0) -> None:
        if uniformity not in UNIFORMITY_MODES:
            raise ConfigError(f"uniformity must be one of {', '.join(UNIFORMITY_MODES)}, got {uniformity!r}")
        self.module, self.ctx, self.uniformity, self.t = module, ctx, uniformity, t
        self.generator = getattr(module, "generator", None)
        self.bytes_sent = 0  # bytes this rank has sent in collectives, for the scaling benchmark

    def parameters(self):
        return self.module.parameters()

    def state_dict(self):
        return self.module.state_dict()

    def load_state_dict(self, state):
        return self.module.load_state_dict(state)

    def use_sparse_grads(self, before_read=None) -> None:
        """Row-sparse gradients of the global batch, as the module's (every rank steps on the same rows)."""
        self.module.use_sparse_grads(before_read)

    def compute_grads(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        m, ctx = self.module, self.ctx
        B = len(users)
        bounds = shard_bounds(B, ctx.world_size)
        lo, hi = int(bounds[ctx.rank]), int(bounds[ctx.rank + 1])
        m.before_reading(users, items)
        U, I = m.user.detach(), m.item.detach()
        if self.uniformity == "global":
            loss, g_u, g_i = self._global_shard(U[users], I[items], lo, hi, m.gamma)
        elif hi > lo:
            loss, g_u, g_i = directau_with_grad(U[users[lo:hi]], I[items[lo:hi]], m.gamma, self.t)
            w = (hi - lo) / B
            loss = all_reduce_sum((loss * w).reshape(1), ctx)[0]
            self.bytes_sent += 4 * ctx.active
            g_u, g_i = g_u * w, g_i * w
        else:
            loss = all_reduce_sum(U.new_zeros(1), ctx)[0]
            g_u = g_i = U.new_zeros((0, U.shape[1]))
        g = all_gather_rows(torch.cat([g_u, g_i], dim=1), np.diff(bounds).tolist(), ctx)
        self.bytes_sent += g_u.numel() * 8 * ctx.active
        d = U.shape[1]
        m.set_row_grads(users, items, g[:, :d], g[:, d:])
        return loss

    def _global_shard(
        self, u: torch.Tensor, i: torch.Tensor, lo: int, hi: int, gamma: float
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """DirectAU over the global batch (B rows): loss, and gradients of rows ``lo:hi`` only."""
        t, B = self.t, u.shape[0]
        with torch.no_grad():
            u_norm = u.norm(dim=1, keepdim=True).clamp_min(1e-12)
            i_norm = i.norm(dim=1, keepdim=True).clamp_min(1e-12)
            uh, ih = u / u_norm, i / i_norm
            diff = uh[lo:hi] - ih[lo:hi]
            parts = [_kernel_rows(x, lo, hi, t) for x in (uh, ih)]
            sums = torch.stack([diff.pow(2).sum(), parts[0][0], parts[1][0]]).to(torch.float64)
            sums = all_reduce_sum(sums, self.ctx)
            self.bytes_sent += 24 * self.ctx.active
            align_sum, tot_u, tot_i = sums.tolist()
            pairs = B * (B - 1)
            unif = 0.0 if B < 2 else (np.log(tot_u / pairs) + np.log(tot_i / pairs)) / 2
            loss = u.new_tensor(align_sum / B + gamma * unif)
            g = []
            for sign, x, total, (_, row_k, kx) in ((1.0, uh, tot_u, parts[0]), (-1.0, ih, tot_i, parts[1])):
                g_unif = (-4.0 * t / total) * (x[lo:hi] * row_k[:, None] - kx) if B >= 2 else 0.0
                g.append(sign * (2.0 / B) * diff + (gamma / 2) * g_unif)
            return (
                loss,
                normalize_backward(uh[lo:hi], u_norm[lo:hi], g[0]),
                normalize_backward(ih[lo:hi], i_norm[lo:hi], g[1]),
            )


def _kernel_rows(x: torch.Tensor, lo: int, hi: int, t: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rows ``lo:hi`` of K = exp(-t ||x_a - x_b||^2) with its diagonal zeroed: (sum of them, row sums, K x)."""
    xl = x[lo:hi]
    sq = x.pow(2).sum(dim=1)
    K = torch.exp(-t * (sq[lo:hi, None] + sq[None, :] - 2.0 * (xl @ x.T)).clamp_min_(0.0))
    K[torch.arange(hi - lo), torch.arange(lo, hi)] = 0.0
    row_k = K.sum(dim=1)
    return row_k.sum(), row_k, K @ x


@dataclass(frozen=True)
class RankZeroCheckpoint(Checkpoint):
    """A checkpoint every rank reads but only rank 0 writes (the replicas are identical)."""

    rank: int = 0

    def save(self, state: TrainState) -> None:
        if self.rank == 0:
            super().save(state)


def fit_distributed(
    module,
    users: np.ndarray,
    items: np.ndarray,
    config: TrainConfig,
    *,
    seed: int,
    ctx: DistContext,
    uniformity: str = "rank",
    validate: Validate | None = None,
    valid_metric: str = "ndcg@20",
    show_progress: bool = False,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    checkpoint: Checkpoint | None = None,
) -> TrainResult:
    """Data-parallel :func:`lightgode.core.train.fit` of a DirectAU module over ``ctx.world_size`` processes.

    Every rank calls it with the same arguments (same seed, same pairs) and the same initial module; all
    ranks end with identical weights. ``validate`` runs on every rank and must return the same metrics
    everywhere (use :func:`lightgode.parallel.sharded.full_ranking_sharded`). Only rank 0 shows progress and writes
    checkpoints.

    Parameters
    ----------
    module : DirectAUMF-like, with ``user``, ``item`` parameters and ``gamma``
    users, items : int arrays (n_pairs,), the training pairs
    uniformity : "rank" (each rank's shard, default) or "global" (the whole global batch)
    """
    if ctx.active:
        _check_same_start(module, ctx)
    model = DataParallelDirectAU(module, ctx, uniformity) if ctx.active or uniformity == "global" else module
    if checkpoint is not None and ctx.active and not isinstance(checkpoint, RankZeroCheckpoint):
        checkpoint = RankZeroCheckpoint(checkpoint.path, checkpoint.every, ctx.rank)
    result = fit(
        model,
        users,
        items,
        config,
        seed=seed,
        validate=validate,
        valid_metric=valid_metric,
        show_progress=show_progress and ctx.is_main,
        on_epoch=on_epoch if ctx.is_main else None,
        checkpoint=checkpoint,
    )
    module.bytes_sent_ = getattr(model, "bytes_sent", 0)
    return result


def _check_same_start(module, ctx: DistContext) -> None:
    """Replicas must start equal; a cheap checksum of the tables, compared across ranks."""
    s = torch.stack([module.user.detach().double().sum(), module.item.detach().double().sum()])
    total = all_reduce_sum(s, ctx)
    if not torch.allclose(total, s * ctx.world_size, rtol=1e-12, atol=0.0):
        raise ConfigError("the ranks start from different embeddings; seed every rank's module the same way")
