"""Collecting the benchmark's rows from its run directories, and averaging them over seeds.

Per seed, the report keeps the grid point with the best validation NDCG@20 (:func:`select_variants`); test metrics
are read once, at the best validation epoch, and averaged over seeds (:func:`aggregate`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from lightgode.bench.ledger import is_complete, valid_key
from lightgode.bench.settings import ALL_MODELS, LABELS, RUN_NAME, settings_summary
from lightgode.errors import RunDirError
from lightgode.runs import store as artifacts


def collect(out_dir: Path, protocol: str) -> list[dict[str, Any]]:
    """One row per complete run under ``<out_dir>/<protocol>``."""
    rows = []
    base = Path(out_dir) / protocol
    for path in sorted(base.glob("*/*/seed*")):
        if not RUN_NAME.fullmatch(path.name) or not path.is_dir() or not is_complete(path):
            continue  # a run being written (.partial) or replaced (.old) is not a run of its own
        info = artifacts.read_json(path / "train.json") if (path / "train.json").is_file() else {}
        metrics = artifacts.read_json(path / "metrics.json")
        config = artifacts.read_json(path / "config.json")
        test, valid = metrics.get("test", {}), metrics.get("valid", {})
        sec = info.get("seconds", {})
        suffix = max((s for s in LABELS if path.name.endswith(s)), key=len)  # grid values hold dots too
        rows.append(
            {
                "protocol": protocol,
                "dataset": path.parent.parent.name,
                "model": path.parent.name + LABELS[suffix],
                "seed": int(config.get("seed", 0)),
                "variant": path.name.partition("-")[2],
                "test_recall@20": test.get("recall@20", math.nan),
                "test_ndcg@20": test.get("ndcg@20", math.nan),
                "valid_ndcg@20": valid.get("ndcg@20", math.nan),
                "best_epoch": info.get("best_epoch", 0),
                "epochs_run": info.get("epochs_run", 0),
                "seconds_per_epoch": info.get("seconds_per_epoch", 0.0),
                "fit_seconds": training_seconds(sec),
                "inference_seconds": sec.get("evaluate", math.nan),
                "peak_rss_mb": info.get("peak_rss_mb", math.nan),
                "capped": bool(info.get("capped", False)) or budget_spent(info, config, bool(valid)),
                "settings": settings_summary(config),
                "device": info.get("device", "cpu"),
            }
        )
    return rows


def budget_spent(info: dict[str, Any], config: dict[str, Any], validated: bool) -> bool:
    """Whether a validated run trained its whole epoch budget without early stopping: it was still improving
    (or had not yet waited out its patience), so its accuracy and time are lower bounds, as under a wall-time
    cap. A run without validation (a refit) trains a set number of epochs by design."""
    run, budget = int(info.get("epochs_run", 0)), config.get("train", {}).get("epochs")
    return validated and run > 0 and budget is not None and run >= int(budget) and not info.get("stopped_early", True)


def training_seconds(sec: dict[str, float]) -> float:
    """A run's training wall time: its fit, or where the run was resumed across processes, the sum of every
    epoch's training and validation seconds from its history (the last process's fit alone would miss the
    epochs done before the interruption)."""
    epochs = sec.get("train_epochs", 0.0) + sec.get("validation", 0.0)
    if "fit" not in sec:
        return epochs or math.nan
    post = sec.get("post_training", 0.0)  # mf-conv's layers or the T search, on top of the source run's fit
    return max(sec["fit"] - post, epochs) + post


def in_progress(out_dir: Path, protocol: str) -> list[dict[str, Any]]:
    """Interrupted or running runs under ``<out_dir>/<protocol>``, from their checkpoints: dataset, model, seed,
    epochs done, best epoch and its validation NDCG@20, mean training seconds per epoch. No test metrics: a run
    reads test once, when it completes."""
    from lightgode.core.checkpoint import Checkpoint

    rows = []
    for ckpt in sorted((Path(out_dir) / protocol).glob("*/*/seed*.ckpt")):
        out = ckpt.with_name(ckpt.name.removesuffix(".ckpt"))
        state = Checkpoint(ckpt / "state.safetensors")
        if is_complete(out) or not state.exists():
            continue
        try:
            meta = state.metadata()
        except RunDirError:
            continue
        history = meta.get("history") or [{}]
        rows.append(
            {
                "dataset": out.parent.parent.name,
                "model": out.parent.name,
                "seed": out.name[len("seed") :],
                "epoch": int(meta["epoch"]),
                "best_epoch": int(meta["best_epoch"]),
                "best_valid_ndcg@20": float(meta["best_valid"].get("ndcg@20", math.nan)),
                "seconds_per_epoch": float(np.mean([r.get("train_seconds", math.nan) for r in history])),
            }
        )
    return rows


def select_variants(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:  # the choice of chosen_point
    """Per (dataset, model, seed), the grid point with the best validation NDCG@20 (test plays no part); each
    kept row says in ``grid_points`` how many points it was chosen from."""
    groups: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["dataset"], r["model"], r["seed"]), []).append(r)
    return [max(rs, key=lambda r: valid_key(r["valid_ndcg@20"])) | {"grid_points": len(rs)} for rs in groups.values()]


def from_other_point(chosen: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """(dataset, model) of derived rows made from another grid point than the one their source row chose on
    validation for the same seed: a "T on validation" copy of another LightGODE point, or mf-conv layers on
    another mf-bpr point (a grid rerun with other points, or rows recorded before it, can leave such rows)."""
    pick = {(r["dataset"], r["model"], r["seed"]): r for r in chosen}
    stale = set()
    for r in chosen:  # the trained settings must agree; T or L are the derived row's own choice
        model = r["model"]
        if model.endswith("T on validation)"):
            source_model = model.replace(", T on validation)", ")").replace(" (T on validation)", "")
            cut = ", T "
        elif model == "mf-conv":
            source_model, cut = "mf-bpr", ", L "
        else:
            continue
        source = pick.get((r["dataset"], source_model, r["seed"]))
        if source is not None and _before(r["settings"], cut) != _before(source["settings"], cut):
            stale.add((r["dataset"], model))
    return stale


def _before(settings: str, cut: str) -> str:
    """``settings`` up to its last ``cut`` (all of it when there is none)."""
    head, found, _ = settings.rpartition(cut)
    return head if found else settings


def aggregate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and std over seeds per (dataset, model), after choosing each seed's grid point on validation; a row
    whose runs were derived from a point its source did not choose says so (``stale``)."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    chosen = select_variants(rows)
    stale = from_other_point(chosen)
    for r in chosen:
        groups.setdefault((r["dataset"], r["model"]), []).append(r)
    out = []
    for (dataset, model), rs in groups.items():

        def stat(key: str, rs: list = rs) -> tuple[float, float]:
            v = np.array([r[key] for r in rs], dtype=float)
            return float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else 0.0

        out.append(
            {
                "dataset": dataset,
                "model": model,
                "seeds": len(rs),
                **{
                    k: stat(k)
                    for k in (
                        "test_recall@20",
                        "test_ndcg@20",
                        "best_epoch",
                        "epochs_run",
                        "seconds_per_epoch",
                        "fit_seconds",
                        "inference_seconds",
                        "peak_rss_mb",
                    )
                },
                "capped": any(r["capped"] for r in rs),
                "grid_points": max(r["grid_points"] for r in rs),
                "stale": (dataset, model) in stale,
                "gpu_seeds": sum(r.get("device", "cpu") != "cpu" for r in rs),
                "settings": "; ".join(sorted({r["settings"] for r in rs})),
            }
        )
    order = {m: i for i, m in enumerate(ALL_MODELS)}
    labels = list(LABELS.values())

    def key(r: dict[str, Any]) -> tuple[str, bool, int, int]:  # refits after the rest; a model's rows together
        name, _, label = r["model"].partition(" ")
        return (
            r["dataset"],
            "(refit" in label,
            order.get(name, 99),
            labels.index(" " + label) if label and " " + label in labels else 0,
        )

    return sorted(out, key=key)
