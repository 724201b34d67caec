"""The run directory: everything a trained run leaves, written so that it is complete or absent.

Layout::

    config.json          every resolved setting, package versions, seed
    metrics.json         {"valid": {...}, "test": {...}} with "<metric>@<K>" keys
    train.json           best epoch, epochs run, timings, peak memory, dataset statistics
    history.csv          one row per epoch: loss, validation metrics, seconds
    split/               train.csv, valid.csv, test.csv (header user,item, raw ids) and the id vocabularies
    weights.safetensors  E0: "user_embedding" (n_users, d) and "item_embedding" (n_items, d), float32
    COMPLETE             written last: the files of the run with their sizes

A run is built in ``<out>.partial`` and renamed to ``<out>`` when every file is in place.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from .atomic import atomic_path, write_json
from .config import RunConfig
from .data.split import Split, load_split, save_split
from .errors import ConfigError, RunDirError
from .fieldtypes import shown

MARKER = "COMPLETE"
REQUIRED = ("config.json", "metrics.json", "weights.safetensors", "split")


def partial_dir(out: Path) -> Path:
    return out.with_name(out.name + ".partial")


def check_out_dir(out: Path, overwrite: bool) -> None:
    """Refuse to replace an existing run unless asked; called before any work is done."""
    if out.exists() and not overwrite:
        raise RunDirError(f"output directory {out} already exists; pass --overwrite to replace it")
    if out.exists() and not out.is_dir():
        raise RunDirError(f"output path {out} exists and is not a directory")


def save_weights(path: Path, user_emb: torch.Tensor, item_emb: torch.Tensor, meta: dict[str, str] | None = None) -> None:
    with atomic_path(path) as tmp:
        save_file({"user_embedding": user_emb.detach().contiguous().to(torch.float32),
                   "item_embedding": item_emb.detach().contiguous().to(torch.float32)}, str(tmp), metadata=meta)


def load_weights(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    try:
        t = load_file(str(path))
        return t["user_embedding"], t["item_embedding"]
    except Exception as exc:  # safetensors raises several kinds for a damaged file
        raise RunDirError(f"cannot read weights {path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None


def write_history(path: Path, history: list[dict[str, float]]) -> None:
    cols: list[str] = []
    for row in history:
        cols += [c for c in row if c not in cols]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        w.writerows(history)


def finalize(staging: Path, out: Path) -> None:
    """Write the completion marker in ``staging`` and move it onto ``out`` (replacing an old run)."""
    files = sorted(str(p.relative_to(staging)) for p in staging.rglob("*") if p.is_file())
    write_json(staging / MARKER, {"files": {f: (staging / f).stat().st_size for f in files}})
    if out.exists():
        trash = out.with_name(out.name + ".old")
        shutil.rmtree(trash, ignore_errors=True)
        os.replace(out, trash)
        os.replace(staging, out)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(staging, out)


@dataclass(frozen=True)
class Run:
    """A loaded run directory."""

    path: Path
    config: dict[str, Any]
    metrics: dict[str, Any]
    info: dict[str, Any]
    split: Split
    user_embedding: torch.Tensor
    item_embedding: torch.Tensor


def check_complete(run_dir: str | os.PathLike) -> Path:
    """The run's path if it is a complete run directory, else a RunDirError naming what is missing."""
    p = Path(run_dir)
    in_progress = p.with_name(p.name + ".ckpt") / "config.json"
    if not (p / MARKER).is_file() and in_progress.is_file():
        raise RunDirError(f"run {p} has not finished (still training, or interrupted): `lightgode evaluate {p} "
                          f"--checkpoint` scores its last saved epoch, `lightgode train --resume {p}` continues it")
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
    p = check_complete(run_dir)
    config, metrics, info = stored_config(p / "config.json"), stored_metrics(p / "metrics.json"), \
        stored_info(p / "train.json")
    u, i = load_weights(p / "weights.safetensors")
    split = load_split(p / "split")
    if u.shape[0] != split.train.n_users or i.shape[0] != split.train.n_items:
        raise RunDirError(f"run directory {p} is inconsistent: weights do not match the split's users and items")
    return Run(p, config, metrics, info, split, u, i)


def write_metrics(run_dir: Path, metrics: dict[str, Any]) -> None:
    write_json(run_dir / "metrics.json", metrics)

