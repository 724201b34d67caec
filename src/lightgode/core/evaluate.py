"""Full-ranking top-K evaluation, batched over users; one definition of each metric.

Every item is ranked for every evaluated user; the user's excluded items (training, and validation when
testing) are masked. Memory is bounded by ``batch_size x n_items`` scores, never users x items.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from lightgode.errors import ConfigError
from lightgode.fieldtypes import check_fields

METRICS = ("recall", "ndcg", "mrr", "hit", "precision")

ScoreFn = Callable[[torch.Tensor], torch.Tensor]
"""Maps a LongTensor of user indices (b,) to scores (b, n_items)."""


@dataclass(frozen=True, kw_only=True)
class EvalConfig:
    ks: tuple[int, ...] = (10, 20, 50)  # cut-offs K
    batch_size: int = 1024  # users scored at once; bounds memory at batch_size x n_items floats
    valid_metric: str = "ndcg@20"  # early stopping and model selection criterion

    def __post_init__(self) -> None:
        check_fields(self, "eval")
        if not self.ks or any(int(k) != k or k <= 0 for k in self.ks):
            raise ConfigError(f"every K must be an integer > 0, got {list(self.ks)}")
        if self.batch_size <= 0:
            raise ConfigError(f"evaluation batch size must be > 0, got {self.batch_size}")
        name, _, k = self.valid_metric.partition("@")
        if name not in METRICS or not k.isdigit() or int(k) not in self.ks:
            raise ConfigError(
                f"valid_metric must be <metric>@<K> with metric in {METRICS} and K in {list(self.ks)}, "
                f"got {self.valid_metric!r}"
            )


class EmbeddingScorer:
    """Inner-product scores of users against every item: a ScoreFn that can also write into a given buffer.

    Reusing one (batch, n_items) buffer across batches avoids allocating (and page-faulting) a fresh score
    matrix per batch, which costs as much as the product itself for large catalogues.

    On CPU the product goes through numpy's BLAS (OpenBLAS in the wheels) against the row-major item table:
    for this skinny (batch x 64) @ (64 x items) shape it measured about twice as fast as torch's MKL path on
    the AMD CPU of our benchmark machine (all Gowalla users in 1,024 x 40,981 blocks; ``benchmarks/gowalla_speed.py``
    times both and writes them to docs/results/gowalla_speed.md).
    With a ``pool`` from :func:`scoring_threads` the rows are split over single-threaded BLAS calls, so that
    idle BLAS threads do not spin against torch's top-k threads. Other devices or dtypes use torch.
    """

    def __init__(self, user_emb: torch.Tensor, item_emb: torch.Tensor) -> None:
        self.user_emb = user_emb.detach()
        item_emb = item_emb.detach()
        self.uses_numpy = (
            self.user_emb.device.type == "cpu"
            and item_emb.device.type == "cpu"
            and self.user_emb.dtype == torch.float32
            and item_emb.dtype == torch.float32
        )
        if self.uses_numpy:
            self._user_np = self.user_emb.contiguous().numpy()
            self._item_np = item_emb.contiguous().numpy()
            self._n_items = self._item_np.shape[0]
        else:
            self.item_t = item_emb.T.contiguous()
            self._n_items = self.item_t.shape[1]

    @property
    def n_items(self) -> int:
        return self._n_items

    @property
    def device(self) -> torch.device:
        """Where the scores are computed (the embeddings' device)."""
        return self.user_emb.device

    def __call__(
        self, users: torch.Tensor, out: torch.Tensor | None = None, *, pool: ScoringPool | None = None
    ) -> torch.Tensor:
        if not self.uses_numpy:
            u = self.user_emb[users.to(self.user_emb.device)]
            if out is None:
                return u @ self.item_t
            return torch.mm(u, self.item_t, out=out)
        u = self._user_np[users.numpy()]
        if out is None:
            out = torch.empty(len(u), self._n_items)
        o, items_t = out.numpy(), self._item_np.T
        n_parts = min(pool.n_threads, len(u)) if pool is not None else 1
        if n_parts <= 1:
            np.matmul(u, items_t, out=o)
        else:
            bounds = np.linspace(0, len(u), n_parts + 1).astype(int)
            parts = [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]
            list(pool.executor.map(lambda p: np.matmul(u[p], items_t, out=o[p]), parts))
        return out


@dataclass(frozen=True)
class ScoringPool:
    """Threads that split a product's rows (from :func:`scoring_threads`)."""

    executor: ThreadPoolExecutor
    n_threads: int


@contextmanager
def scoring_threads(n_threads: int | None = None) -> Iterator[ScoringPool]:
    """Threads for :class:`EmbeddingScorer` products, each with single-threaded BLAS while the block lasts.

    Defaults to torch's intra-op thread count. Torch runs one thread while the block lasts (restored after) and
    the pool splits the top-k's rows too (:func:`topk_rows`): torch's own threads would otherwise spin after each
    top-k and take cores from the next product (on Beauty's validation at 2 threads: about 0.71 s a pass instead
    of 0.84 s, ``benchmarks/epoch_profile.py``).
    """
    n = max(1, n_threads or torch.get_num_threads())
    torch_threads = torch.get_num_threads()
    with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(n, thread_name_prefix="lightgode-score") as ex:
        # torch's own threads would spin-wait after each top-k while the pool's products run: one each instead
        torch.set_num_threads(1)
        try:
            yield ScoringPool(ex, n)
        finally:
            torch.set_num_threads(torch_threads)


def embedding_scorer(user_emb: torch.Tensor, item_emb: torch.Tensor) -> EmbeddingScorer:
    """Inner-product scores of users against every item."""
    return EmbeddingScorer(user_emb, item_emb)


def topk_masked(
    score_fn: ScoreFn,
    users: np.ndarray,
    exclude: sp.csr_matrix | None,
    k: int,
    *,
    buffer: torch.Tensor | None = None,
    pool: ScoringPool | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k item indices and scores for a batch of users, excluded items masked out.

    Returns (scores, indices), each (len(users), k). Masked items get -inf and may appear only when a
    user has fewer than k admissible items. Items tied in score at the cut-off are ordered as ``torch.topk``
    returns them (the same on every call, but no principled order): it matters only for scores with many exact
    ties, such as popularity's integer counts. ``buffer`` (at least len(users) rows) is reused for the scores
    when ``score_fn`` is an :class:`EmbeddingScorer`, and ``pool`` (from :func:`scoring_threads`) splits its product and the top-k.
    """
    u = torch.from_numpy(np.asarray(users, dtype=np.int64))
    if isinstance(score_fn, EmbeddingScorer):
        scores = score_fn(u, out=None if buffer is None else buffer[: len(u)], pool=pool)
    else:
        scores = score_fn(u)
    if exclude is not None:
        sub = exclude[users]
        rows = np.repeat(np.arange(len(users)), np.diff(sub.indptr))
        scores[
            torch.from_numpy(rows).to(scores.device), torch.from_numpy(sub.indices.astype(np.int64)).to(scores.device)
        ] = -torch.inf
    k = min(k, scores.shape[1])
    return topk_rows(scores, k, pool)


def topk_rows(scores: torch.Tensor, k: int, pool: ScoringPool | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``torch.topk(scores, k, dim=1, sorted=True)``, its rows split over ``pool``'s threads on a CPU.

    Each row's top-k is computed by the same kernel either way, so the result is the same, ties included; inside
    :func:`scoring_threads` torch runs one thread, and the pool's threads take the rows in parts instead.
    """
    n_parts = min(pool.n_threads, len(scores)) if pool is not None and scores.device.type == "cpu" else 1
    if n_parts <= 1:
        return torch.topk(scores, k, dim=1, sorted=True)
    bounds = np.linspace(0, len(scores), n_parts + 1).astype(int)
    parts = list(
        pool.executor.map(lambda a, b: torch.topk(scores[a:b], k, dim=1, sorted=True), bounds[:-1], bounds[1:])
    )
    return torch.cat([v for v, _ in parts]), torch.cat([i for _, i in parts])


def ranking_metrics(hits: torch.Tensor, n_relevant: torch.Tensor, ks: Sequence[int]) -> dict[str, torch.Tensor]:
    """Per-user metrics from a hit matrix.

    Parameters
    ----------
    hits : float tensor (b, K_max), 1 where the item at that rank is relevant
    n_relevant : float tensor (b,), number of relevant items of each user (> 0)

    Returns ``{"<metric>@<K>": tensor (b,)}``. NDCG's ideal DCG covers min(|relevant|, K) ranks.
    """
    kmax = hits.shape[1]
    discount = 1.0 / torch.log2(torch.arange(2, kmax + 2, dtype=torch.float64))
    cum_discount = torch.cumsum(discount, 0)
    ranks = torch.arange(1, kmax + 1, dtype=torch.float64)
    hits = hits.to(torch.float64)
    n_rel = n_relevant.to(torch.float64)
    out: dict[str, torch.Tensor] = {}
    for k in ks:
        kk = min(k, kmax)
        h = hits[:, :kk]
        n_hit = h.sum(1)
        out[f"recall@{k}"] = n_hit / n_rel
        out[f"precision@{k}"] = n_hit / k
        out[f"hit@{k}"] = (n_hit > 0).to(torch.float64)
        first = torch.where(h > 0, ranks[:kk], torch.full_like(h, torch.inf)).min(dim=1).values
        out[f"mrr@{k}"] = torch.where(torch.isfinite(first), 1.0 / first, torch.zeros_like(first))
        dcg = (h * discount[:kk]).sum(1)
        ideal = cum_discount[(torch.clamp(n_rel, max=kk) - 1).long()]
        out[f"ndcg@{k}"] = dcg / ideal
    return out


MEMORY_ALLOWANCE = 32 * 2**20  # bytes: top-k results, one batch's mask indices and relevant keys, allocator slack


def memory_bound_bytes(batch_size: int, n_items: int) -> int:
    """Documented bound of the memory :func:`full_ranking` adds to its inputs for embedding scores.

    One reused (batch_size, n_items) float32 score buffer plus :data:`MEMORY_ALLOWANCE`; independent of the
    number of users (a generic ``score_fn`` that allocates its own scores needs one more buffer).
    """
    return batch_size * n_items * 4 + MEMORY_ALLOWANCE


def relevant_hits(rel: sp.csr_matrix, idx: np.ndarray, n_items: np.int64) -> np.ndarray:
    """Boolean (b, k): whether ``idx[r, j]`` is among row r's nonzeros in ``rel`` (sorted-key lookups, no dense b x items)."""
    rows = np.repeat(np.arange(rel.shape[0], dtype=np.int64), np.diff(rel.indptr))
    keys = np.sort(rows * n_items + rel.indices.astype(np.int64))
    query = (np.arange(idx.shape[0], dtype=np.int64)[:, None] * n_items + idx).ravel()
    pos = np.minimum(np.searchsorted(keys, query), max(len(keys) - 1, 0))
    found = keys[pos] == query if len(keys) else np.zeros(len(query), dtype=bool)
    return found.reshape(idx.shape)


def full_ranking(
    score_fn: ScoreFn,
    relevant: sp.csr_matrix,
    exclude: sp.csr_matrix | None,
    config: EvalConfig = EvalConfig(),
    *,
    show_progress: bool = False,
    desc: str = "evaluate",
) -> dict[str, float]:
    """Mean of each metric over users with at least one relevant item.

    Parameters
    ----------
    score_fn : ScoreFn
    relevant : CSR (n_users, n_items), nonzero where the item is a held-out positive
    exclude : CSR (n_users, n_items) or None, nonzero where the item must not be ranked (seen items)
    """
    counts = np.diff(relevant.indptr)
    users = np.flatnonzero(counts > 0)
    kmax = max(config.ks)
    sums = {f"{m}@{k}": 0.0 for m in METRICS for k in config.ks}
    n_items = np.int64(relevant.shape[1])
    batches = range(0, len(users), config.batch_size)
    buffer = (
        torch.empty(min(config.batch_size, len(users)), score_fn.n_items, device=score_fn.device)
        if isinstance(score_fn, EmbeddingScorer) and len(users)
        else None
    )
    pooled = isinstance(score_fn, EmbeddingScorer) and score_fn.uses_numpy
    with torch.no_grad(), scoring_threads() if pooled else nullcontext() as pool:
        for start in tqdm(batches, desc=desc, unit="batch", disable=not show_progress, leave=False):
            b = users[start : start + config.batch_size]
            _, idx = topk_masked(score_fn, b, exclude, kmax, buffer=buffer, pool=pool)
            hits = torch.from_numpy(relevant_hits(relevant[b], idx.cpu().numpy(), n_items))
            per_user = ranking_metrics(hits, torch.from_numpy(counts[b]), config.ks)
            for key, v in per_user.items():
                sums[key] += float(v.sum())
    n = max(len(users), 1)
    return {key: sums[key] / n for key in sorted(sums)}
