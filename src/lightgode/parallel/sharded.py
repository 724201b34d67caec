"""Sharded post-training propagation and evaluation over torch.distributed ranks.

Each rank holds a contiguous block of rows of Â (CSR, rows ``offsets[r]:offsets[r+1]``, cut so that every
block has about the same number of nonzeros) and the matching rows of E. A product Â E needs, besides the
rank's own rows, only the rows of E named by its block's columns: they are fetched with one
``all_to_all_single`` per product (the halo exchange), set up once. Columns of the local block are renumbered
into the sorted list of rows it needs, so each row sums its terms in the same order as the single-process
CSR product and the result matches it to float rounding.

Evaluation splits the evaluated users across ranks; every rank ranks its users against all items and the
metric sums are all-reduced.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torchdiffeq import odeint

from lightgode.core.evaluate import METRICS, EvalConfig, ScoreFn, full_ranking, topk_masked
from lightgode.core.graph import to_torch
from lightgode.core.ode import FIXED_SOLVERS, ODEConfig
from lightgode.errors import ConfigError
from lightgode.parallel.distributed import DistContext, all_gather_rows, all_reduce_sum, shard_bounds


def edge_degrees(
    n_users: int, n_items: int, users: np.ndarray, items: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Deduplicated edges and the float32 degrees of users and items (as ``graph.normalized_adjacency``)."""
    key = np.unique(np.asarray(users, dtype=np.int64) * n_items + np.asarray(items, dtype=np.int64))
    u, i = key // n_items, key % n_items
    deg_u = np.bincount(u, minlength=n_users).astype(np.float32)
    deg_i = np.bincount(i, minlength=n_items).astype(np.float32)
    return u, i, deg_u, deg_i


def partition_rows(row_nnz: np.ndarray, world_size: int) -> np.ndarray:
    """Offsets (world_size + 1,) of contiguous row blocks with about equal nonzeros each."""
    n = len(row_nnz)
    cum = np.concatenate([[0], np.cumsum(row_nnz, dtype=np.int64)])
    targets = (np.arange(1, world_size, dtype=np.float64) * cum[-1]) / world_size
    inner = np.searchsorted(cum, targets, side="left")
    offsets = np.concatenate([[0], inner, [n]]).astype(np.int64)
    return np.maximum.accumulate(np.minimum(offsets, n))


def adjacency_block(
    n_users: int, n_items: int, u: np.ndarray, i: np.ndarray, deg_u: np.ndarray, deg_i: np.ndarray, r0: int, r1: int
) -> sp.csr_matrix:
    """Rows ``r0:r1`` of Â = D^-1/2 A D^-1/2, shape (r1 - r0, n_users + n_items), float32, without building Â.

    ``u, i`` are deduplicated edges and ``deg_u, deg_i`` their degrees (:func:`edge_degrees`); the values equal
    ``graph.normalized_adjacency(...)[r0:r1]`` exactly.
    """
    n = n_users + n_items
    inv_u, inv_i = np.zeros_like(deg_u), np.zeros_like(deg_i)
    np.divide(1.0, np.sqrt(deg_u), out=inv_u, where=deg_u > 0)
    np.divide(1.0, np.sqrt(deg_i), out=inv_i, where=deg_i > 0)
    mu = (u >= r0) & (u < r1)  # user rows in the block: columns are items
    mi = (i + n_users >= r0) & (i + n_users < r1)  # item rows in the block: columns are users
    rows = np.concatenate([u[mu] - r0, i[mi] + n_users - r0])
    cols = np.concatenate([i[mu] + n_users, u[mi]])
    vals = np.concatenate([inv_u[u[mu]] * inv_i[i[mu]], inv_u[u[mi]] * inv_i[i[mi]]]).astype(np.float32)
    a = sp.csr_matrix((vals, (rows, cols)), shape=(r1 - r0, n), dtype=np.float32)
    a.sort_indices()
    return a


