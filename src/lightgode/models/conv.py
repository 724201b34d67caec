"""``mf-conv``: a trained MF (BPR or DirectAU) plus L discrete LightGCN layers applied after training only.

The paper's "post-training graph convolution": E(L) = (E0 + Â E0 + ... + Â^L E0) / (L + 1) with no parameter
learned through the layers. L = 0 is the MF itself. Several L are a validation grid, chosen after training.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from lightgode.core.config import BaselineConfig, RunConfig, TrainConfig
from lightgode.core.evaluate import EvalConfig, embedding_scorer
from lightgode.core.graph import normalized_adjacency, to_torch
from lightgode.core.ode import ODEConfig
from lightgode.core.train import TrainResult
from lightgode.data.interactions import Interactions
from lightgode.models.base import no_training_result, select_on_valid
from lightgode.models.bpr import MFBPR, EmbeddingEstimator
from lightgode.models.lightgcn import layer_mean


class MFConv(EmbeddingEstimator):
    """Estimator ``mf-conv``. ``fit`` trains the base MF (``baseline.conv_base``) unless :meth:`with_base`
    supplied trained E0, then picks L from ``baseline.layers`` on validation NDCG@20.

    Attributes after fit: ``E0_`` (the base MF's embeddings), ``layers_`` (chosen L), ``valid_by_layers_``
    ({L: validation metric}), ``selected_`` (the chosen setting as a config override), ``user_embeddings_``,
    ``item_embeddings_`` (E(L)), ``result_`` (the base's training result), ``A_hat_``.
    """

    def __init__(
        self,
        train: TrainConfig = TrainConfig(),
        baseline: BaselineConfig = BaselineConfig(),
        eval: EvalConfig = EvalConfig(),
        *,
        seed: int = 2020,
    ) -> None:
        super().__init__(train, baseline, eval, seed=seed)
        self._base: tuple[torch.Tensor, TrainResult] | None = None

    def with_base(self, E0: torch.Tensor, result: TrainResult | None = None) -> MFConv:
        """Use already-trained base embeddings E0 (n_users + n_items, d); ``fit`` then trains nothing."""
        self._base = (E0.detach().to(torch.float32), result or no_training_result())
        return self

    def _train_base(
        self, train: Interactions, valid: Interactions | None, show_progress: bool, on_epoch, checkpoint
    ) -> tuple[torch.Tensor, TrainResult]:
        kwargs = dict(show_progress=show_progress, on_epoch=on_epoch)
        if checkpoint is not None:
            kwargs["checkpoint"] = checkpoint
        if self.baseline.conv_base == "directau":
            from lightgode.models.lightgode import LightGODE

            base = LightGODE(self.train_config, ODEConfig(t=0.0), self.eval_config, seed=self.seed)
        else:
            base = MFBPR(self.train_config, self.baseline, self.eval_config, seed=self.seed)
        base.fit(train, valid, **kwargs)
        self.capped_ = bool(getattr(base, "capped_", False))
        return base.E0_, base.result_

    def prepare_graph(self, train: Interactions) -> None:
        self.A_hat_ = to_torch(normalized_adjacency(train.n_users, train.n_items, train.users, train.items))

    @property
    def layers(self) -> int:
        return int(getattr(self, "layers_", self.baseline.layers[0]))

    def _final_embeddings(self) -> torch.Tensor:
        with torch.no_grad():
            return layer_mean(self.A_hat_, self.E0_, self.layers)

    def fit(
        self,
        train: Interactions,
        valid: Interactions | None = None,
        *,
        show_progress: bool = False,
        on_epoch=None,
        checkpoint=None,
    ) -> MFConv:
        self.n_users_ = train.n_users
        self.capped_ = False
        E0, result = (
            self._base
            if self._base is not None
            else self._train_base(train, valid, show_progress, on_epoch, checkpoint)
        )
        self.E0_ = E0
        self.prepare_graph(train)
        nu = train.n_users

        def scorer(L: int):
            def make():
                with torch.no_grad():
                    E = layer_mean(self.A_hat_, self.E0_, L)
                return embedding_scorer(E[:nu], E[nu:])

            return make

        layers = sorted({int(x) for x in self.baseline.layers})
        best, _, table = select_on_valid({L: scorer(L) for L in layers}, valid, train, self.eval_config)
        self.layers_, self.valid_by_layers_ = int(best), table
        self.selected_ = {"baseline": {"layers": [self.layers_]}}
        self.result_ = result
        self._set_embeddings()
        return self

    @classmethod
    def from_stored(
        cls, user: torch.Tensor, item: torch.Tensor, train: Interactions, cfg: RunConfig, ode=None
    ) -> MFConv:
        m = super().from_stored(user, item, train, cfg, ode)
        m.layers_ = int(cfg.baseline.layers[0])
        m._set_embeddings()
        return m

    def with_layers(self, layers: int) -> MFConv:
        """The same base embeddings with another number of post-training layers (no retraining)."""
        self._check()
        m = type(self)(
            self.train_config, replace(self.baseline, layers=(int(layers),)), self.eval_config, seed=self.seed
        )
        m.E0_, m.n_users_, m.A_hat_, m.result_, m.layers_ = self.E0_, self.n_users_, self.A_hat_, self.result_, layers
        m._set_embeddings()
        return m
