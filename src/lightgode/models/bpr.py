"""MF trained with BPR and uniform negative sampling (``mf-bpr``), and the sampler LightGCN shares."""

from __future__ import annotations

import numpy as np
import torch

from lightgode.core.config import BaselineConfig, RunConfig, TrainConfig
from lightgode.core.evaluate import EvalConfig, embedding_scorer, full_ranking
from lightgode.core.losses import bpr
from lightgode.core.train import resolve_device
from lightgode.data.interactions import Interactions
from lightgode.models.base import ScoringModel, capped_fit
from lightgode.models.mf import MFEmbeddings


class NegativeSampler:
    """Uniform negative items for (user, positive) pairs, never one of the user's training items.

    Candidates are drawn uniformly from all items; those the user has interacted with are redrawn (vectorised,
    a few rounds at most for sparse data). Randomness comes from the ``generator`` passed at each call.
    """

    def __init__(self, train: Interactions) -> None:
        csr = train.to_csr()
        self.n_items = train.n_items
        rows = np.repeat(np.arange(csr.shape[0], dtype=np.int64), np.diff(csr.indptr))
        self._keys = torch.from_numpy(np.sort(rows * self.n_items + csr.indices.astype(np.int64)))
        self._full = torch.from_numpy(np.diff(csr.indptr) >= self.n_items)

    def _seen(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        q = users * self.n_items + items
        pos = torch.searchsorted(self._keys, q).clamp_max(max(len(self._keys) - 1, 0))
        return self._keys[pos] == q if len(self._keys) else torch.zeros_like(q, dtype=torch.bool)

    def sample(self, users: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """One negative item per user of the batch (CPU LongTensors (b,) in and out).

        The draws come from ``generator``, a CPU generator, so a run on a GPU (whose model moves the result to its
        tables) draws the same negatives as one on the CPU."""
        users = users.long()
        neg = torch.randint(self.n_items, users.shape, generator=generator)
        todo = self._seen(users, neg) & ~self._full[users]
        for _ in range(100):
            if not bool(todo.any()):
                break
            idx = todo.nonzero().squeeze(1)
            neg[idx] = torch.randint(self.n_items, idx.shape, generator=generator)
            todo[idx] = self._seen(users[idx], neg[idx])
        return neg


def bpr_reg_loss(u0: torch.Tensor, p0: torch.Tensor, n0: torch.Tensor, reg: float) -> torch.Tensor:
    """LightGCN's regulariser: reg * (||u0||^2 + ||p0||^2 + ||n0||^2) / (2 b) on the batch's layer-0 rows."""
    return reg * 0.5 * (u0.pow(2).sum() + p0.pow(2).sum() + n0.pow(2).sum()) / u0.shape[0]


class BPRMF(MFEmbeddings):
    """MF scored by inner products, trained with BPR (one uniform negative per observed pair) plus L2 reg.

    ``generator`` (a torch.Generator) drives negative sampling; a checkpoint saves its state.
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        dim: int,
        reg: float,
        sampler: NegativeSampler,
        *,
        generator: torch.Generator,
        init_std: float = 0.0,
    ) -> None:
        super().__init__(n_users, n_items, dim, generator=generator, init_std=init_std)
        self.reg, self.sampler, self.generator = reg, sampler, generator

    def batch_loss(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        neg = self.sampler.sample(users, self.generator)  # on the CPU, from the CPU's generator
        users, items, neg = self.on_device(users, items, neg)
        u, p, n = self.user[users], self.item[items], self.item[neg]
        return bpr((u * p).sum(1), (u * n).sum(1)) + bpr_reg_loss(u, p, n, self.reg)


class EmbeddingEstimator(ScoringModel):
    """Shared parts of the estimators whose state is E0 = [users; items] scored by inner products."""

    def __init__(
        self,
        train: TrainConfig = TrainConfig(),
        baseline: BaselineConfig = BaselineConfig(),
        eval: EvalConfig = EvalConfig(),
        *,
        seed: int = 2020,
    ) -> None:
        self.train_config, self.baseline, self.eval_config, self.seed = train, baseline, eval, seed

    @classmethod
    def from_config(cls, cfg: RunConfig):
        return cls(cfg.train, cfg.baseline, cfg.eval, seed=cfg.seed)

    def _final_embeddings(self) -> torch.Tensor:
        """The embeddings that score (E0 for MF); subclasses propagate."""
        return self.E0_

    def _set_embeddings(self) -> None:
        E = self._final_embeddings()
        self.user_embeddings_, self.item_embeddings_ = E[: self.n_users_], E[self.n_users_ :]

    def score_fn(self):
        self._check()
        return embedding_scorer(self.user_embeddings_, self.item_embeddings_)

    def stored_weights(self) -> tuple[torch.Tensor, torch.Tensor, dict[str, str]]:
        """What the run directory keeps: E0 split into users and items."""
        return self.E0_[: self.n_users_], self.E0_[self.n_users_ :], {"format": "lightgode-E0"}

    @classmethod
    def from_stored(cls, user: torch.Tensor, item: torch.Tensor, train: Interactions, cfg: RunConfig, ode=None):
        """A fitted model from a run directory's weights and training split (no training)."""
        from lightgode.models.base import no_training_result

        m = cls.from_config(cfg)
        m.E0_ = torch.cat([user, item], dim=0).to(torch.float32)
        m.n_users_ = train.n_users
        m.prepare_graph(train)
        m.result_ = no_training_result()
        m._set_embeddings()
        return m

    def prepare_graph(self, train: Interactions) -> None:
        """Graph state needed for scoring (none for MF)."""

    def _graph_to(self, device: torch.device) -> None:
        """Move the graph state that scoring uses (none for MF) to ``device``."""

    def _validator(self, module, train: Interactions, valid: Interactions | None):
        if valid is None or len(valid) == 0:
            return None
        valid_csr, train_csr = valid.to_csr(), train.to_csr()

        def validate() -> dict[str, float]:
            with torch.no_grad():
                self.E0_ = module.E0()
                self._set_embeddings()
            return full_ranking(self.score_fn(), valid_csr, train_csr, self.eval_config)

        return validate


class MFBPR(EmbeddingEstimator):
    """Estimator ``mf-bpr``: ``fit(train, valid)`` learns E0 with BPR; scores are E0_u . E0_i.

    Attributes after fit: ``E0_`` (n_users + n_items, dim), ``user_embeddings_``, ``item_embeddings_``,
    ``result_`` (TrainResult), ``capped_`` (True when training hit ``baseline.max_train_seconds``).
    """

    def training_module(self, train: Interactions, device: torch.device = torch.device("cpu")) -> torch.nn.Module:
        """The trainable tables on ``device``, initialised on the CPU (the same values on every device)."""
        gen = torch.Generator().manual_seed(self.seed)
        return BPRMF(
            train.n_users,
            train.n_items,
            self.train_config.dim,
            self.baseline.reg,
            NegativeSampler(train),
            generator=gen,
            init_std=self.baseline.init_std,
        ).to(device)

    def fit(
        self,
        train: Interactions,
        valid: Interactions | None = None,
        *,
        show_progress: bool = False,
        on_epoch=None,
        checkpoint=None,
    ):
        device = resolve_device(self.train_config.device)
        self.n_users_ = train.n_users
        self.prepare_graph(train)
        self._graph_to(device)  # training and validation run on the device; the fitted model lives on the CPU
        try:
            module = self.training_module(train, device)
            self.result_ = None  # marks fitting in progress for score_fn during validation
            validate = self._validator(module, train, valid)
            self.result_, self.capped_ = capped_fit(
                module,
                train,
                self.train_config,
                seed=self.seed,
                validate=validate,
                valid_metric=self.eval_config.valid_metric,
                max_seconds=self.baseline.max_train_seconds,
                show_progress=show_progress,
                on_epoch=on_epoch,
                checkpoint=checkpoint,
            )
        finally:
            self._graph_to(torch.device("cpu"))
        self.E0_ = module.E0().cpu().clone()
        self._set_embeddings()
        return self