@dataclass
class ShardedAdjacency:
    """This rank's rows of Â with its halo-exchange plan. Build with :func:`shard_adjacency`."""

    ctx: DistContext
    offsets: np.ndarray  # (world_size + 1,) row blocks
    A_local: torch.Tensor  # torch CSR (rows of the block, needed rows in ``needed`` order)
    own_needed: torch.Tensor  # local indices of own rows the block needs
    send_idx: torch.Tensor  # local rows to send, grouped by destination rank
    send_counts: list[int]
    recv_counts: list[int]
    block_bytes: int  # bytes of the local CSR block (indptr + indices + values)

    @property
    def rows(self) -> tuple[int, int]:
        r = self.ctx.rank
        return int(self.offsets[r]), int(self.offsets[r + 1])

    def bytes_per_product(self, dim: int, itemsize: int = 4) -> int:
        """Bytes this rank sends in one Â E product with ``dim`` columns."""
        return int(sum(self.send_counts)) * dim * itemsize

    def matmul(self, E_local: torch.Tensor) -> torch.Tensor:
        """(Â E) for this rank's rows; collective: every rank calls it together."""
        ctx = self.ctx
        if ctx.active:
            send = E_local[self.send_idx].to(ctx.device)
            recv = send.new_empty((sum(self.recv_counts), E_local.shape[1]))
            torch.distributed.all_to_all_single(recv, send, self.recv_counts, self.send_counts)
            recv = recv.to(E_local.device)
            pieces = list(torch.split(recv, self.recv_counts))
            pieces[ctx.rank] = E_local[self.own_needed]
            E_ext = torch.cat(pieces)
        else:
            E_ext = E_local[self.own_needed]
        return self.A_local @ E_ext


def shard_adjacency(block: sp.csr_matrix, offsets: np.ndarray, ctx: DistContext) -> ShardedAdjacency:
    """Plan the halo exchange for ``block`` (rows ``offsets[rank]:offsets[rank+1]`` of Â); collective."""
    r0, r1 = int(offsets[ctx.rank]), int(offsets[ctx.rank + 1])
    if block.shape[0] != r1 - r0:
        raise ConfigError(f"block has {block.shape[0]} rows but the partition gives this rank {r1 - r0}")
    needed, local_cols = np.unique(block.indices.astype(np.int64), return_inverse=True)
    owner = np.searchsorted(offsets, needed, side="right") - 1
    want = np.bincount(owner, minlength=ctx.world_size).astype(np.int64)
    A_local = to_torch(
        sp.csr_matrix((block.data, local_cols.astype(np.int64), block.indptr), shape=(r1 - r0, len(needed)))
    )
    own = torch.from_numpy(needed[owner == ctx.rank] - r0)
    recv_counts = want.tolist()
    recv_counts[ctx.rank] = 0
    send_counts, send_idx = [0] * ctx.world_size, torch.zeros(0, dtype=torch.int64)
    if ctx.active:
        counts = torch.tensor(recv_counts, dtype=torch.int64, device=ctx.device)
        theirs = torch.empty_like(counts)
        torch.distributed.all_to_all_single(theirs, counts)  # theirs[s]: rows rank s wants from me
        send_counts = theirs.cpu().tolist()
        requests = torch.from_numpy(needed[owner != ctx.rank]).to(ctx.device)
        asked = torch.empty(sum(send_counts), dtype=torch.int64, device=ctx.device)
        torch.distributed.all_to_all_single(asked, requests, send_counts, recv_counts)
        send_idx = asked.cpu() - r0
    nbytes = block.indptr.nbytes + block.indices.nbytes + block.data.nbytes
    return ShardedAdjacency(ctx, np.asarray(offsets), A_local, own, send_idx, send_counts, recv_counts, nbytes)


def sharded_graph(
    n_users: int, n_items: int, users: np.ndarray, items: np.ndarray, ctx: DistContext
) -> ShardedAdjacency:
    """This rank's block of the normalised bipartite graph of the edges, partitioned by nonzeros."""
    u, i, deg_u, deg_i = edge_degrees(n_users, n_items, users, items)
    offsets = partition_rows(np.concatenate([deg_u, deg_i]), ctx.world_size)
    r0, r1 = int(offsets[ctx.rank]), int(offsets[ctx.rank + 1])
    return shard_adjacency(adjacency_block(n_users, n_items, u, i, deg_u, deg_i, r0, r1), offsets, ctx)


