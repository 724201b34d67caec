"""End-to-end runs: data -> filter -> split -> fit -> evaluate -> run directory. The CLI calls these."""

from __future__ import annotations

import importlib.metadata
import logging
import platform
import resource
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lightgode.atomic import is_write_error, os_error_message
from lightgode.core.checkpoint import Checkpoint
from lightgode.core.config import DataConfig, RunConfig
from lightgode.core.ode import ODEConfig
from lightgode.core.train import resolve_device
from lightgode.data.datasets import DATASETS, load_dataset, load_train_test
from lightgode.data.filters import filter_kcore
from lightgode.data.interactions import Interactions
from lightgode.data.split import (
    Split,
    restrict_given,
    save_split,
    split_given,
    split_leave_one_out,
    split_random,
    split_temporal,
)
from lightgode.errors import ConfigError, DataError, OutputError, RunDirError
from lightgode.models import build_model, model_from_weights
from lightgode.models.lightgode import LightGODE
from lightgode.runs import store as artifacts

log = logging.getLogger(__name__)


def dataset_name(data: str) -> str | None:
    """The registry name when ``data`` names a known dataset, else None (a path)."""
    return data if data in DATASETS else None


def prepare_split(cfg: DataConfig, seed: int, *, env_data_dir: str | None = None) -> Split:
    """Read, k-core filter and split the data as configured.

    Split "given" takes a fixed pair: ``cfg.data`` and ``cfg.test`` (files of one's own), or a named dataset
    with fixed train/test files (gowalla). Its train part is k-core filtered alone; test rows whose user or item
    is then not in train are dropped and counted in a warning (``restrict_given``); validation is carved per user
    from train with the share ``cfg.ratios[1]``.

    Parameters
    ----------
    cfg : DataConfig
        The data (a named dataset or a file, and ``test`` for a fixed pair), reader options, ``kcore``,
        ``split`` and ``ratios``.
    seed : int
        Seed of the random splits (the same seed gives the same split).
    env_data_dir : str, optional
        A folder searched for named datasets after ``cfg.data_dir`` (the CLI passes ``$LIGHTGODE_DATA``).

    Returns
    -------
    Split
        ``train``, ``valid`` and ``test`` Interactions sharing one pair of id maps.

    Raises
    ------
    DataError
        A missing or malformed file, an unknown dataset, a split that leaves no training pairs.
    ConfigError
        Reader options that do not apply to the format.
    """
    opts = cfg.reader_options()
    if cfg.split == "given":
        train, test = _given_pair(cfg, opts, env_data_dir)
        train, test = restrict_given(train, test, cfg.kcore)
        return split_given(train, test, valid_ratio=cfg.ratios[1], seed=seed)
    inter: Interactions = load_dataset(
        cfg.data, data_dir=cfg.data_dir, env_data_dir=env_data_dir, fmt=cfg.format, **opts
    )
    if cfg.kcore > 0:
        inter = filter_kcore(inter, cfg.kcore, cfg.kcore)
    if cfg.split == "random":
        return split_random(inter, cfg.ratios, seed=seed)
    if cfg.split == "temporal":
        return split_temporal(inter, cfg.ratios)
    return split_leave_one_out(inter)


