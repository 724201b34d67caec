"""What the baseline models share: scoring, evaluation, validation-grid selection and a wall-time-capped fit."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import scipy.sparse as sp
import torch

from lightgode.core.config import TrainConfig
from lightgode.core.evaluate import EvalConfig, ScoreFn, full_ranking
from lightgode.core.train import TrainResult, fit
from lightgode.data.interactions import Interactions
from lightgode.errors import NotFittedError


def exclude_csr(parts: Iterable[Interactions]) -> sp.csr_matrix | None:
    """The union of the interaction sets as one binary CSR (None for no sets)."""
    out = None
    for part in parts:
        out = part.to_csr() if out is None else out + part.to_csr()
    return out


class ScoringModel:
    """Mixin: ``evaluate`` through the shared full-ranking path; subclasses define ``score_fn``."""

    eval_config: EvalConfig

    def score_fn(self) -> ScoreFn:
        raise NotImplementedError

    def _check(self) -> None:
        if not hasattr(self, "result_"):
            raise NotFittedError(f"this {type(self).__name__} model is not fitted yet; call fit() first")

    def evaluate(
        self,
        relevant: Interactions,
        exclude: list[Interactions],
        *,
        show_progress: bool = False,
        desc: str = "evaluate",
    ) -> dict[str, float]:
        """Full-ranking metrics on ``relevant``, masking the items of every set in ``exclude``.

        Parameters
        ----------
        relevant : Interactions
            The held-out pairs (a split's ``valid`` or ``test``); users without any are not counted.
        exclude : list of Interactions
            Pairs never ranked (for test: ``[split.train, split.valid]``).
        show_progress : bool
        desc : str
            Label of the progress bar.

        Returns
        -------
        dict of str to float
            ``"<metric>@<K>"`` (recall, ndcg, precision, hit, mrr... at ``eval.ks``) averaged over users.

        Raises
        ------
        NotFittedError
            Before ``fit``.
        """
        return full_ranking(
            self.score_fn(),
            relevant.to_csr(),
            exclude_csr(exclude),
            self.eval_config,
            show_progress=show_progress,
            desc=desc,
        )


def no_training_result(valid_metrics: dict[str, float] | None = None) -> TrainResult:
    """The TrainResult of a training-free model: no epochs."""
    return TrainResult(best_epoch=0, best_valid=valid_metrics or {}, epochs_run=0, history=[])


def select_on_valid(
    candidates: dict, valid: Interactions | None, train: Interactions, eval_config: EvalConfig
) -> tuple[object, dict[str, float], dict[object, float]]:
    """The key of the best candidate score function on validation ``eval_config.valid_metric``.

    Parameters
    ----------
    candidates : dict key -> zero-argument callable returning a ScoreFn (built lazily, one at a time)

    Returns (best key, its validation metrics, {key: metric value}). Without validation data the first
    candidate is kept.
    """
    keys = list(candidates)
    if valid is None or len(valid) == 0 or len(keys) == 1:
        return keys[0], {}, {}
    valid_csr, train_csr = valid.to_csr(), train.to_csr()
    best, best_metrics, table = keys[0], {}, {}
    for key in keys:
        metrics = full_ranking(candidates[key](), valid_csr, train_csr, eval_config)
        table[key] = metrics[eval_config.valid_metric]
        if not best_metrics or table[key] > best_metrics[eval_config.valid_metric]:
            best, best_metrics = key, metrics
    return best, best_metrics, table


def capped_fit(
    module: torch.nn.Module,
    train: Interactions,
    config: TrainConfig,
    *,
    seed: int,
    validate: Callable[[], dict[str, float]] | None,
    valid_metric: str,
    max_seconds: float,
    show_progress: bool = False,
    on_epoch=None,
    checkpoint=None,
) -> tuple[TrainResult, bool]:
    """``train.fit`` with an optional wall-time cap; returns (result, capped).

    The cap counts the training and validation seconds of every epoch in the history, so a run resumed from its
    checkpoint goes on with what is left of its budget. When the cap is reached at the end of an epoch, training
    stops and the module keeps its best validated epoch, the epochs before an interruption included.
    """
    kwargs = {"checkpoint": checkpoint} if checkpoint is not None else {}
    if max_seconds <= 0:
        res = fit(
            module,
            train.users,
            train.items,
            config,
            seed=seed,
            validate=validate,
            valid_metric=valid_metric,
            show_progress=show_progress,
            on_epoch=on_epoch,
            **kwargs,
        )
        return res, False

    def spent(history: list[dict[str, float]]) -> bool:
        return sum(r.get("train_seconds", 0.0) + r.get("valid_seconds", 0.0) for r in history) >= max_seconds

    res = fit(
        module,
        train.users,
        train.items,
        config,
        seed=seed,
        validate=validate,
        valid_metric=valid_metric,
        show_progress=show_progress,
        on_epoch=on_epoch,
        stop_when=spent,
        **kwargs,
    )
    return res, not res.stopped_early and res.epochs_run < config.epochs
