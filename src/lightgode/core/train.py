"""One training loop for every embedding model: batches, epochs, early stopping, best state, progress."""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch
from tqdm.auto import tqdm

from lightgode.core.checkpoint import Checkpoint, TrainState
from lightgode.core.config import TrainConfig, check_device_name
from lightgode.core.optim import RowAdam
from lightgode.errors import ConfigError, FitError, RunDirError

log = logging.getLogger(__name__)


class Trainable(Protocol):
    """What the loop needs of a model: parameters, state, and the gradients of a batch of observed pairs."""

    def parameters(self): ...
    def state_dict(self): ...
    def load_state_dict(self, state): ...
    def compute_grads(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor: ...


def resolve_device(name: str) -> torch.device:
    """The torch device a ``TrainConfig.device`` names; "auto" is the GPU when CUDA is available, else the CPU.

    A device this machine lacks is a ConfigError (one line), before any data is read or model built.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    check_device_name(name)
    d = torch.device(name)
    if d.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device {name} asked for, but this torch ({torch.__version__}) sees no CUDA GPU; use --device cpu"
            )
        if d.index is not None and d.index >= torch.cuda.device_count():
            raise ConfigError(f"device {name} asked for, but there are {torch.cuda.device_count()} CUDA GPUs")
    return d


def params_device(model: Trainable) -> torch.device:
    """The device of a model's first parameter (the CPU for a model without parameters)."""
    return next((p.device for p in model.parameters()), torch.device("cpu"))


Validate = Callable[[], dict[str, float]]
"""Scores the model's current state on validation data (metric name -> value)."""


@dataclass
class TrainResult:
    best_epoch: int  # 1-based epoch of the best validation metric (last epoch when there is no validation)
    best_valid: dict[str, float]  # validation metrics at the best epoch
    epochs_run: int
    history: list[dict[str, float]] = field(default_factory=list)  # one row per epoch
    stopped_early: bool = False


def fit(
    model: Trainable,
    users: np.ndarray,
    items: np.ndarray,
    config: TrainConfig,
    *,
    seed: int,
    validate: Validate | None = None,
    valid_metric: str = "ndcg@20",
    show_progress: bool = False,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    checkpoint: Checkpoint | None = None,
    stop_when: Callable[[list[dict[str, float]]], bool] | None = None,
) -> TrainResult:
    """Train ``model`` on observed (user, item) pairs with Adam, early stopping on ``valid_metric``.

    Each epoch visits every pair once in a fresh seeded random order (``config.sampling`` "pairs"), or draws as
    many pairs user-first, as LightGCN's reference does ("users", :func:`epoch_order`), in batches of
    ``config.batch_size``.
    Validation runs after every ``config.valid_every``-th epoch and after the last; training stops once
    ``config.patience`` epochs have passed since the best validated epoch. After training, the model holds the
    state of its best validation epoch.

    Training runs where the model's parameters are (``resolve_device``, then ``model.to``): the batch's indices
    are made on the CPU, from the CPU's generators as every other random draw (negatives included), and the model
    moves them to its tables; so a run on a GPU sees the same batches and negatives as one on the CPU.

    With ``checkpoint``, the whole loop state is saved after every ``checkpoint.every`` epochs and, when the
    checkpoint file exists at the start, training continues from it exactly.

    ``stop_when`` sees the whole history after every epoch (a resumed run's earlier epochs included) and ends
    training there when it returns True (a wall-time cap); the model then holds its best validated epoch, as
    after early stopping, with ``stopped_early`` False. Without validation the model keeps its last epoch.
    """
    gen = np.random.default_rng(seed)
    u_all = torch.from_numpy(np.asarray(users, dtype=np.int64))
    i_all = torch.from_numpy(np.asarray(items, dtype=np.int64))
    n = len(u_all)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = make_optimizer(model, params, config)
    best_value, best_epoch, best_valid, best_state = -math.inf, 0, {}, None
    history: list[dict[str, float]] = []
    bad_epochs = 0
    first_epoch = 1
    module_gen: torch.Generator | None = getattr(model, "generator", None)
    if checkpoint is not None and checkpoint.exists():
        state = checkpoint.load()
        _restore(model, opt, gen, module_gen, state, checkpoint)
        best_value, best_epoch, best_valid, best_state = (
            state.best_value,
            state.best_epoch,
            state.best_valid,
            state.best_state,
        )
        history, bad_epochs, first_epoch = state.history, state.bad_epochs, state.epoch + 1
        log.info("resumed from %s after epoch %d", checkpoint.path, state.epoch)
        if validate is not None and bad_epochs >= config.patience and best_state is not None:
            model.load_state_dict(best_state)
            return TrainResult(best_epoch, best_valid, state.epoch, history, stopped_early=True)
        if stop_when is not None and history and stop_when(history):
            return _finish(model, best_state, best_epoch, best_valid, history)
    epochs = tqdm(
        range(first_epoch, config.epochs + 1),
        desc="epochs",
        unit="epoch",
        disable=not show_progress,
        initial=first_epoch - 1,
        total=config.epochs,
    )
    order = epoch_order(u_all.numpy(), config.sampling)
    u_np, i_np = u_all.numpy(), i_all.numpy()
    on_cpu = params_device(model).type == "cpu"
    for epoch in epochs:
        t0 = time.perf_counter()
        perm = order(gen)
        total: float | torch.Tensor = 0.0
        for start in range(0, n, config.batch_size):
            idx = perm[start : start + config.batch_size]  # numpy gathers: a step's fixed costs matter at batch 256
            loss = model.compute_grads(torch.from_numpy(u_np[idx]), torch.from_numpy(i_np[idx]))
            opt.step()
            # on a GPU the sum stays there: reading each step's loss would wait for the device every step
            total += float(loss) * len(idx) if on_cpu else loss.detach().double() * len(idx)
        if isinstance(opt, RowAdam):
            opt.flush()  # rows not in the last batches move on their moments, as in dense Adam
        mean_loss = float(total) / max(n, 1)
        train_seconds = time.perf_counter() - t0
        if not math.isfinite(mean_loss) or not all(bool(torch.isfinite(p).all()) for p in params):
            what = f"loss is {mean_loss}" if not math.isfinite(mean_loss) else "an embedding is not finite"
            if best_state is not None:
                model.load_state_dict(best_state)
            kept = f"kept the best epoch, {best_epoch}" if best_state is not None else "no epoch to keep"
            raise FitError(
                f"training diverged at epoch {epoch}: {what}; try a smaller learning rate ({kept}"
                f"{', whose checkpoint stays on disk' if checkpoint is not None and best_state else ''})"
            )
        row: dict[str, float] = {"epoch": epoch, "loss": mean_loss, "train_seconds": train_seconds}
        validated = validate is not None and (epoch % config.valid_every == 0 or epoch == config.epochs)
        value: float | None = None
        if validated:
            t1 = time.perf_counter()
            metrics = validate()
            row.update({f"valid_{k}": v for k, v in metrics.items()})
            row["valid_seconds"] = time.perf_counter() - t1
            value = metrics[valid_metric]
        elif validate is None:
            best_epoch = epoch  # no validation: the model keeps its last epoch
        history.append(row)
        if on_epoch is not None:
            on_epoch(row)
        if value is not None:
            if value > best_value:
                best_value, best_epoch, best_valid = value, epoch, metrics
                best_state = copy.deepcopy(model.state_dict())
            bad_epochs = epoch - best_epoch  # epochs since the best, whether or not each one was validated
        stop = validated and bad_epochs >= config.patience
        halt = not stop and stop_when is not None and stop_when(history)
        if checkpoint is not None and (epoch % checkpoint.every == 0 or stop or halt or epoch == config.epochs):
            checkpoint.save(
                TrainState(
                    epoch=epoch,
                    model=model.state_dict(),
                    optimizer=opt.state_dict(),
                    best_state=best_state,
                    best_value=best_value,
                    best_epoch=best_epoch,
                    best_valid=best_valid,
                    bad_epochs=bad_epochs,
                    history=history,
                    numpy_rng=gen.bit_generator.state,
                    torch_rng=torch.get_rng_state(),
                    module_rng=module_gen.get_state() if module_gen is not None else None,
                )
            )
        shown = {valid_metric: f"{value:.4f}"} if validated else {}
        epochs.set_postfix(loss=f"{mean_loss:.4f}", **shown, best=best_epoch)
        log.info("epoch %d loss %.5f %s", epoch, mean_loss, f"{valid_metric} {value:.5f}" if validated else "")
        if stop:
            model.load_state_dict(best_state)
            return TrainResult(best_epoch, best_valid, epoch, history, stopped_early=True)
        if halt:
            break
    return _finish(model, best_state, best_epoch, best_valid, history)


def _finish(
    model: Trainable,
    best_state: dict | None,
    best_epoch: int,
    best_valid: dict[str, float],
    history: list[dict[str, float]],
) -> TrainResult:
    """The result of a loop that ran out of epochs or was stopped by ``stop_when``: the best validated state."""
    if best_state is not None:
        model.load_state_dict(best_state)
    return TrainResult(best_epoch, best_valid, len(history), history)


def epoch_order(users: np.ndarray, sampling: str) -> Callable[[np.random.Generator], np.ndarray]:
    """How an epoch picks its pairs: a function of the seeded generator giving one epoch's pair indices, in order.

    ``pairs``: a permutation of all pairs. ``users``: as many draws as pairs, each a user drawn uniformly (with
    replacement) among users with pairs, then one of that user's pairs uniformly (LightGCN's reference sampler).
    """
    n = len(users)
    if sampling == "pairs" or n == 0:
        return lambda gen: gen.permutation(n)
    by_user = np.argsort(users, kind="stable")
    counts = np.bincount(users)
    active = np.flatnonzero(counts)
    starts = (np.cumsum(counts) - counts)[active]
    degree = counts[active]

    def draw(gen: np.random.Generator) -> np.ndarray:
        pick = gen.integers(0, len(active), size=n)
        offset = np.minimum((gen.random(n) * degree[pick]).astype(np.int64), degree[pick] - 1)
        return by_user[starts[pick] + offset]

    return draw


def make_optimizer(model: Trainable, params: list[torch.Tensor], config: TrainConfig) -> torch.optim.Optimizer:
    """The optimiser ``config.optimizer`` names; "adam" is :class:`RowAdam` where that gives the same weights cheaper.

    That is: the model gives row-sparse gradients (DirectAU training, one process or data-parallel) of float32 CPU
    tables and there is no weight decay (which would give every row a gradient each step). Otherwise, and for
    "dense-adam", torch's fused Adam. The optimiser :func:`fit` uses; public for benchmarks that time a step.

    Parameters
    ----------
    model : Trainable
        The module being trained; switched to row-sparse gradients for RowAdam and sparse-adam.
    params : list of torch.Tensor
        Its parameters.
    config : TrainConfig
        ``optimizer``, ``lr`` and ``weight_decay`` are used.

    Returns
    -------
    torch.optim.Optimizer

    Raises
    ------
    ConfigError
        sparse-adam for a model without row-sparse gradients.
    """
    row_sparse = hasattr(model, "use_sparse_grads") and all(
        p.device.type == "cpu" and p.dtype == torch.float32 for p in params
    )
    if config.optimizer == "adam" and config.weight_decay == 0 and row_sparse:
        opt = RowAdam(params, lr=config.lr)
        model.use_sparse_grads(before_read=opt.catch_up)
        return opt
    if config.optimizer == "sparse-adam":
        if not hasattr(model, "use_sparse_grads"):
            raise ConfigError(
                f"optimizer sparse-adam needs row-sparse gradients, which {type(model).__name__} does "
                f"not give (only DirectAU training: lightgode, directau); use adam"
            )
        model.use_sparse_grads()
        return torch.optim.SparseAdam(params, lr=config.lr)
    # One fused kernel per step: the same Adam (with coupled L2 weight decay) as the reference, fewer passes.
    return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay, fused=True)


def _restore(
    model: Trainable,
    opt: torch.optim.Optimizer,
    gen: np.random.Generator,
    module_gen: torch.Generator | None,
    state: TrainState,
    checkpoint: Checkpoint,
) -> None:
    """Load a checkpoint's model, optimiser and random states; a mismatch is a RunDirError."""
    try:
        model.load_state_dict(state.model)
        opt.load_state_dict(state.optimizer)
    except (RuntimeError, ValueError, KeyError) as exc:
        raise RunDirError(
            f"checkpoint {checkpoint.path} does not match this model: {str(exc).splitlines()[0]}"
        ) from None
    gen.bit_generator.state = state.numpy_rng
    torch.set_rng_state(state.torch_rng)
    if module_gen is not None and state.module_rng is not None:
        module_gen.set_state(state.module_rng)
