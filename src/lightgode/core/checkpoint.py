"""Per-epoch training checkpoints: everything needed to continue a killed run exactly where it stopped.

A checkpoint is one safetensors file, replaced atomically (temporary name, fsync, rename) after every epoch:

- tensors: the model's state (``model.<name>``), the optimiser's per-parameter state (``opt.<i>.<key>``),
  the best epoch's model state (``best.<name>``), the RNG states (``rng.torch``, ``rng.module``);
- metadata ``lightgode``: JSON with the epoch, early-stopping state, history, the optimiser's
  hyperparameters and the numpy shuffling generator's state.

Resuming restores all of it, so on CPU a resumed run ends with the same weights and metrics as an
uninterrupted one with the same seed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from lightgode.atomic import atomic_path
from lightgode.errors import RunDirError

FORMAT = "lightgode-checkpoint-1"


@dataclass
class TrainState:
    """The training loop's state after ``epoch`` completed epochs."""

    epoch: int
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    best_state: dict[str, torch.Tensor] | None
    best_value: float
    best_epoch: int
    best_valid: dict[str, float]
    bad_epochs: int
    history: list[dict[str, float]]
    numpy_rng: dict[str, Any]
    torch_rng: torch.Tensor
    module_rng: torch.Tensor | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Checkpoint:
    """Where a run's checkpoint lives and how often it is written (every ``every`` epochs, and the last)."""

    path: Path
    every: int = 1

    def exists(self) -> bool:
        return self.path.is_file()

    def save(self, state: TrainState) -> None:
        tensors: dict[str, torch.Tensor] = {}
        for name, t in state.model.items():
            tensors[f"model.{name}"] = t
        if state.best_state is not None:
            for name, t in state.best_state.items():
                tensors[f"best.{name}"] = t
        opt_state = state.optimizer["state"]
        scalars = []  # optimiser entries kept as Python numbers (SparseAdam's step): restored as such
        for idx, entries in opt_state.items():
            for key, value in entries.items():
                tensors[f"opt.{idx}.{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
                if not torch.is_tensor(value):
                    scalars.append(f"{idx}.{key}")
        tensors["rng.torch"] = state.torch_rng
        if state.module_rng is not None:
            tensors["rng.module"] = state.module_rng
        meta = {
            "format": FORMAT,
            "epoch": state.epoch,
            "best_value": state.best_value,
            "best_epoch": state.best_epoch,
            "best_valid": state.best_valid,
            "bad_epochs": state.bad_epochs,
            "history": state.history,
            "param_groups": state.optimizer["param_groups"],
            "numpy_rng": state.numpy_rng,
            "has_best": state.best_state is not None,
            "extra": state.extra,
            "opt_scalars": scalars,
        }
        tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.path) as tmp:
            save_file(tensors, str(tmp), metadata={"lightgode": json.dumps(meta)})
        _fsync_dir(self.path.parent)

    def metadata(self) -> dict[str, Any]:
        """The JSON metadata alone (epoch, early-stopping state, history), without reading the tensors."""
        from safetensors import safe_open

        try:
            with safe_open(str(self.path), framework="pt") as fh:
                meta = json.loads((fh.metadata() or {})["lightgode"])
        except Exception as exc:  # a damaged file raises several kinds
            raise RunDirError(f"cannot read checkpoint {self.path}: {type(exc).__name__}") from None
        if meta.get("format") != FORMAT:
            raise RunDirError(f"{self.path} is not a lightgode checkpoint")
        return meta

    def load(self) -> TrainState:
        meta = self.metadata()
        try:
            tensors = load_file(str(self.path))
        except Exception as exc:  # a damaged file raises several kinds
            raise RunDirError(f"cannot read checkpoint {self.path}: {type(exc).__name__}") from None
        model = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
        best = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")} if meta["has_best"] else None
        opt: dict[int, dict[str, Any]] = {}
        scalars = set(meta.get("opt_scalars", []))
        for k, v in tensors.items():
            if k.startswith("opt."):
                _, idx, key = k.split(".", 2)
                opt.setdefault(int(idx), {})[key] = v.item() if f"{idx}.{key}" in scalars else v
        return TrainState(
            epoch=int(meta["epoch"]),
            model=model,
            optimizer={"state": opt, "param_groups": meta["param_groups"]},
            best_state=best,
            best_value=float(meta["best_value"]),
            best_epoch=int(meta["best_epoch"]),
            best_valid=meta["best_valid"],
            bad_epochs=int(meta["bad_epochs"]),
            history=meta["history"],
            numpy_rng=meta["numpy_rng"],
            torch_rng=tensors["rng.torch"],
            module_rng=tensors.get("rng.module"),
            extra=meta.get("extra", {}),
        )


def _fsync_dir(path: Path) -> None:
    """Make a rename durable (best effort; not every platform can open a directory)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
