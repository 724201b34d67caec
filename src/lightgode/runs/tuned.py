"""T chosen on validation for a trained run (no retraining), and the run directory that records it: the source
run's files (hard links where possible) with the tuned ODE settings, metrics and the T search's files (tune.json,
tune.csv, t_curve.png)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from lightgode.atomic import write_json
from lightgode.core.ode import ODEConfig
from lightgode.core.tune import TuneConfig, TuneResult, tune_split, write_tune_files
from lightgode.errors import ConfigError
from lightgode.runs.store import (
    MARKER,
    check_complete,
    check_out_dir,
    holding,
    load_model,
    load_run,
    read_json,
    run_config,
    staged,
    write_metrics,
)
from lightgode.runs.workflow import evaluate_model


def _link_or_copy(src: str, dst: str) -> None:
    # Hard links are safe here: every file that changes is replaced by an atomic rename, never edited.
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def write_tuned_run(
    run_dir: str | Path,
    config: dict[str, Any] | None,
    metrics: dict[str, Any],
    result: TuneResult | None,
    *,
    title: str = "",
    out: str | Path | None = None,
    info: dict[str, Any] | None = None,
) -> None:
    """Write a complete run directory whose config.json and metrics.json carry a new T: by default it replaces
    ``run_dir``; with ``out``, ``run_dir`` is left as it is and the new run goes to ``out`` (which it replaces).
    The result is complete or absent (staged in ``<out>.partial``, then renamed).

    Parameters
    ----------
    config : the run's config.json content (None: read it); its ``ode`` section is updated with ``result.ode``
    metrics : the run's metrics recomputed at the new T
    result : the search (written as tune.json and t_curve.png); None when ``config`` already holds the T
    info : replaces train.json (None: kept)
    """
    src = check_complete(run_dir)
    dst = Path(out) if out is not None else src
    if config is None:
        config = read_json(src / "config.json")
    with staged(dst, overwrite=True, source=src, same_ok=True) as staging:
        shutil.rmtree(staging)
        shutil.copytree(src, staging, copy_function=_link_or_copy)
        (staging / MARKER).unlink()
        if result is None:  # a search copied from the source would describe another T
            for stale in ("tune.json", "t_curve.png"):
                (staging / stale).unlink(missing_ok=True)
        config = dict(config)
        if result is not None:
            config["ode"] = {**config.get("ode", {}), **asdict(result.ode)}
        write_json(staging / "config.json", config)
        write_metrics(staging, metrics)
        if info is not None:
            write_json(staging / "train.json", info)
        if result is not None:
            write_tune_files(staging, result, title=title)


def tune_run(
    run_dir: str | Path,
    config: TuneConfig = TuneConfig(),
    *,
    metric: str | None = None,
    solver: str | None = None,
    steps: int | None = None,
    write: bool = True,
    on_point: Callable[[dict[str, Any], str], None] | None = None,
) -> tuple[TuneResult, dict[str, dict[str, float]], Any]:
    """Choose the ODE horizon T of a trained LightGODE run on its validation split, and (``write``) record it in the
    run directory, replacing it atomically under the run's lock, so no concurrent update is lost.

    Parameters
    ----------
    run_dir : a complete lightgode run directory
    config : the search (range, grid, user sample); its metric and seed are set from ``metric`` and the run
    metric : the validation metric to maximise (None: the run's validation metric)
    solver, steps : another ODE solver or step count to search with (None: the run's)
    write : False for a dry run (nothing written)
    on_point : called with each evaluated point and the metric maximised (for progress)

    Returns
    -------
    (the search, the validation and test metrics at the chosen T, the run's RunConfig before tuning)

    Raises
    ------
    ConfigError : the run is not a lightgode run
    RunDirError, OutputError : an unreadable run, or one that cannot be written
    """
    if write:
        check_out_dir(Path(run_dir), False, source=Path(run_dir), same_ok=True)  # writable, before work
        with holding(run_dir):  # read, search and write under the run's lock
            return _tune_run(run_dir, config, metric, solver, steps, write, on_point)
    return _tune_run(run_dir, config, metric, solver, steps, write, on_point)


def _tune_run(run_dir, config: TuneConfig, metric, solver, steps, write: bool, on_point):
    from dataclasses import replace

    r = load_run(run_dir)
    cfg = run_config(r)
    if cfg.model != "lightgode":
        raise ConfigError(
            f"tune sets the ODE horizon of a lightgode run, but {r.path} is a {cfg.model!r} run; "
            f"propagate its embeddings with 'lightgode propagate --t auto' instead"
        )
    ode: ODEConfig = replace(cfg.ode, **{k: v for k, v in (("solver", solver), ("steps", steps)) if v is not None})
    config = replace(config, metric=metric or cfg.eval.valid_metric, seed=cfg.seed)
    report = None if on_point is None else (lambda point: on_point(point, config.metric))
    E0 = torch.cat([r.user_embedding, r.item_embedding], dim=0)
    result = tune_split(E0, r.split, ode=ode, config=config, eval_config=cfg.eval, on_point=report)
    metrics = evaluate_model(load_model(r, result.ode), r.split)
    if write:
        write_tuned_run(r.path, r.config, metrics, result, title=f"{cfg.data.data} seed {cfg.seed}")
    return result, metrics, cfg
