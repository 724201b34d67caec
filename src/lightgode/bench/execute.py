"""One benchmark run, from a plain dict (a spec) that can cross a process boundary: in this process
(:func:`execute`) or in a fresh one (:func:`run_isolated`), under the run's lock so that two benchmark invocations
never train the same run.

A spec trains a run (``config``), builds mf-conv's post-training layers on a finished mf-bpr run (``base``), or
copies a LightGODE run with T chosen on validation (``tune_from``).
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from lightgode.bench.ledger import changed_settings
from lightgode.bench.settings import TUNE_T
from lightgode.core.config import RunConfig
from lightgode.errors import LightGODEError
from lightgode.locks import held_elsewhere, release, try_acquire
from lightgode.runs import store as artifacts

log = logging.getLogger(__name__)


def _run_mf_conv_on_base(cfg: RunConfig, out: Path, base_dir: Path) -> None:
    """mf-conv from the finished mf-bpr run of the same seed: only the post-training layers are fitted."""
    import torch

    from lightgode.core.train import TrainResult
    from lightgode.models.conv import MFConv
    from lightgode.runs.workflow import evaluate_model, model_notes, peak_rss_mb, split_stats, write_run

    t_start = time.perf_counter()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    base = artifacts.load_run(base_dir)
    split = base.split
    binfo = base.info
    result = TrainResult(
        int(binfo.get("best_epoch", 0)), base.metrics.get("valid", {}), int(binfo.get("epochs_run", 0)), []
    )
    model = MFConv.from_config(cfg).with_base(torch.cat([base.user_embedding, base.item_embedding]), result)
    t0 = time.perf_counter()
    model.fit(split.train, split.valid if len(split.valid) else None)
    t_layers = time.perf_counter() - t0
    t1 = time.perf_counter()
    metrics = evaluate_model(model, split)
    t_eval = time.perf_counter() - t1
    bsec = binfo.get("seconds", {})
    info = {
        "model": cfg.model,
        "dataset": split_stats(split),
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "stopped_early": bool(binfo.get("stopped_early", False)),
        "base_run": str(base_dir),
        "seconds": {
            "data": 0.0,
            "fit": float(bsec.get("fit", 0.0)) + t_layers,
            "train_epochs": float(bsec.get("train_epochs", 0.0)),
            "validation": float(bsec.get("validation", 0.0)),
            "post_training": t_layers,
            "evaluate": t_eval,
            "total": float(bsec.get("total", 0.0)) + time.perf_counter() - t_start,
        },
        "seconds_per_epoch": float(binfo.get("seconds_per_epoch", 0.0)),
        "peak_rss_mb": max(peak_rss_mb(), float(binfo.get("peak_rss_mb", 0.0))),
        "device": binfo.get("device", "cpu"),
        "valid_by_layers": {str(k): v for k, v in model.valid_by_layers_.items()},
    }
    info.update(model_notes(model))
    info["capped"] = bool(binfo.get("capped", False))
    write_run(out, cfg, split, model, metrics, info)


def execute(spec: dict[str, Any]) -> bool:
    """One run, from a plain dict (so that it can cross a process boundary); False when it was left alone.

    A run whose lock (``<out>.lock``) another benchmark invocation holds is being trained there and is left to it;
    taking the lock is one atomic step, so two invocations never train the same run.
    """
    out = Path(spec["out"])
    lock = out.with_name(out.name + ".lock")
    base_lock = out.parent.parent / "mf-bpr" / (out.name + ".lock")
    if out.parent.name == "mf-conv" and not spec.get("base") and held_elsewhere(base_lock):
        log.warning("%s waits for the mf-bpr run another process is training; skipped", out)
        return False
    fd = try_acquire(lock)
    if fd is None:
        log.warning("%s is being trained by another process; skipped", out)
        return False
    try:
        _execute_unlocked(spec)
    finally:
        release(lock, fd)
    return True


def _execute_unlocked(spec: dict[str, Any]) -> None:
    from lightgode.runs.workflow import checkpoint_dir, resume_config, train_run

    out = Path(spec["out"])
    if spec.get("tune_from"):
        _tune_copy(Path(spec["tune_from"]), out, Path(spec["t_from"]) if spec.get("t_from") else None, spec["sources"])
        return
    cfg = RunConfig.from_dict(spec["config"])
    base = spec.get("base")
    if base:
        _run_mf_conv_on_base(cfg, out, Path(base))
        return
    ckpt_config = checkpoint_dir(out) / "config.json"
    if ckpt_config.is_file() and changed_settings(artifacts.read_json(ckpt_config), cfg) is None:
        resumed = resume_config(out)  # continued on this benchmark's device, wherever it started
        train_run(
            replace(resumed, train=replace(resumed.train, device=cfg.train.device)), out, overwrite=True, resume=True
        )
    else:  # no checkpoint, or one of other settings (removed: the run starts again)
        train_run(cfg, out, overwrite=True)


LEFT_ALONE = 3
"""Exit code of a run process that found its run locked by another invocation."""


def _child(spec: dict[str, Any], error_file: str) -> None:
    # a spawned process starts with logging unconfigured: say one line per epoch so a run of hours shows progress
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("lightgode.core.train").setLevel(logging.INFO)
    try:
        ran = execute(spec)
    except LightGODEError as exc:
        Path(error_file).write_text(str(exc))
        raise SystemExit(2) from None
    except KeyboardInterrupt:  # Ctrl-C or a timeout's SIGINT: the run keeps its last epoch's checkpoint
        Path(error_file).write_text("interrupted (its checkpoint keeps the last complete epoch)")
        raise SystemExit(130) from None
    if not ran:
        raise SystemExit(LEFT_ALONE)


def run_isolated(spec: dict[str, Any]) -> bool:
    """The run in a fresh process; False when that process left it to another invocation."""
    out = Path(spec["out"])
    err = out.with_name(out.name + ".error")
    err.unlink(missing_ok=True)
    proc = multiprocessing.get_context("spawn").Process(target=_child, args=(spec, str(err)))
    proc.start()
    proc.join()
    if proc.exitcode == LEFT_ALONE:
        return False
    if proc.exitcode != 0:
        why = err.read_text() if err.is_file() else f"exit code {proc.exitcode}"
        raise LightGODEError(f"benchmark run {out} failed: {why}")
    return True


def _tune_copy(source: Path, out: Path, t_from: Path | None, sources: dict[str, str]) -> None:
    """Write ``out``: the LightGODE run ``source`` with T chosen on its validation (``t_from`` None) or with the T
    of the run ``t_from``; E0 is the source's, only the propagation and the evaluation are redone."""
    import torch

    from lightgode.core.tune import TuneConfig, tune_split
    from lightgode.runs.store import load_model, run_config
    from lightgode.runs.tuned import write_tuned_run
    from lightgode.runs.workflow import evaluate_model

    run = artifacts.load_run(source)
    cfg = run_config(run)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    t0 = time.perf_counter()
    config, result = dict(run.config), None
    if t_from is None:
        E0 = torch.cat([run.user_embedding, run.item_embedding], dim=0)
        result = tune_split(
            E0,
            run.split,
            ode=cfg.ode,
            eval_config=cfg.eval,
            config=TuneConfig(metric=cfg.eval.valid_metric, seed=cfg.seed, **TUNE_T),
        )
        ode = result.ode
    else:
        ode = run_config(artifacts.load_run(t_from)).ode
        config["ode"] = {**config.get("ode", {}), **asdict(ode)}
    t_search = time.perf_counter() - t0
    t1 = time.perf_counter()
    metrics = evaluate_model(load_model(run, ode), run.split)
    t_eval = time.perf_counter() - t1
    info = dict(run.info)
    sec = dict(info.get("seconds", {}))
    info["seconds"] = sec | {
        "fit": float(sec.get("fit", 0.0)) + t_search,
        "post_training": t_search,
        "evaluate": t_eval,
    }
    info["derived_from"] = sources
    if result is not None:
        info["tune"] = {k: v for k, v in result.to_dict().items() if k != "points"}
    write_tuned_run(
        source, config, metrics, result, out=out, info=info, title=f"{cfg.data.data} seed {cfg.seed}, T on validation"
    )