def _given_pair(cfg: DataConfig, opts: dict[str, Any], env_data_dir: str | None) -> tuple[Interactions, Interactions]:
    """The (train, test) pair of split "given", sharing id maps, each file as read."""
    fixed = [n for n, files in DATASETS.items() if not isinstance(files, str)]
    if cfg.test is not None:
        if cfg.data in DATASETS:
            raise ConfigError(
                f"a test file needs the training file as data (--data TRAIN --test TEST); {cfg.data} is a named dataset"
            )
        return load_train_test(cfg.data, cfg.test, fmt=cfg.format, **opts)
    if cfg.data not in fixed:
        raise ConfigError(
            f"split 'given' needs a test file (--test TEST) beside the training file, or a dataset "
            f"with fixed train/test files ({', '.join(fixed)}); {cfg.data} is one file"
        )
    return load_dataset(
        cfg.data, given_split=True, data_dir=cfg.data_dir, env_data_dir=env_data_dir, fmt=cfg.format, **opts
    )


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("lightgode", "torch", "numpy", "scipy", "torchdiffeq", "safetensors"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = "unknown"
    return out


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def training_device(cfg: RunConfig) -> torch.device:
    """Where ``cfg``'s model trains: its ``train.device``, or the CPU for the training-free models (pop, gf-cf, bspm
    compute with scipy), which say so when another device was asked for."""
    from lightgode.models import TRAINING_FREE

    if cfg.model in TRAINING_FREE:
        if cfg.train.device != "cpu":
            log.warning(
                "%s has no training and computes on the CPU; device %s is not used", cfg.model, cfg.train.device
            )
        return torch.device("cpu")
    return resolve_device(cfg.train.device)


def device_name(device: torch.device) -> str:
    """How train.json names where a run trained: "cpu", or "cuda:0 (NVIDIA H200)"."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return str(device)


def split_stats(split: Split) -> dict[str, int]:
    return {
        "users": split.train.n_users,
        "items": split.train.n_items,
        "train": len(split.train),
        "valid": len(split.valid),
        "test": len(split.test),
    }


@dataclass
class RunSummary:
    """What :func:`train_run` returns.

    Attributes
    ----------
    out : Path or None
        The run directory written (None when none was asked for).
    metrics : dict
        ``{"valid": {"ndcg@20": ..., ...}, "test": {...}}``, as ``metrics.json``.
    info : dict
        What ``train.json`` records: dataset sizes, best epoch, epochs run, seconds, peak memory, device.
    """

    out: Path | None
    metrics: dict[str, dict[str, float]]
    info: dict[str, Any]


def checkpoint_dir(out: Path) -> Path:
    """Where an unfinished run keeps its settings and per-epoch checkpoint: ``<out>.ckpt``."""
    return out.with_name(out.name + ".ckpt")


def resume_config(out: Path) -> RunConfig:
    """The settings of the interrupted run that was writing ``out``."""
    ckpt = checkpoint_dir(out)
    if not (ckpt / "config.json").is_file():
        if (out / artifacts.MARKER).is_file():
            raise RunDirError(f"{out} is already complete; there is nothing to resume")
        raise RunDirError(f"no interrupted run to resume at {out} (no {ckpt}/config.json)")
    return artifacts.parse_config(artifacts.read_json(ckpt / "config.json"), ckpt / "config.json")


def _check_checkpoint(out: Path, overwrite: bool) -> None:
    """Refuse to start again over an interrupted run's checkpoint unless asked (before any work is done)."""
    ckpt = checkpoint_dir(out)
    if ckpt.exists() and not overwrite:
        raise RunDirError(
            f"an interrupted run of {out} left a checkpoint in {ckpt}; continue it with "
            f"--resume {out}, or pass --overwrite to start again"
        )


def _start_checkpoint(cfg: RunConfig, out: Path, overwrite: bool, resume: bool, every: int) -> Checkpoint:
    """The run's checkpoint in ``<out>.ckpt``; a new run writes its settings there (after its data was read)."""
    ckpt = checkpoint_dir(out)
    if not resume:
        _check_checkpoint(out, overwrite)
        shutil.rmtree(ckpt, ignore_errors=True)
        artifacts.write_json(ckpt / "config.json", cfg.to_dict())
    return Checkpoint(ckpt / "state.safetensors", every=every)


def run_info(cfg: RunConfig, split, res, *, seconds: dict[str, float], t_start: float, peak_mb: float) -> dict:
    """The ``train.json`` record of a finished fit: data sizes, epochs, timings (``seconds`` plus the
    per-epoch sums from the history and the total since ``t_start``) and peak memory."""
    history = res.history
    return {
        "model": cfg.model,
        "dataset": split_stats(split),
        "best_epoch": res.best_epoch,
        "epochs_run": res.epochs_run,
        "stopped_early": res.stopped_early,
        "seconds": {
            **seconds,
            "train_epochs": float(sum(r["train_seconds"] for r in history)),
            "validation": float(sum(r.get("valid_seconds", 0.0) for r in history)),
            "total": time.perf_counter() - t_start,
        },
        "seconds_per_epoch": float(np.mean([r["train_seconds"] for r in history])) if history else 0.0,
        "peak_rss_mb": peak_mb,
    }


def train_run(
    cfg: RunConfig,
    out: Path | None,
    *,
    env_data_dir: str | None = None,
    overwrite: bool = False,
    show_progress: bool = False,
    on_epoch: Callable[[dict], None] | None = None,
    resume: bool = False,
    checkpoint_every: int = 1,
) -> RunSummary:
    """Train one model and evaluate it on validation and test; write the run directory when ``out`` is set.

    The whole of ``lightgode train``: read and split the data (:func:`prepare_split`), fit ``cfg.model``, choose T
    on validation when ``cfg.t_auto``, evaluate, write. Test metrics come from the best-validation epoch, read
    once at the end. With ``out``, the training state is checkpointed in ``<out>.ckpt`` every
    ``checkpoint_every`` epochs (0: never) and ``resume=True`` continues an interrupted run from there (``cfg``
    should then be :func:`resume_config`); the checkpoint is removed once the run directory is complete.

    ``out`` is checked before anything else (``artifacts.check_out_dir``) and locked for the whole run, so a
    second run of the same ``out`` is refused at once ("busy"); the checkpoint folder is made only once the data
    has been read and split, and removed again when the run fails before saving an epoch.

    Parameters
    ----------
    cfg : RunConfig
        Every setting of the run.
    out : str or path, optional
        The run directory to write (complete or absent: config.json, metrics.json, train.json, history.csv,
        split/, weights.safetensors); None trains and evaluates only.
    env_data_dir : str, optional
        A folder searched for named datasets (the CLI passes ``$LIGHTGODE_DATA``).
    overwrite : bool
        Replace an existing ``out`` (and an interrupted run's checkpoint).
    show_progress : bool
        Progress bars.
    on_epoch : callable, optional
        Called with each epoch's history row (a dict).
    resume : bool
        Continue the interrupted run of ``out`` from its checkpoint.
    checkpoint_every : int
        Epochs between checkpoints; 0 never checkpoints.

    Returns
    -------
    RunSummary
        The run directory, the validation and test metrics and the training record.

    Raises
    ------
    OutputError
        ``out`` exists (without ``overwrite``), cannot be written, or another run is writing it.
    RunDirError
        An interrupted run's checkpoint at ``out`` (without ``overwrite`` or ``resume``); nothing to resume.
    DataError, ConfigError
        Bad data or settings (:func:`prepare_split`), a device this machine lacks.
    """
    t_start = time.perf_counter()
    device = training_device(cfg)  # a device this machine lacks fails before anything is written
    if resume and out is None:
        raise RunDirError("resume needs the run directory of the interrupted run")
    if out is None:
        return _train(
            cfg,
            None,
            device,
            t_start,
            env_data_dir=env_data_dir,
            overwrite=overwrite,
            show_progress=show_progress,
            on_epoch=on_epoch,
            resume=False,
            checkpoint_every=0,
        )
    from lightgode.atomic import make_parents, remove_dirs
    from lightgode.locks import target_lock

    out = Path(out)
    artifacts.check_out_dir(out, overwrite or resume)
    if not resume and checkpoint_every > 0:
        _check_checkpoint(out, overwrite)
    created = make_parents(out)
    done = False
    try:
        with target_lock(out):
            if not resume:  # again, now that no other writer of ``out`` runs
                artifacts.check_out_dir(out, overwrite)
            summary = _train(
                cfg,
                out,
                device,
                t_start,
                env_data_dir=env_data_dir,
                overwrite=overwrite,
                show_progress=show_progress,
                on_epoch=on_epoch,
                resume=resume,
                checkpoint_every=checkpoint_every,
            )
        done = True
        return summary
    finally:
        if not done:
            remove_dirs(created)


def _train(
    cfg: RunConfig,
    out: Path | None,
    device: torch.device,
    t_start: float,
    *,
    env_data_dir: str | None,
    overwrite: bool,
    show_progress: bool,
    on_epoch: Callable[[dict], None] | None,
    resume: bool,
    checkpoint_every: int,
) -> RunSummary:
    """:func:`train_run` once ``out`` is checked and locked."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    split = prepare_split(cfg.data, cfg.seed, env_data_dir=env_data_dir)
    if len(split.train) == 0:
        raise DataError("the split left no training interactions")
    t_data = time.perf_counter() - t_start
    checkpoint = None
    try:
        if out is not None and (checkpoint_every > 0 or resume):
            checkpoint = _start_checkpoint(cfg, out, overwrite, resume, checkpoint_every)
        model = build_model(cfg)
        t0 = time.perf_counter()
        fit_kwargs = {"checkpoint": checkpoint} if checkpoint is not None else {}
        model.fit(
            split.train,
            split.valid if len(split.valid) else None,
            show_progress=show_progress,
            on_epoch=on_epoch,
            **fit_kwargs,
        )
        t_fit = time.perf_counter() - t0
        tuned = None
        if cfg.t_auto:  # choose T on validation with E0 fixed (tune.py); ode.t served early stopping only
            from lightgode.core.tune import tune_fitted

            model, cfg, tuned = tune_fitted(model, split, cfg)
        t1 = time.perf_counter()
        metrics = evaluate_model(model, split, show_progress=show_progress)
        t_eval = time.perf_counter() - t1
        info = run_info(
            cfg,
            split,
            model.result_,
            seconds={"data": t_data, "fit": t_fit, "evaluate": t_eval},
            t_start=t_start,
            peak_mb=peak_rss_mb(),
        )
        info.update(model_notes(model))
        info["device"] = device_name(device)
        if tuned is not None:
            info["tune"] = {k: v for k, v in tuned.to_dict().items() if k != "points"}
        if out is not None:
            write_run(out, cfg, split, model, metrics, info)
            if tuned is not None:
                from lightgode.runs.tuned import write_tuned_run

                write_tuned_run(out, None, metrics, tuned, title=f"{cfg.data.data} seed {cfg.seed}")
            shutil.rmtree(checkpoint_dir(out), ignore_errors=True)
    except BaseException as exc:
        kept = out is not None and _drop_unused_checkpoint(out, checkpoint, resume)
        if isinstance(exc, OutputError) or is_write_error(exc):
            where = checkpoint.path if checkpoint is not None else out
            msg = str(exc) if isinstance(exc, OutputError) else os_error_message(exc, where)
            if kept:
                msg += f"; the last checkpoint is kept: continue with `lightgode train --resume {out}`"
            raise OutputError(msg) from None
        raise
    return RunSummary(out, metrics, info)


def _drop_unused_checkpoint(out: Path, checkpoint: Checkpoint | None, resume: bool) -> bool:
    """After a failure: remove a checkpoint folder this run made that holds no saved epoch (only its settings),
    so that a retry starts clean. True when a saved epoch is kept for ``--resume``."""
    if checkpoint is None:
        return False
    if checkpoint.exists():
        return True
    if not resume:
        shutil.rmtree(checkpoint_dir(out), ignore_errors=True)
    return False


def evaluate_model(model: LightGODE, split: Split, *, show_progress: bool = False) -> dict[str, dict[str, float]]:
    """Validation metrics (training items masked) and test metrics (training and validation items masked)."""
    metrics: dict[str, dict[str, float]] = {}
    if len(split.valid):
        metrics["valid"] = model.evaluate(split.valid, [split.train], show_progress=show_progress, desc="valid")
    if len(split.test):
        metrics["test"] = model.evaluate(
            split.test, [split.train, split.valid], show_progress=show_progress, desc="test"
        )
    return metrics


def model_notes(model) -> dict[str, Any]:
    """What a baseline reports beyond the training result: settings chosen on validation, a wall-time cap."""
    notes: dict[str, Any] = {}
    if getattr(model, "selected_", None):
        notes["selected"] = model.selected_
    if hasattr(model, "capped_"):
        notes["capped"] = bool(model.capped_)
    return notes


def write_run(
    out: Path, cfg: RunConfig, split: Split, model: LightGODE, metrics: dict, info: dict, *, overwrite: bool = True
) -> None:
    """Write the run directory ``out`` (``artifacts.staged``: complete or absent; replaces an old run unless
    ``overwrite`` is off)."""
    with artifacts.staged(out, overwrite=overwrite) as staging:
        if getattr(model, "selected_", None):
            cfg = cfg.override(model.selected_)  # the run keeps the settings chosen on validation
        config = cfg.to_dict() | {"versions": package_versions()}
        artifacts.write_json(staging / "config.json", config)
        save_split(split, staging / "split")
        user_w, item_w, meta = model.stored_weights()
        artifacts.save_weights(staging / "weights.safetensors", user_w, item_w, meta)
        artifacts.write_history(staging / "history.csv", model.result_.history)
        artifacts.write_json(staging / "train.json", info)
        artifacts.write_metrics(staging, metrics)


def checkpoint_model(out: Path, ode: ODEConfig | None = None, *, env_data_dir: str | None = None):
    """The model of a run still training (or interrupted) as of the last epoch saved in ``<out>.ckpt``, with its
    split rebuilt from the checkpoint's settings: (model, split, the checkpoint's TrainState). Those are the last
    epoch's weights, not the best validation epoch's that the finished run will keep."""
    cfg = resume_config(out)
    ckpt = Checkpoint(checkpoint_dir(out) / "state.safetensors")
    if not ckpt.exists():
        raise RunDirError(f"{out} has not saved an epoch yet (no {ckpt.path})")
    state = ckpt.load()
    if not {"user", "item"} <= set(state.model):
        raise RunDirError(f"{ckpt.path} holds no user and item embeddings")
    split = prepare_split(cfg.data, cfg.seed, env_data_dir=env_data_dir)
    return model_from_weights(cfg, state.model["user"], state.model["item"], split.train, ode), split, state
