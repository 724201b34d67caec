"""LightGODE: DirectAU-trained MF embeddings, then the post-training graph ODE at scoring time."""

from __future__ import annotations

from dataclasses import replace

import scipy.sparse as sp
import torch

from lightgode.core.config import RunConfig, TrainConfig
from lightgode.core.evaluate import EvalConfig, embedding_scorer, full_ranking
from lightgode.core.graph import normalized_adjacency, to_torch
from lightgode.core.ode import ODEConfig, propagate
from lightgode.core.train import TrainResult, fit, resolve_device
from lightgode.data.interactions import Interactions
from lightgode.errors import NotFittedError
from lightgode.models.base import ScoringModel
from lightgode.models.mf import DirectAUMF


class LightGODE(ScoringModel):
    """Estimator: ``fit(train, valid)`` learns E0 with DirectAU; scores use E(T) of the graph ODE.

    Training is matrix factorisation with the DirectAU loss (alignment + ``gamma`` x uniformity), early-stopped on
    validation ``eval.valid_metric`` computed with the ODE applied. After training, E(T) of
    dE/dt = Â E(t) + E0 over the normalised training graph Â gives the scores (inner products of E(T) rows).

    Parameters
    ----------
    train : TrainConfig
        Dimension, learning rate, gamma, batch size, epochs, patience, optimiser, device.
    ode : ODEConfig
        Horizon T and solver of the post-training ODE (``t=0`` scores with E0: DirectAU alone).
    eval : EvalConfig
        Cut-offs, evaluation batch size and the validation metric of early stopping.
    seed : int
        Seeds initialisation and batch order.

    Attributes
    ----------
    E0_ : torch.Tensor, float32, shape (n_users + n_items, dim)
        The trained embeddings (best validation epoch), users first; on the CPU.
    A_hat_ : scipy.sparse.csr_matrix, shape (n_users + n_items, n_users + n_items)
        The normalised training graph D^-1/2 A D^-1/2.
    user_embeddings_, item_embeddings_ : torch.Tensor, float32, shapes (n_users, dim), (n_items, dim)
        The propagated E(T) split into users and items.
    n_users_ : int
    result_ : TrainResult
        Best epoch, its validation metrics, epochs run and the per-epoch history.

    Examples
    --------
    >>> split = prepare_split(DataConfig(data="interactions.csv"), seed=2020)  # doctest: +SKIP
    >>> model = LightGODE(TrainConfig(epochs=20)).fit(split.train, split.valid)  # doctest: +SKIP
    >>> model.evaluate(split.test, [split.train, split.valid])["ndcg@20"]  # doctest: +SKIP
    """

    def __init__(
        self,
        train: TrainConfig = TrainConfig(),
        ode: ODEConfig = ODEConfig(),
        eval: EvalConfig = EvalConfig(),
        *,
        seed: int = 2020,
    ) -> None:
        self.train_config, self.ode, self.eval_config, self.seed = train, ode, eval, seed

    def fit(
        self,
        train: Interactions,
        valid: Interactions | None = None,
        *,
        show_progress: bool = False,
        on_epoch=None,
        checkpoint=None,
    ) -> LightGODE:
        """Train E0 with DirectAU on ``train``, early-stopped on ``valid``, then propagate it with the ODE.

        Parameters
        ----------
        train : Interactions
            The training pairs; their id maps fix n_users and n_items.
        valid : Interactions, optional
            Validation pairs sharing ``train``'s id maps. Without them (or when empty) every epoch runs and the
            last one is kept.
        show_progress : bool
            A progress bar per epoch.
        on_epoch : callable, optional
            Called with each epoch's history row (a dict: epoch, loss, seconds, validation metrics).
        checkpoint : Checkpoint, optional
            Saves the training state every few epochs and resumes from it when it holds one.

        Returns
        -------
        LightGODE
            ``self``, fitted (``E0_``, ``A_hat_``, ``user_embeddings_``, ``item_embeddings_``, ``result_``).

        Raises
        ------
        ConfigError
            A device this machine lacks, an optimiser the model cannot use.
        FitError
            Training produced non-finite values.
        RunDirError
            ``checkpoint`` holds a state of another model.
        """
        device = resolve_device(self.train_config.device)  # training and validation; the fitted model is on the CPU
        n_users, n_items = train.n_users, train.n_items
        self.n_users_ = n_users
        self.A_hat_ = normalized_adjacency(n_users, n_items, train.users, train.items)
        A_t = to_torch(self.A_hat_)
        A_dev = A_t.to(device)
        gen = torch.Generator().manual_seed(self.seed)
        module = DirectAUMF(n_users, n_items, self.train_config.dim, self.train_config.gamma, generator=gen).to(device)
        validate = None
        if valid is not None and len(valid) > 0:
            valid_csr, train_csr = valid.to_csr(), train.to_csr()

            def validate() -> dict[str, float]:
                E = propagate(A_dev, module.E0(), self.ode)
                score = embedding_scorer(E[:n_users], E[n_users:])
                return full_ranking(score, valid_csr, train_csr, self.eval_config)

        self.result_: TrainResult = fit(
            module,
            train.users,
            train.items,
            self.train_config,
            seed=self.seed,
            validate=validate,
            valid_metric=self.eval_config.valid_metric,
            show_progress=show_progress,
            on_epoch=on_epoch,
            checkpoint=checkpoint,
        )
        self.E0_ = module.E0().cpu().clone()
        self._set_embeddings(A_t)
        return self

    @classmethod
    def from_embeddings(
        cls,
        E0: torch.Tensor,
        n_users: int,
        A_hat: sp.csr_matrix,
        ode: ODEConfig = ODEConfig(),
        eval: EvalConfig = EvalConfig(),
    ) -> LightGODE:
        """A fitted model from stored E0 and its training graph (no training).

        Parameters
        ----------
        E0 : torch.Tensor, shape (n_users + n_items, dim)
            Trained embeddings, users first.
        n_users : int
        A_hat : scipy.sparse.csr_matrix, shape (n_users + n_items, n_users + n_items)
            The normalised training graph (``lightgode.core.graph.normalized_adjacency``).
        ode, eval : ODEConfig, EvalConfig

        Returns
        -------
        LightGODE
            Fitted, with E(T) computed; ``result_`` is not set.
        """
        m = cls(ode=ode, eval=eval)
        m.E0_, m.n_users_, m.A_hat_ = E0.to(torch.float32), n_users, A_hat
        m._set_embeddings(to_torch(A_hat))
        return m

    @classmethod
    def from_config(cls, cfg: RunConfig) -> LightGODE:
        """An unfitted model with the run's training, ODE and evaluation settings.

        Parameters
        ----------
        cfg : RunConfig
            Its ``train``, ``ode``, ``eval`` and ``seed`` are used.

        Returns
        -------
        LightGODE
        """
        return cls(cfg.train, cfg.ode, cfg.eval, seed=cfg.seed)

    @classmethod
    def from_stored(
        cls, user: torch.Tensor, item: torch.Tensor, train: Interactions, cfg: RunConfig, ode: ODEConfig | None = None
    ) -> LightGODE:
        """A fitted model from a run directory's E0 (users, items) and training split, propagated with the run's
        ODE settings or with ``ode``.

        Parameters
        ----------
        user, item : torch.Tensor, shapes (n_users, dim), (n_items, dim)
            The stored E0 (``Run.user_embedding``, ``Run.item_embedding``).
        train : Interactions
            The run's training split; the graph Â is built from it.
        cfg : RunConfig
            The run's settings.
        ode : ODEConfig, optional
            Another horizon or solver than the run's.

        Returns
        -------
        LightGODE
        """
        A_hat = normalized_adjacency(train.n_users, train.n_items, train.users, train.items)
        return cls.from_embeddings(torch.cat([user, item], dim=0), train.n_users, A_hat, ode or cfg.ode, cfg.eval)

    def stored_weights(self) -> tuple[torch.Tensor, torch.Tensor, dict[str, str]]:
        """What the run directory keeps: E0 split into users and items.

        Returns
        -------
        user, item : torch.Tensor, float32, shapes (n_users, dim), (n_items, dim)
        meta : dict of str
            The safetensors metadata (``{"format": "lightgode-E0"}``).

        Raises
        ------
        NotFittedError
            Before ``fit``.
        """
        self._check()
        return self.E0_[: self.n_users_], self.E0_[self.n_users_ :], {"format": "lightgode-E0"}

    def with_ode(self, ode: ODEConfig) -> LightGODE:
        """The same trained E0 propagated with another horizon or solver (no retraining).

        Parameters
        ----------
        ode : ODEConfig

        Returns
        -------
        LightGODE
            A new fitted model; ``self`` is unchanged.

        Raises
        ------
        NotFittedError
            Before ``fit``.
        """
        self._check()
        return type(self).from_embeddings(self.E0_, self.n_users_, self.A_hat_, ode, self.eval_config)

    def _set_embeddings(self, A_t: torch.Tensor) -> None:
        E = propagate(A_t, self.E0_, self.ode)
        self.user_embeddings_, self.item_embeddings_ = E[: self.n_users_], E[self.n_users_ :]

    def _check(self) -> None:
        if not hasattr(self, "E0_"):
            raise NotFittedError("this LightGODE model is not fitted yet; call fit() first")

    def score_fn(self):
        """The scoring function of the fitted model: inner products of E(T) rows.

        Returns
        -------
        ScoreFn
            Called with a LongTensor of user indices (b,), returns a float32 tensor of scores (b, n_items).

        Raises
        ------
        NotFittedError
            Before ``fit``.
        """
        self._check()
        return embedding_scorer(self.user_embeddings_, self.item_embeddings_)


class DirectAU(LightGODE):
    """LightGODE's training alone (DirectAU, Wang et al. KDD'22): the ODE horizon is 0, so scores come from E0.

    A stored run is read back with T = 0 unless another ODE is asked for explicitly."""

    @classmethod
    def from_config(cls, cfg: RunConfig) -> DirectAU:
        return cls(cfg.train, replace(cfg.ode, t=0.0), cfg.eval, seed=cfg.seed)

    @classmethod
    def from_stored(
        cls, user: torch.Tensor, item: torch.Tensor, train: Interactions, cfg: RunConfig, ode: ODEConfig | None = None
    ) -> DirectAU:
        return super().from_stored(user, item, train, cfg, ode or replace(cfg.ode, t=0.0))
