"""A run directory with T chosen on validation: the source run's files (hard links where possible) with the tuned
ODE settings, metrics and the T search's files (tune.json, tune.csv, t_curve.png)."""

from __future__ import annotations

import os
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

from lightgode.atomic import write_json
from lightgode.core.tune import TuneResult, write_tune_files
from lightgode.runs.store import MARKER, check_complete, read_json, staged, write_metrics


def _link_or_copy(src: str, dst: str) -> None:
    # Hard links are safe here: every file that changes is replaced by an atomic rename, never edited.
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def write_tuned_run(run_dir: str | Path, config: dict[str, Any] | None, metrics: dict[str, Any],
                    result: TuneResult | None, *, title: str = "", out: str | Path | None = None,
                    info: dict[str, Any] | None = None) -> None:
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