def propagate_sharded(A: ShardedAdjacency, E0_local: torch.Tensor, config: ODEConfig) -> torch.Tensor:
    """This rank's rows of E(T) of dE/dt = Â E + E0 (fixed-step solvers); collective.

    Adaptive solvers choose their steps from a norm of the local rows, which would differ between ranks,
    and the exact solver needs the whole matrix: both are refused.
    """
    if config.solver not in FIXED_SOLVERS:
        raise ConfigError(
            f"sharded propagation supports the fixed-step solvers {', '.join(FIXED_SOLVERS)}, not {config.solver!r}"
        )
    E0 = E0_local.detach().to(torch.float32)
    if config.t == 0:
        return E0.clone()
    with torch.no_grad():
        if config.solver == "euler" and config.steps == 1:
            return (1.0 + config.t) * E0 + config.t * A.matmul(E0)
        grid = torch.linspace(0.0, config.t, config.steps + 1, dtype=torch.float64)
        out = odeint(
            lambda t, E: A.matmul(E) + E0,
            E0,
            torch.tensor([0.0, config.t], dtype=torch.float64),
            method=config.solver,
            options={"grid_constructor": lambda *_: grid},
        )
    return out[-1]


def gather_rows(E_local: torch.Tensor, offsets: np.ndarray, ctx: DistContext) -> torch.Tensor:
    """The full matrix from every rank's row block, on every rank."""
    return all_gather_rows(E_local, np.diff(offsets).tolist(), ctx)


def _keep_rows(m: sp.csr_matrix, lo: int, hi: int) -> sp.csr_matrix:
    """``m`` with every row outside ``lo:hi`` emptied (same shape, same row numbers)."""
    counts = np.diff(m.indptr)
    keep = np.zeros(m.shape[0], dtype=bool)
    keep[lo:hi] = True
    counts = np.where(keep, counts, 0)
    sel = np.repeat(keep, np.diff(m.indptr))
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(m.indptr.dtype)
    return sp.csr_matrix((m.data[sel], m.indices[sel], indptr), shape=m.shape)


def full_ranking_sharded(
    score_fn: ScoreFn, relevant: sp.csr_matrix, exclude: sp.csr_matrix | None, config: EvalConfig, ctx: DistContext
) -> dict[str, float]:
    """:func:`lightgode.core.evaluate.full_ranking` with the evaluated users split across ranks; collective.

    Every rank returns the same metrics, equal to the single-process ones.
    """
    users = np.flatnonzero(np.diff(relevant.indptr) > 0)
    bounds = shard_bounds(len(users), ctx.world_size)
    a, b = int(bounds[ctx.rank]), int(bounds[ctx.rank + 1])
    keys = sorted(f"{m}@{k}" for m in METRICS for k in config.ks)
    sums = torch.zeros(len(keys), dtype=torch.float64)
    if b > a:
        lo, hi = int(users[a]), int(users[b - 1]) + 1
        means = full_ranking(score_fn, _keep_rows(relevant, lo, hi), exclude, config)
        sums = torch.tensor([means[k] * (b - a) for k in keys], dtype=torch.float64)
    sums = all_reduce_sum(sums, ctx)
    n = max(len(users), 1)
    return {k: float(s) / n for k, s in zip(keys, sums.tolist())}


def topk_sharded(
    score_fn: ScoreFn, users: np.ndarray, exclude: sp.csr_matrix | None, k: int, ctx: DistContext
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k recommendations for ``users`` with the users split across ranks; collective.

    Every rank returns (scores, item indices), each (len(users), min(k, n_items)), equal to
    :func:`lightgode.core.evaluate.topk_masked` in one process.
    """
    users = np.asarray(users, dtype=np.int64)
    bounds = shard_bounds(len(users), ctx.world_size)
    a, b = int(bounds[ctx.rank]), int(bounds[ctx.rank + 1])
    with torch.no_grad():
        scores, idx = topk_masked(score_fn, users[a:b], exclude, k)
    counts = np.diff(bounds).tolist()
    packed = torch.cat([scores.to(torch.float64), idx.to(torch.float64)], dim=1)  # item ids < 2^53: exact
    packed = all_gather_rows(packed, counts, ctx)
    kk = scores.shape[1]
    return packed[:, :kk].to(scores.dtype), packed[:, kk:].to(torch.int64)
