"""Popularity: every user gets the items with the most training interactions."""

from __future__ import annotations

import time

import numpy as np
import torch

from lightgode.core.config import RunConfig
from lightgode.core.evaluate import EvalConfig, embedding_scorer
from lightgode.data.interactions import Interactions
from lightgode.models.base import ScoringModel, no_training_result


class Pop(ScoringModel):
    """Estimator ``pop``: score(u, i) = number of training interactions of item i.

    Written as rank-1 embeddings (users all ones, items their counts), so it travels through the run directory
    and the Recommender like any embedding model. Attributes after fit: ``user_embeddings_`` (n_users, 1),
    ``item_embeddings_`` (n_items, 1), ``result_`` (no epochs), ``fit_seconds_``.
    """

    def __init__(self, eval: EvalConfig = EvalConfig()) -> None:
        self.eval_config = eval

    @classmethod
    def from_config(cls, cfg: RunConfig) -> Pop:
        return cls(cfg.eval)

    def fit(
        self,
        train: Interactions,
        valid: Interactions | None = None,
        *,
        show_progress: bool = False,
        on_epoch=None,
        checkpoint=None,
    ) -> Pop:
        t0 = time.perf_counter()
        counts = np.bincount(np.asarray(train.items, dtype=np.int64), minlength=train.n_items)
        self.user_embeddings_ = torch.ones(train.n_users, 1)
        self.item_embeddings_ = torch.from_numpy(counts.astype(np.float32))[:, None]
        self.result_ = no_training_result()
        self.fit_seconds_ = time.perf_counter() - t0
        return self

    def score_fn(self):
        self._check()
        return embedding_scorer(self.user_embeddings_, self.item_embeddings_)

    def stored_weights(self) -> tuple[torch.Tensor, torch.Tensor, dict[str, str]]:
        return self.user_embeddings_, self.item_embeddings_, {"format": "lightgode-pop"}

    @classmethod
    def from_stored(cls, user: torch.Tensor, item: torch.Tensor, train: Interactions, cfg: RunConfig, ode=None) -> Pop:
        m = cls.from_config(cfg)
        m.user_embeddings_, m.item_embeddings_ = user.to(torch.float32), item.to(torch.float32)
        m.result_ = no_training_result()
        return m
