"""The run directory: everything a trained run leaves, written so that it is complete or absent.

Layout::

    config.json          every resolved setting, package versions, seed
    metrics.json         {"valid": {...}, "test": {...}} with "<metric>@<K>" keys
    train.json           best epoch, epochs run, timings, peak memory, dataset statistics
    history.csv          one row per epoch: loss, validation metrics, seconds
    split/               train.csv, valid.csv, test.csv (header user,item, raw ids) and the id vocabularies
    weights.safetensors  E0: "user_embedding" (n_users, d) and "item_embedding" (n_items, d), float32
    COMPLETE             written last: the files of the run with their sizes

A run is built in ``<out>.partial`` and renamed to ``<out>`` when every file is in place (:func:`staged`, the one
way every command writes a folder). Replacing a run takes two renames (``<out>`` to ``<out>.old``, then
``<out>.partial`` to ``<out>``); a crash between them is repaired by the next command that opens the run
(:func:`recover`).
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors.torch import load_file, save_file

from lightgode.atomic import (
    atomic_path,
    check_target,
    is_write_error,
    make_parents,
    os_error_message,
    remove_dirs,
    write_json,
)
from lightgode.core.config import RunConfig
from lightgode.data.split import Split, load_split
from lightgode.errors import ConfigError, OutputError, RunDirError
from lightgode.fieldtypes import shown
from lightgode.locks import WAIT_S, target_lock

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from lightgode.core.ode import ODEConfig

MARKER = "COMPLETE"
REQUIRED = ("config.json", "metrics.json", "weights.safetensors", "split")


def partial_dir(out: Path) -> Path:
    return out.with_name(out.name + ".partial")


def old_dir(out: Path) -> Path:
    return out.with_name(out.name + ".old")


def check_out_dir(out: Path, overwrite: bool, *, source: Path | None = None, same_ok: bool = False) -> None:
    """Refuse a target that cannot be written (``atomic.check_target``); called before any work is done."""
    check_target(out, overwrite=overwrite, kind="dir", source=source, same_ok=same_ok)


@contextmanager
def staged(
    out: str | os.PathLike,
    *,
    overwrite: bool = False,
    source: Path | None = None,
    same_ok: bool = False,
    marker: bool = True,
    wait_s: float = WAIT_S,
    check: bool = True,
) -> Iterator[Path]:
    """Write the folder ``out`` completely or not at all: ``with staged(out) as d:`` yields ``<out>.partial``
    to fill; when the block ends the completion marker is written (``marker``) and the folder renamed onto
    ``out``. Checked before the block (``check_target``: exists without ``overwrite``, under a file, unwritable,
    holding ``source``) and again under the target's lock (``locks.target_lock``, waiting ``wait_s``), so
    concurrent writers of one target queue. A failed write (``OSError``, safetensors' error) becomes a one-line
    ``OutputError`` naming the path; on any failure the staging folder (and folders made for it) are removed.
    ``check=False``: the caller has checked and holds the lock, and ``overwrite`` only decides replacing.
    """
    out = Path(out)
    if check:
        check_target(out, overwrite=overwrite, kind="dir", source=source, same_ok=same_ok)
    staging = partial_dir(out)
    created: list[Path] = []
    done = False
    try:
        created = make_parents(out)
        with target_lock(out, wait_s=wait_s):
            if check:  # again, now that no other writer of ``out`` runs
                check_target(out, overwrite=overwrite, kind="dir", source=source, same_ok=same_ok)
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir()
            yield staging
            finalize(staging, out, marker=marker)
        done = True
    except BaseException as exc:
        if is_write_error(exc):
            raise OutputError(os_error_message(exc, staging)) from None
        raise
    finally:
        if not done:
            shutil.rmtree(staging, ignore_errors=True)
            remove_dirs(created)


@contextmanager
def holding(out: str | os.PathLike, *, wait_s: float = WAIT_S) -> Iterator[Path]:
    """Hold the lock of the target ``out`` for a whole read-modify-write (an in-place update reads the run under
    it, so no concurrent update is lost); folders made for the lock are removed again if the block fails."""
    out = Path(out)
    created = make_parents(out)
    done = False
    try:
        with target_lock(out, wait_s=wait_s):
            yield out
        done = True
    finally:
        if not done:
            remove_dirs(created)


def save_weights(
    path: Path, user_emb: torch.Tensor, item_emb: torch.Tensor, meta: dict[str, str] | None = None
) -> None:
    with atomic_path(path) as tmp:
        save_file(
            {
                "user_embedding": user_emb.detach().contiguous().to(torch.float32),
                "item_embedding": item_emb.detach().contiguous().to(torch.float32),
            },
            str(tmp),
            metadata=meta,
        )


def load_weights(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    try:
        t = load_file(str(path))
        return t["user_embedding"], t["item_embedding"]
    except Exception as exc:  # safetensors raises several kinds for a damaged file
        raise RunDirError(
            f"cannot read weights {path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        ) from None


def write_history(path: Path, history: list[dict[str, float]]) -> None:
    cols: list[str] = []
    for row in history:
        cols += [c for c in row if c not in cols]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        w.writerows(history)


def finalize(staging: Path, out: Path, *, marker: bool = True) -> None:
    """Write the completion marker in ``staging`` and move it onto ``out`` (replacing an old run)."""
    if marker:
        files = sorted(str(p.relative_to(staging)) for p in staging.rglob("*") if p.is_file())
        write_json(staging / MARKER, {"files": {f: (staging / f).stat().st_size for f in files}})
    if out.exists():
        trash = old_dir(out)
        shutil.rmtree(trash, ignore_errors=True)
        os.replace(out, trash)
        os.replace(staging, out)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(staging, out)


@dataclass(frozen=True)
class Run:
    """A loaded run directory (:func:`load_run`).

    Attributes
    ----------
    path : Path
    config : dict
        The checked ``config.json`` (:meth:`RunConfig.from_stored` reads it), with its ``versions`` record.
    metrics : dict
        ``metrics.json``: ``{"valid": {"ndcg@20": ...}, "test": {...}}``.
    info : dict
        ``train.json`` ({} when absent).
    split : Split
        The train, validation and test parts with the raw id maps.
    user_embedding, item_embedding : torch.Tensor, float32, shapes (n_users, d), (n_items, d)
        The stored E0 (before the ODE; zero-width for the training-free filters).
    """

    path: Path
    config: dict[str, Any]
    metrics: dict[str, Any]
    info: dict[str, Any]
    split: Split
    user_embedding: torch.Tensor
    item_embedding: torch.Tensor


def _marker_ok(p: Path) -> bool:
    try:
        listed = json.loads((p / MARKER).read_text())["files"]
        return all((p / n).is_file() and (p / n).stat().st_size == size for n, size in listed.items())
    except Exception:
        return False


def recover(run_dir: str | os.PathLike) -> bool:
    """Repair a run whose replacement stopped between its two renames (``<run>.old`` and ``<run>.partial``
    present, ``<run>`` missing): the complete new run is put in place (else the old one). True when repaired.
    Done under the run's lock, so a writer in the middle of those renames finishes first."""
    p = Path(run_dir)
    old, partial = old_dir(p), partial_dir(p)
    if p.exists() or not old.is_dir():
        return False
    how = f"mv {partial} {p}" if _marker_ok(partial) else f"mv {old} {p}"
    try:
        with target_lock(p, wait_s=WAIT_S):
            if p.exists():
                return False  # a writer was between its renames and has finished
            if _marker_ok(partial):
                os.replace(partial, p)
                shutil.rmtree(old, ignore_errors=True)
            elif old.is_dir():
                os.replace(old, p)
                shutil.rmtree(partial, ignore_errors=True)
            else:
                return False
    except OSError as exc:
        raise RunDirError(
            f"run directory {p} was left between two renames by an interrupted update and cannot "
            f"be repaired here ({exc.strerror or exc}); repair it with `{how}`"
        ) from None
    except OutputError as exc:
        raise RunDirError(
            f"run directory {p} was left between two renames by an interrupted update: {exc}; repair it with `{how}`"
        ) from None
    log.warning("%s was left between two renames by an interrupted update; restored", p)
    return True


def check_complete(run_dir: str | os.PathLike) -> Path:
    """The run's path if it is a complete run directory, else a RunDirError naming what is missing."""
    p = Path(run_dir)
    recover(p)
    in_progress = p.with_name(p.name + ".ckpt") / "config.json"
    if not (p / MARKER).is_file() and in_progress.is_file():
        raise RunDirError(
            f"run {p} has not finished (still training, or interrupted): `lightgode evaluate {p} "
            f"--checkpoint` scores its last saved epoch, `lightgode train --resume {p}` continues it"
        )
    if not p.is_dir():
        raise RunDirError(f"run directory {p} does not exist")
    if not (p / MARKER).is_file():
        raise RunDirError(f"run directory {p} is incomplete (no {MARKER} marker): the run did not finish")
    try:
        listed = json.loads((p / MARKER).read_text())["files"]
    except Exception:
        raise RunDirError(f"run directory {p} has a damaged {MARKER} marker") from None
    for name, size in listed.items():
        f = p / name
        if not f.is_file() or f.stat().st_size != size:
            raise RunDirError(f"run directory {p} is damaged: {name} is missing or changed")
    for name in REQUIRED:
        if not (p / name).exists():
            raise RunDirError(f"run directory {p} is incomplete: {name} is missing")
    return p


def read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunDirError(f"{path} is missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunDirError(f"{path} is not valid JSON: {exc}") from None


METRIC_KEY = re.compile(r"[A-Za-z_][\w-]*@\d+")


def parse_config(raw: Any, path: Path) -> RunConfig:
    """The settings stored in ``path`` (a run's or a checkpoint's ``config.json``, already read as ``raw``), checked as
    flags are: every setting of the expected type and value, the model a known one; a RunDirError naming the file
    and the key otherwise. A setting added since the run was made takes its default."""
    try:
        return RunConfig.from_stored(raw)
    except ConfigError as exc:
        raise RunDirError(f"{path} holds an impossible setting: {exc}") from None


def stored_config(path: Path) -> dict[str, Any]:
    """A run's ``config.json`` checked (:func:`parse_config`) and complete, with the run's ``versions`` record."""
    raw = read_json(path)
    config = parse_config(raw, path).to_dict()
    versions = raw.get("versions")
    return config | ({"versions": versions} if isinstance(versions, dict) else {})


def stored_metrics(path: Path) -> dict[str, dict[str, float]]:
    """A run's ``metrics.json``: {split: {"<metric>@<K>": number}}; a RunDirError naming the file otherwise."""
    raw = read_json(path)
    if not isinstance(raw, dict):
        raise RunDirError(f"{path} must hold {{split: {{metric@K: number}}}}, got {shown(raw)}")
    for part, values in raw.items():
        if not isinstance(values, dict):
            raise RunDirError(f"{path}: {part}: expected a table of metric@K: number, got {shown(values)}")
        for key, v in values.items():
            if not METRIC_KEY.fullmatch(key):
                raise RunDirError(f"{path}: {part}: {shown(key)} is not a metric name of the form metric@K")
            if not isinstance(v, (int, float)) or isinstance(v, bool):
                raise RunDirError(f"{path}: {part}.{key}: expected a number, got {shown(v)}")
    return raw


def stored_info(path: Path) -> dict[str, Any]:
    """A run's ``train.json`` (absent: {}); a RunDirError unless it holds a table."""
    if not path.exists():
        return {}
    raw = read_json(path)
    if not isinstance(raw, dict):
        raise RunDirError(f"{path} must hold a table of training facts, got {shown(raw)}")
    return raw


def load_run(run_dir: str | os.PathLike) -> Run:
    """Read a complete run directory (weights through safetensors, no pickle), checking every file.

    A run left between the two renames of an interrupted replacement is repaired first (:func:`recover`).

    Parameters
    ----------
    run_dir : str or path
        A directory written by ``lightgode train`` or :func:`lightgode.train_run`.

    Returns
    -------
    Run
        Settings, metrics, split and the stored E0; :func:`load_model` makes the fitted model of it.

    Raises
    ------
    RunDirError
        A missing, unfinished, incomplete, damaged or inconsistent run directory, or an impossible stored setting.
    """
    p = check_complete(run_dir)
    config, metrics, info = (
        stored_config(p / "config.json"),
        stored_metrics(p / "metrics.json"),
        stored_info(p / "train.json"),
    )
    u, i = load_weights(p / "weights.safetensors")
    split = load_split(p / "split")
    if u.shape[0] != split.train.n_users or i.shape[0] != split.train.n_items:
        raise RunDirError(f"run directory {p} is inconsistent: weights do not match the split's users and items")
    return Run(p, config, metrics, info, split, u, i)


def write_metrics(run_dir: Path, metrics: dict[str, Any]) -> None:
    write_json(run_dir / "metrics.json", metrics)


def run_config(run: Run) -> RunConfig:
    """The run's settings as a validated RunConfig."""
    return RunConfig.from_stored(run.config)


def load_model(run: Run, ode: ODEConfig | None = None):
    """The run's fitted model, read back through the model registry (``Model.from_stored``), propagated with the
    run's ODE settings or with ``ode`` (which applies to the ODE models only). Training-free filters rebuild their
    operators from the stored split and have ``score_fn`` but no embeddings.

    Parameters
    ----------
    run : Run
        A loaded run (:func:`load_run`).
    ode : ODEConfig, optional
        Another horizon or solver than the run's (no retraining).

    Returns
    -------
    model
        The fitted model of ``run.config["model"]`` (a :class:`LightGODE` for lightgode runs), with ``score_fn()``
        and ``evaluate(relevant, exclude)``; embedding models have ``user_embeddings_`` (n_users, d) and
        ``item_embeddings_`` (n_items, d).

    Raises
    ------
    ConfigError
        Impossible settings in ``run.config`` (not for a run read by :func:`load_run`, which checks them).
    """
    from lightgode.models import model_from_weights

    return model_from_weights(run_config(run), run.user_embedding, run.item_embedding, run.split.train, ode)
