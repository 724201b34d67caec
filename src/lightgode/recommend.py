"""Recommender: a trained run that answers top-K queries with raw ids in and out."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from . import artifacts
from .data.interactions import Interactions
from .errors import ConfigError
from .evaluate import embedding_scorer, topk_masked
from .ode import ODEConfig
from .pipeline import load_model


@dataclass(frozen=True)
class Recommendation:
    item: str
    rank: int
    score: float


class Recommender:
    """Top-K recommendations from a run directory.

    Seen items (the user's training and validation interactions) are excluded unless asked otherwise.
    """

    def __init__(self, user_embeddings: torch.Tensor, item_embeddings: torch.Tensor, vocab: Interactions,
                 seen: sp.csr_matrix) -> None:
        self.user_embeddings = user_embeddings
        self.item_embeddings = item_embeddings
        self.vocab = vocab  # id maps (user_ids, item_ids)
        self.seen = seen.tocsr()
        self._score = embedding_scorer(user_embeddings, item_embeddings)

    @classmethod
    def load(cls, run_dir: str | os.PathLike, ode: ODEConfig | None = None) -> "Recommender":
        run = artifacts.load_run(run_dir)
        model = load_model(run, ode)
        seen = run.split.train.to_csr() + run.split.valid.to_csr()
        return cls(model.user_embeddings_, model.item_embeddings_, run.split.train, seen)

    @property
    def n_items(self) -> int:
        return len(self.vocab.item_ids)

    def _check_k(self, k: int) -> int:
        if int(k) != k or k <= 0:
            raise ConfigError(f"k must be an integer > 0, got {k}")
        return int(min(k, self.n_items))

    def recommend_indices(self, users: np.ndarray, k: int, exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (item indices, scores) for user indices; rows shorter than k are padded with -1 / -inf."""
        k = self._check_k(k)
        with torch.no_grad():
            scores, idx = topk_masked(self._score, users, self.seen if exclude_seen else None, k)
        idx = idx.numpy().astype(np.int64)
        scores = scores.numpy()
        idx[~np.isfinite(scores)] = -1
        return idx, scores

    def recommend(self, user_id, k: int = 20, exclude_seen: bool = True) -> list[Recommendation]:
        """Top-k items for one known user (raw id). Unknown ids raise UnknownIdError."""
        u = self.vocab.user_index([user_id])
        idx, scores = self.recommend_indices(u, k, exclude_seen)
        return [Recommendation(str(self.vocab.item_ids[i]), r + 1, float(s))
                for r, (i, s) in enumerate(zip(idx[0], scores[0])) if i >= 0]

    def recommend_many(self, user_ids, k: int = 20, exclude_seen: bool = True, batch_size: int = 1024):
        """Yield (user_id, [Recommendation, ...]) for many users, scored in batches."""
        users = self.vocab.user_index(list(user_ids))
        for start in range(0, len(users), batch_size):
            b = users[start:start + batch_size]
            idx, scores = self.recommend_indices(b, k, exclude_seen)
            for row, u in enumerate(b):
                yield str(self.vocab.user_ids[u]), [Recommendation(str(self.vocab.item_ids[i]), r + 1, float(s))
                                                    for r, (i, s) in enumerate(zip(idx[row], scores[row])) if i >= 0]
