"""The side-by-side benchmark: every model through the same data, split, evaluation and run directory.

Each (protocol, dataset, model, seed) is one complete run directory
``<out_dir>/<protocol>/<dataset>/<model>/seed<seed>``; a complete one is skipped, an interrupted one continues
from its checkpoint, so a benchmark spanning days resumes where it stopped. ``mf-conv`` reuses the trained
``mf-bpr`` run of the same seed (post-training layers need no training) when that run exists.

Tuning is on validation only: each model's small grid of post-training settings (layers, T, filter weights) is
picked on validation NDCG@20 inside ``fit``; trained settings come from :func:`model_settings` (documented in
docs/results/benchmark.md). A grid of trained settings (``grid``: learning rate, BPR regularisation, DirectAU gamma)
trains one run per point, ``seed<seed>-lr0.002`` and so on beside ``seed<seed>`` (the model's own settings); the
report keeps, per seed, the point with the best validation NDCG@20, and ``mf-conv`` is built on the mf-bpr point
so chosen. Test metrics are read once, at the best validation epoch.

A run directory can be lost (runs/ is not kept with the code) while its row stays in the report's CSV: a run
recorded there with the benchmark's settings counts as complete (:func:`chosen_point`, :func:`recorded_row`), so a
fresh machine trains only what is missing and a new grid point is weighed against the recorded ones.

LightGODE's horizon T costs no retraining, so besides the paper's T each chosen LightGODE run gets a copy with T
chosen on validation (``seed<seed>.tuned``, rows "lightgode (T on validation)"), as mf-conv chooses its layers.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import re
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from lightgode.names import BENCH_MODELS, PROTOCOLS
from lightgode.runs import store as artifacts
from lightgode.core.config import DataConfig, RunConfig, check_device_name, paper_overrides
from lightgode.errors import ConfigError, LightGODEError, RunDirError
from lightgode.locks import held_elsewhere, release, try_acquire

log = logging.getLogger(__name__)

ALL_MODELS = BENCH_MODELS
RUN_ORDER = ("pop", "gf-cf", "bspm", "lightgode", "directau", "mf-bpr", "mf-conv", "lightgcn")
"""Cheapest first; mf-conv after mf-bpr, whose trained run it reuses."""

PUBLISHED_GOWALLA = {"lightgcn": (0.1830, 0.1554), "gf-cf": (0.1849, 0.1518), "bspm": (0.1920, 0.1597)}
"""Published Recall@20 / NDCG@20 on the LightGCN Gowalla split (LightGCN, GF-CF and BSPM papers)."""

GRID_FIELDS = {"lr": ("train", "lr"), "reg": ("baseline", "reg"), "gamma": ("train", "gamma")}
"""Trained settings a benchmark grid may vary (``--grid lr=...``): where each lives in the run config."""
GRID_MODELS = {"lr": ("mf-bpr", "lightgcn", "directau", "lightgode"), "reg": ("mf-bpr", "lightgcn"),
               "gamma": ("directau", "lightgode")}
"""The models each grid field applies to (mf-conv follows the mf-bpr run chosen on validation)."""

CONV_LAYERS = tuple(range(1, 11))
GF_CF_ALPHA = (0.0, 0.1, 0.3, 0.5, 1.0, 2.0, 4.0)
BSPM_BETA = (0.0, 0.2, 0.5, 1.0)
BSPM_T_SHARP = (1.0, 2.5)
TUNE_T = {"t_max": 16.0, "grid": 9, "refine": 4, "extend": 4}
"""The search of LightGODE's T on validation (tune.TuneConfig): T in 0, 2, ..., 16, up to 24 while the curve still
rises, then 4 bisections around the best point; about 15 validation passes, no retraining."""


@dataclass(frozen=True, kw_only=True)
class BenchmarkConfig:
    datasets: tuple[str, ...] = ("amazon-beauty",)  # named datasets (paper protocol) or gowalla
    models: tuple[str, ...] = ALL_MODELS  # registry names
    seeds: tuple[int, ...] = (2020, 2021, 2022)  # one complete run per seed
    protocol: str = "paper"  # "paper" (5-core, per-user 8:1:1) or "lightgcn-gowalla" (fixed split)
    out_dir: Path = Path("runs/benchmark")  # run directories go under <out_dir>/<protocol>/<dataset>/<model>
    data_dir: str | None = None  # where the named datasets are found (else the usual search)
    max_train_minutes: float = 20.0  # wall-time cap of mf-bpr / lightgcn training (0: none); capped rows marked
    threads: int = 1  # torch threads of every run (the same for all models)
    device: str = "cpu"  # where the trained models train and validate (cpu, cuda, auto); filters run on the CPU
    quick: bool = False  # a few epochs and small ranks: checks the machinery, not the models
    isolate: bool = True  # each run in its own process (clean peak memory); False runs in this process
    grid: tuple[tuple[str, tuple[float, ...]], ...] = ()  # trained settings to search, e.g. (("lr", (5e-4, 2e-3)),)
    refit: bool = False  # lightgcn-gowalla: also retrain each chosen run on the whole training file
    tune_t: bool = True  # lightgode: also a row with T chosen on validation (E0 fixed: no retraining)

    def __post_init__(self) -> None:
        from lightgode.models import MODELS

        if self.protocol not in PROTOCOLS:
            raise ConfigError(f"unknown protocol {self.protocol!r}; choose one of {', '.join(PROTOCOLS)}")
        bad = [m for m in self.models if m not in MODELS]
        if bad:
            raise ConfigError(f"unknown model {bad[0]!r}; choose from {', '.join(MODELS)}")
        if not self.models or not self.datasets or not self.seeds:
            raise ConfigError("the benchmark needs at least one dataset, model and seed")
        from lightgode.data.datasets import unknown_dataset
        problem = next((m for m in map(unknown_dataset, self.datasets) if m is not None), None)
        if problem is not None:
            raise ConfigError(problem)
        if self.protocol == "lightgcn-gowalla" and set(self.datasets) != {"gowalla"}:
            raise ConfigError("the lightgcn-gowalla protocol runs on gowalla only")
        if not (self.max_train_minutes >= 0 and math.isfinite(self.max_train_minutes)):
            raise ConfigError(f"max_train_minutes must be >= 0, got {self.max_train_minutes}")
        if self.threads < 1:
            raise ConfigError(f"threads must be >= 1, got {self.threads}")
        check_device_name(self.device)
        for key, values in self.grid:
            if key not in GRID_FIELDS:
                raise ConfigError(f"cannot search {key!r}; a grid varies one of {', '.join(GRID_FIELDS)}")
            if not values or not all(math.isfinite(v) and v > 0 for v in values):
                raise ConfigError(f"grid values of {key} must be positive numbers, got {list(values)}")
        if self.refit and self.protocol != "lightgcn-gowalla":
            raise ConfigError("refit needs a fixed test set: it applies to the lightgcn-gowalla protocol only")
        if len({k for k, _ in self.grid}) != len(self.grid):
            raise ConfigError("each grid field may be given once")


def data_config(protocol: str, dataset: str, data_dir: str | None) -> DataConfig:
    if protocol == "paper":
        return DataConfig(data=dataset, data_dir=data_dir, kcore=5, split="random", ratios=(0.8, 0.1, 0.1))
    # LightGCN's fixed Gowalla train/test files; validation is 10% of each user's training items.
    return DataConfig(data=dataset, data_dir=data_dir, kcore=0, split="given", ratios=(0.9, 0.1, 0.0))


def model_settings(model: str, dataset: str, bench: BenchmarkConfig) -> dict[str, Any]:
    """The override dict of one model's settings in the benchmark (before validation-grid selection).

    - BPR models (mf-bpr, lightgcn, mf-conv's base): LightGCN's reference settings, Adam lr 1e-3, batch 2048,
      reg 1e-4, dim 64, 3 layers for lightgcn, Xavier initialisation; mf-conv picks L in 1..10 on validation.
      Batches: every training pair once per epoch on the paper protocol (RecBole's loader, behind the LightGODE
      paper's baselines), LightGCN's own sampler (uniform users, then one of each user's items) and up to 1,000
      epochs (its code's budget; early stopping still applies) on the lightgcn-gowalla protocol, whose published
      LightGCN figure comes from LightGCN's code.
    - directau / lightgode: the paper's settings (T, gamma, weight decay per dataset), batch 256, lr 1e-3.
    - gf-cf: rank 256, alpha picked in {0, 0.1, 0.3, 0.5, 1, 2, 4}; bspm: rank 256, T_b 1 (one Euler step),
      sharpening RK4 one step, beta in {0, 0.2, 0.5, 1} x T_s in {1, 2.5} picked on validation.
    """
    cap = bench.max_train_minutes * 60.0
    over: dict[str, Any] = {"model": model}
    if model in ("lightgode", "directau"):
        over |= paper_overrides(dataset)
    if model in ("mf-bpr", "lightgcn", "mf-conv"):
        over["train"] = {"batch_size": 2048, "lr": 1e-3, "weight_decay": 0.0}
        if bench.protocol == "lightgcn-gowalla":  # the sampler and epoch budget of the code behind its figures
            over["train"] |= {"sampling": "users", "epochs": 1000}
        over["baseline"] = {"reg": 1e-4, "layers": [3], "max_train_seconds": cap}
    if model == "mf-conv":
        over["baseline"] |= {"layers": list(CONV_LAYERS), "conv_base": "mf-bpr"}
    if model == "gf-cf":
        over["baseline"] = {"alpha": list(GF_CF_ALPHA), "rank": 256}
    if model == "bspm":
        over["baseline"] = {"idl_beta": list(BSPM_BETA), "t_sharp": list(BSPM_T_SHARP), "rank": 256,
                            "t_blur": 1.0, "steps_blur": 1, "steps_sharp": 1, "sharp_solver": "rk4"}
    if bench.quick:
        over.setdefault("train", {})["epochs"] = 3
        over.setdefault("baseline", {})["rank"] = 8
    return over


def model_device(bench: BenchmarkConfig, model: str) -> str:
    """Where the benchmark trains ``model``: its ``--device``, but the CPU for pop, gf-cf and bspm (scipy)."""
    from lightgode.models import TRAINING_FREE

    return "cpu" if model in TRAINING_FREE else bench.device


def run_config(bench: BenchmarkConfig, dataset: str, model: str, seed: int,
               variant: dict[str, float] | None = None) -> RunConfig:
    """The settings of one run; ``variant`` ({grid field: value}) replaces the model's own values."""
    cfg = RunConfig(data=data_config(bench.protocol, dataset, bench.data_dir), seed=seed, threads=bench.threads)
    cfg = cfg.override(model_settings(model, dataset, bench))
    if model_device(bench, model) != "cpu":
        cfg = cfg.override({"train": {"device": model_device(bench, model)}})
    over: dict[str, dict[str, float]] = {}
    for key, value in (variant or {}).items():
        section, name = GRID_FIELDS[key]
        over.setdefault(section, {})[name] = value
    return cfg.override(over) if over else cfg


def _setting(cfg: RunConfig, key: str) -> float:
    section, name = GRID_FIELDS[key]
    return float(getattr(getattr(cfg, section), name))


def variants(bench: BenchmarkConfig, dataset: str, model: str) -> list[dict[str, float]]:
    """The grid points of a model: every combination of the grid values that apply to it, the model's own
    setting first ([{}] when the grid has nothing for it). Points equal to the model's own settings are {}."""
    own = run_config(bench, dataset, model, bench.seeds[0])
    points: list[dict[str, float]] = [{}]
    for key, values in bench.grid:
        if model not in GRID_MODELS[key]:
            continue
        default = _setting(own, key)
        options = [default] + [v for v in dict.fromkeys(values) if v != default]
        points = [p | ({key: v} if v != default else {}) for p in points for v in options]
    return points


def variant_name(variant: dict[str, float]) -> str:
    """The run-directory suffix of a grid point: '' for the model's own settings, else '-lr0.002' etc."""
    return "".join(f"-{k}{v:g}" for k, v in sorted(variant.items()))


def dataset_label(dataset: str) -> str:
    """The folder name of a dataset: its registry name, or a file's stem."""
    from lightgode.data.datasets import DATASETS

    return dataset if dataset in DATASETS else Path(dataset).stem


def run_dir(bench: BenchmarkConfig, dataset: str, model: str, seed: int,
            variant: dict[str, float] | None = None) -> Path:
    return (Path(bench.out_dir) / bench.protocol / dataset_label(dataset) / model
            / f"seed{seed}{variant_name(variant or {})}")


@dataclass(frozen=True)
class Point:
    """One grid point of a (dataset, model, seed), as the benchmark has it: a complete run on disk (``path``), or
    a row recorded in an earlier report's CSV whose run is not on disk (``path`` None)."""
    variant: dict[str, float]
    path: Path | None
    valid: float  # validation NDCG@20 (-inf when unknown)


Recorded = dict[tuple[str, str, int, str], dict[str, Any]]
"""Recorded rows of one protocol by (dataset, model, seed, variant), as :func:`recorded_index` makes them."""


def recorded_index(rows: list[dict[str, Any]], protocol: str) -> Recorded:
    """The rows of an earlier report (``benchmark_report.read_recorded``) of ``protocol``, by run."""
    return {(r["dataset"], r["model"], r["seed"], r["variant"]): r for r in rows if r["protocol"] == protocol}


CHOSEN_IN_SETTINGS = {"gf-cf": ("alpha",), "bspm": ("beta", "T_s"), "mf-conv": ("L",)}
"""The parts of a model's settings column that the run chooses on validation (not known before it runs)."""


def same_settings(settings: str, cfg: RunConfig) -> bool:
    """Whether a recorded row's settings column is that of a run of ``cfg`` (the values the run chooses on
    validation left out). The column is a summary: settings it does not show (dim, patience) and the code that
    made the row are taken on trust; :func:`recorded_row` also checks the epoch budget and a wall-time cap."""
    def norm(text: str) -> str:
        for name in CHOSEN_IN_SETTINGS.get(cfg.model, ()):
            text = re.sub(rf"\b{re.escape(name)} [^,;\s]+", f"{name} *", text)
        return text

    return norm(settings) == norm(settings_summary(cfg.to_dict()))


def recorded_row(recorded: Recorded, bench: BenchmarkConfig, dataset: str, model: str, seed: int,
                 variant: dict[str, float], cfg: RunConfig | None = None) -> dict[str, Any] | None:
    """The recorded row of a run not on disk, when its settings are the run's (``cfg``, by default the grid
    point's); None otherwise."""
    row = recorded.get((dataset_label(dataset), model, seed, variant_name(variant).lstrip("-")))
    cfg = cfg or run_config(bench, dataset, model, seed, variant)
    if row is None or row["epochs_run"] > cfg.train.epochs:
        return None
    cap = bench.max_train_minutes * 60.0
    if row["capped"] and row["epochs_run"] < cfg.train.epochs and (cap == 0 or cap > row["fit_seconds"]):
        return None  # stopped by a wall-time cap that this benchmark lifts or raises: not the run asked for
    return row if same_settings(row["settings"], cfg) else None


def parse_variant(name: str) -> dict[str, float]:
    """The grid point of a run name's variant part: 'lr0.002' -> {'lr': 0.002} (inverse of :func:`variant_name`)."""
    return {k: float(v) for k, v in re.findall(r"([a-z]+)([0-9.]+(?:e[+-]?[0-9]+)?)", name)}


def valid_key(value: float) -> float:
    """How grid points compare on validation NDCG@20 (NaN counts as -inf); the first of equal points is kept."""
    return -math.inf if math.isnan(value) else value


def chosen_point(bench: BenchmarkConfig, dataset: str, model: str, seed: int,
                 recorded: Recorded | None = None) -> Point | None:
    """The point of (dataset, model, seed) with the best validation NDCG@20, chosen as the report chooses
    (:func:`select_variants`): over every complete run of the seed on disk (``seed<N>``, ``seed<N>-lr0.002``, ...,
    whatever grid made it) and, after them, the recorded rows of points not on disk."""
    folder = run_dir(bench, dataset, model, seed).parent
    points = []
    for path in sorted(folder.glob(f"seed{seed}*")):
        name = path.name
        if (RUN_NAME.fullmatch(name) and not name.endswith((REFIT_SUFFIX, TUNED_SUFFIX))
                and name.partition("-")[0] == f"seed{seed}"
                and is_complete(path)):
            value = artifacts.read_json(path / "metrics.json").get("valid", {}).get("ndcg@20", math.nan)
            points.append(Point(parse_variant(name.partition("-")[2]), path, float(value)))
    on_disk = {variant_name(p.variant) for p in points}
    for (ds, m, s, variant), row in (recorded or {}).items():
        if (ds, m, s) == (dataset_label(dataset), model, seed) and ("-" + variant if variant else "") not in on_disk:
            points.append(Point(parse_variant(variant), None, row["valid_ndcg@20"]))
    return max(points, key=lambda p: valid_key(p.valid), default=None)


def is_complete(path: Path) -> bool:
    try:
        artifacts.check_complete(path)
        return True
    except RunDirError:
        return False


def _run_mf_conv_on_base(cfg: RunConfig, out: Path, base_dir: Path) -> None:
    """mf-conv from the finished mf-bpr run of the same seed: only the post-training layers are fitted."""
    import torch

    from lightgode.models.conv import MFConv
    from lightgode.runs.workflow import evaluate_model, model_notes, peak_rss_mb, split_stats, write_run
    from lightgode.core.train import TrainResult

    t_start = time.perf_counter()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    base = artifacts.load_run(base_dir)
    split = base.split
    binfo = base.info
    result = TrainResult(int(binfo.get("best_epoch", 0)), base.metrics.get("valid", {}),
                         int(binfo.get("epochs_run", 0)), [])
    model = MFConv.from_config(cfg).with_base(torch.cat([base.user_embedding, base.item_embedding]), result)
    t0 = time.perf_counter()
    model.fit(split.train, split.valid if len(split.valid) else None)
    t_layers = time.perf_counter() - t0
    t1 = time.perf_counter()
    metrics = evaluate_model(model, split)
    t_eval = time.perf_counter() - t1
    bsec = binfo.get("seconds", {})
    info = {
        "model": cfg.model, "dataset": split_stats(split), "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run, "stopped_early": bool(binfo.get("stopped_early", False)),
        "base_run": str(base_dir),
        "seconds": {"data": 0.0, "fit": float(bsec.get("fit", 0.0)) + t_layers,
                    "train_epochs": float(bsec.get("train_epochs", 0.0)),
                    "validation": float(bsec.get("validation", 0.0)), "post_training": t_layers,
                    "evaluate": t_eval, "total": float(bsec.get("total", 0.0)) + time.perf_counter() - t_start},
        "seconds_per_epoch": float(binfo.get("seconds_per_epoch", 0.0)),
        "peak_rss_mb": max(peak_rss_mb(), float(binfo.get("peak_rss_mb", 0.0))),
        "device": binfo.get("device", "cpu"),
        "valid_by_layers": {str(k): v for k, v in model.valid_by_layers_.items()},
    }
    info.update(model_notes(model))
    info["capped"] = bool(binfo.get("capped", False))
    write_run(out, cfg, split, model, metrics, info)


def _acquire(lock: Path) -> int | None:
    """Take the run's lock (``locks.try_acquire``): the open descriptor, or None when another process holds it."""
    return try_acquire(lock)


def _release(lock: Path, fd: int) -> None:
    release(lock, fd)


def _held_elsewhere(lock: Path) -> bool:
    """Whether another live process holds the run's lock (it is training that run now)."""
    return held_elsewhere(lock)


def _execute(spec: dict[str, Any]) -> bool:
    """One run, from a plain dict (so that it can cross a process boundary); False when it was left alone.

    A run whose lock (``<out>.lock``) another benchmark invocation holds is being trained there and is left to it;
    taking the lock is one atomic step, so two invocations never train the same run.
    """
    out = Path(spec["out"])
    lock = out.with_name(out.name + ".lock")
    base_lock = out.parent.parent / "mf-bpr" / (out.name + ".lock")
    if out.parent.name == "mf-conv" and not spec.get("base") and _held_elsewhere(base_lock):
        log.warning("%s waits for the mf-bpr run another process is training; skipped", out)
        return False
    fd = _acquire(lock)
    if fd is None:
        log.warning("%s is being trained by another process; skipped", out)
        return False
    try:
        _execute_unlocked(spec)
    finally:
        _release(lock, fd)
    return True


def _execute_unlocked(spec: dict[str, Any]) -> None:
    from lightgode.runs.workflow import checkpoint_dir, resume_config, train_run

    out = Path(spec["out"])
    if spec.get("tune_from"):
        _tune_copy(Path(spec["tune_from"]), out, Path(spec["t_from"]) if spec.get("t_from") else None,
                   spec["sources"])
        return
    cfg = RunConfig.from_dict(spec["config"])
    base = spec.get("base")
    if base:
        _run_mf_conv_on_base(cfg, out, Path(base))
        return
    ckpt_config = checkpoint_dir(out) / "config.json"
    if ckpt_config.is_file() and changed_settings(artifacts.read_json(ckpt_config), cfg) is None:
        resumed = resume_config(out)  # continued on this benchmark's device, wherever it started
        train_run(replace(resumed, train=replace(resumed.train, device=cfg.train.device)), out, overwrite=True,
                  resume=True)
    else:  # no checkpoint, or one of other settings (removed: the run starts again)
        train_run(cfg, out, overwrite=True)


LEFT_ALONE = 3
"""Exit code of a run process that found its run locked by another invocation."""


def _child(spec: dict[str, Any], error_file: str) -> None:
    # a spawned process starts with logging unconfigured: say one line per epoch so a run of hours shows progress
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("lightgode.core.train").setLevel(logging.INFO)
    try:
        ran = _execute(spec)
    except LightGODEError as exc:
        Path(error_file).write_text(str(exc))
        raise SystemExit(2) from None
    except KeyboardInterrupt:  # Ctrl-C or a timeout's SIGINT: the run keeps its last epoch's checkpoint
        Path(error_file).write_text("interrupted (its checkpoint keeps the last complete epoch)")
        raise SystemExit(130) from None
    if not ran:
        raise SystemExit(LEFT_ALONE)


def _run_isolated(spec: dict[str, Any]) -> bool:
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


REFIT_SUFFIX = ".refit"
TUNED_SUFFIX = ".tuned"
LABELS = {"": "", REFIT_SUFFIX: " (refit)", TUNED_SUFFIX: " (T on validation)",
          REFIT_SUFFIX + TUNED_SUFFIX: " (refit, T on validation)"}
"""Row labels of the derived runs, by run-directory suffix ("seed2020.refit" -> "<model> (refit)")."""
REFIT_MODELS = ("pop", "mf-bpr", "directau", "lightgcn", "lightgode", "gf-cf", "bspm")
"""Models refit on the whole training file (mf-conv has no refit: it is layers on an mf-bpr run)."""


def refit_config(selected: Path) -> RunConfig:
    """The settings of a chosen run (grid point, filter or layer settings picked on validation), trained on every
    training interaction, without validation, for the number of epochs early stopping chose."""
    best_epoch = int(artifacts.read_json(selected / "train.json").get("best_epoch", 0))
    epochs = max(best_epoch, 1)  # no validation: trains exactly this many epochs
    return RunConfig.from_stored(artifacts.read_json(selected / "config.json")).override(
        {"data": {"ratios": (1.0, 0.0, 0.0)}, "train": {"epochs": epochs}})


def _refit_is_current(out: Path, cfg: RunConfig) -> bool:
    """Whether a complete refit run was made from these settings (not from a grid point since superseded)."""
    if not is_complete(out):
        return False
    try:  # through RunConfig: a setting added since, at its default, does not make the refit stale
        made = RunConfig.from_stored(artifacts.read_json(out / "config.json"))
    except ConfigError:
        return False
    # patience plays no part without validation (refits made before it was left alone had it at 1); nor does
    # the device the refit trained on
    return replace(made, train=replace(made.train, patience=cfg.train.patience, device=cfg.train.device)) == cfg


def _conv_base(out: Path) -> Path | None:
    """The mf-bpr run a complete mf-conv run was built on."""
    base = artifacts.read_json(out / "train.json").get("base_run") if (out / "train.json").is_file() else None
    return Path(base) if base else None


SELECTED_FIELDS = ("alpha", "idl_beta", "t_sharp", "layers")
"""Baseline settings a run stores after choosing them on validation (the benchmark gives the candidates)."""


def _comparable(cfg: RunConfig) -> dict[str, Any]:
    """What makes two runs of a spec the same run: every setting but the candidates chosen from on validation,
    the wall-time cap, the thread count and the device (they change neither the model nor its results' meaning:
    a run trained on a GPU draws the same batches and negatives as on the CPU, up to float rounding)."""
    d = cfg.to_dict()
    d["baseline"] = {k: v for k, v in d["baseline"].items() if k not in SELECTED_FIELDS + ("max_train_seconds",)}
    d["train"] = {k: v for k, v in d["train"].items() if k != "device"}
    d.pop("threads", None)
    return d


def changed_settings(made: dict[str, Any], cfg: RunConfig) -> str | None:
    """None when a run's stored settings (``config.json`` as written, or a checkpoint's) are the benchmark's
    ``cfg``; else the first difference, "train.sampling: pairs -> users". A setting added to the configs since
    the run was made counts at its default. Unlike a refit's check, the candidates chosen on validation are left
    out: the benchmark's settings list them, the run stores its choice."""
    try:
        old = _comparable(RunConfig.from_stored(made))
    except ConfigError as exc:
        return f"unreadable settings ({exc})"
    new = _comparable(cfg)
    for section in sorted(set(old) | set(new)):
        a, b = old.get(section), new.get(section)
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b)):
                if a.get(key) != b.get(key):
                    return f"{section}.{key}: {a.get(key)} -> {b.get(key)}"
        elif a != b:
            return f"{section}: {a} -> {b}"
    return None


@dataclass
class BenchmarkProgress:
    done: list[Path] = field(default_factory=list)  # runs completed by this invocation
    skipped: list[Path] = field(default_factory=list)  # runs already complete
    recorded: list[Path] = field(default_factory=list)  # runs not on disk, recorded with the same settings


def run_benchmark(bench: BenchmarkConfig, *, report: Callable[[str], None] | None = None,
                  recorded: list[dict[str, Any]] | None = None) -> BenchmarkProgress:
    """Run every missing (dataset, model, seed) of ``bench``; complete runs are skipped, and so are runs not on
    disk whose row ``recorded`` (an earlier report's CSV rows) holds with the same settings: a grid point recorded
    so counts as complete, and what is derived from a point (mf-conv's layers, T on validation, a refit) is made
    again only when a point on disk wins on validation."""
    progress = BenchmarkProgress()
    say = report or (lambda msg: log.info(msg))
    known = recorded_index(recorded or [], bench.protocol)
    order = sorted(bench.models, key=lambda m: RUN_ORDER.index(m) if m in RUN_ORDER else len(RUN_ORDER))
    for dataset in bench.datasets:
        for seed in bench.seeds:
            for model, variant in ((m, v) for m in order for v in variants(bench, dataset, m)):
                out = run_dir(bench, dataset, model, seed, variant)
                point = chosen_point(bench, dataset, "mf-bpr", seed, known) if model == "mf-conv" else None
                # mf-conv carries the trained settings of the mf-bpr point it is built on
                cfg = run_config(bench, dataset, model, seed, point.variant if point else variant)
                base = point.path if point else None
                if is_complete(out) and not (base is not None and _conv_base(out) != base):
                    changed = changed_settings(artifacts.read_json(out / "config.json"), cfg)
                    if changed is None:
                        progress.skipped.append(out)
                        continue
                    say(f"{out} was made with other settings ({changed}); training it again")
                elif (base is None and not out.with_name(out.name + ".ckpt").exists()  # pipeline.checkpoint_dir
                      and recorded_row(known, bench, dataset, model, seed, variant, cfg) is not None):
                    # (mf-conv on an mf-bpr run on disk is rebuilt on it: post-training layers only; a run
                    # begun again, --retrain-recorded, is resumed from its checkpoint)
                    progress.recorded.append(out)
                    continue
                spec: dict[str, Any] = {"config": cfg.to_dict(), "out": str(out)}
                if base is not None:  # mf-conv on the mf-bpr grid point chosen on validation
                    spec["base"] = str(base)
                out.parent.mkdir(parents=True, exist_ok=True)
                say(f"running {bench.protocol} / {dataset} / {model}{variant_name(variant)} / seed {seed}")
                _run_spec(bench, spec, progress, say)
            tune = bench.tune_t and "lightgode" in bench.models
            if tune:
                _tune_t(bench, dataset, seed, progress, say, known)
            if bench.refit:
                for model in (m for m in order if m in REFIT_MODELS):
                    _refit(bench, dataset, model, seed, progress, say, known)
                if tune:
                    _tune_t(bench, dataset, seed, progress, say, known, refit=True)
    if progress.recorded:
        say(f"{len(progress.recorded)} runs not on disk are recorded in the report's CSV with the same settings and "
            "were not trained again (--retrain-recorded trains them)")
    return progress


def _digest(run: Path) -> str:
    """A fingerprint of a complete run's settings and results (a derived run is redone when its source changes)."""
    import hashlib

    return hashlib.sha256((run / "config.json").read_bytes() + (run / "metrics.json").read_bytes()).hexdigest()[:16]


def _tune_t(bench: BenchmarkConfig, dataset: str, seed: int, progress: "BenchmarkProgress",
            say: Callable[[str], None], recorded: Recorded | None = None, *, refit: bool = False) -> None:
    """LightGODE with T chosen on validation, from the run chosen on validation (``seed<N>.tuned``); with
    ``refit``, the refit run propagated with that T (``seed<N>.refit.tuned``: the refit has no validation)."""
    own = run_dir(bench, dataset, "lightgode", seed)
    tuned = own.with_name(own.name + TUNED_SUFFIX)
    if refit:
        source, t_from, out = own.with_name(own.name + REFIT_SUFFIX), tuned, own.with_name(
            own.name + REFIT_SUFFIX + TUNED_SUFFIX)
    else:
        point = chosen_point(bench, dataset, "lightgode", seed, recorded)
        source, t_from, out = point.path if point else None, None, tuned
        if point is not None and point.path is None:  # a recorded point won: its recorded copy stands
            _set_aside(out, say)
            return
    if source is None or not is_complete(source) or (t_from is not None and not is_complete(t_from)):
        return
    sources = {"run": str(source), "digest": _digest(source)}
    if t_from is not None:
        sources |= {"t_from": str(t_from), "t_digest": _digest(t_from)}
    if is_complete(out) and artifacts.read_json(out / "train.json").get("derived_from") == sources:
        progress.skipped.append(out)
        return
    spec = {"out": str(out), "tune_from": str(source), "t_from": str(t_from) if t_from else None, "sources": sources}
    say(f"choosing T on validation for {source}" if t_from is None else f"propagating {source} with the T of {t_from}")
    _run_spec(bench, spec, progress, say)


def _tune_copy(source: Path, out: Path, t_from: Path | None, sources: dict[str, str]) -> None:
    """Write ``out``: the LightGODE run ``source`` with T chosen on its validation (``t_from`` None) or with the T
    of the run ``t_from``; E0 is the source's, only the propagation and the evaluation are redone."""
    import torch

    from lightgode.runs.workflow import evaluate_model

    from lightgode.runs.store import load_model, run_config
    from lightgode.core.tune import TuneConfig, tune_split
    from lightgode.runs.tuned import write_tuned_run

    run = artifacts.load_run(source)
    cfg = run_config(run)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    t0 = time.perf_counter()
    config, result = dict(run.config), None
    if t_from is None:
        E0 = torch.cat([run.user_embedding, run.item_embedding], dim=0)
        result = tune_split(E0, run.split, ode=cfg.ode, eval_config=cfg.eval,
                            config=TuneConfig(metric=cfg.eval.valid_metric, seed=cfg.seed, **TUNE_T))
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
    info["seconds"] = sec | {"fit": float(sec.get("fit", 0.0)) + t_search, "post_training": t_search,
                             "evaluate": t_eval}
    info["derived_from"] = sources
    if result is not None:
        info["tune"] = {k: v for k, v in result.to_dict().items() if k != "points"}
    write_tuned_run(source, config, metrics, result, out=out, info=info,
                    title=f"{cfg.data.data} seed {cfg.seed}, T on validation")


def _refit(bench: BenchmarkConfig, dataset: str, model: str, seed: int, progress: "BenchmarkProgress",
           say: Callable[[str], None], recorded: Recorded | None = None) -> None:
    """Retrain the run chosen on validation on the whole training file (``seed<N>.refit``); a recorded point that
    wins keeps its recorded refit row."""
    point = chosen_point(bench, dataset, model, seed, recorded)
    chosen = point.path if point else None
    out = run_dir(bench, dataset, model, seed).with_name(f"seed{seed}{REFIT_SUFFIX}")
    if point is not None and chosen is None:  # a recorded point won: its recorded refit stands
        _set_aside(out, say)
    if chosen is None:
        return
    cfg = refit_config(chosen)  # trained where this benchmark trains, wherever the chosen run was
    cfg = cfg.override({"train": {"device": model_device(bench, model)}})
    if _refit_is_current(out, cfg):
        progress.skipped.append(out)
        return
    # a refit made from other settings stays in place until its replacement is complete (then renamed over it)
    say(f"refitting {chosen} on all training interactions ({cfg.train.epochs} epochs)")
    _run_spec(bench, {"config": cfg.to_dict(), "out": str(out)}, progress, say)


def _set_aside(derived: Path, say: Callable[[str], None]) -> None:
    """Move a derived run (T on validation, refit) made from a point that has since lost on validation to a
    recorded point out of the report's way (``<name>.superseded``; the recorded row of the winner stands)."""
    if derived.is_dir():
        target = derived.with_name(derived.name + ".superseded")
        if target.exists():
            import shutil
            shutil.rmtree(target)
        derived.rename(target)
        say(f"{derived} was made from a grid point that lost on validation to a recorded one; moved to {target.name}")


def _run_spec(bench: BenchmarkConfig, spec: dict[str, Any], progress: "BenchmarkProgress",
              say: Callable[[str], None]) -> None:
    """Run one spec (in its own process unless ``bench.isolate`` is off) and record it as done; a run another
    process is training is left to it (``_execute`` checks again, for the race between the two)."""
    out = Path(spec["out"])
    if _held_elsewhere(out.with_name(out.name + ".lock")):
        say(f"{out} is being trained by another process; left to it")
        return
    t0 = time.perf_counter()
    if not (_run_isolated(spec) if bench.isolate else _execute(spec)):
        say(f"{out} was taken by another process; left to it")
        return
    say(f"finished {spec['out']} in {time.perf_counter() - t0:.0f} s")
    progress.done.append(Path(spec["out"]))


RUN_NAME = re.compile(r"seed\d+(?:-[a-z]+[0-9.e+-]+)*(?:\.refit)?(?:\.tuned)?")
"""The name of a run directory: seed, grid point (``variant_name``) and derived-run suffixes."""


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
        rows.append({
            "protocol": protocol, "dataset": path.parent.parent.name, "model": path.parent.name + LABELS[suffix],
            "seed": int(config.get("seed", 0)), "variant": path.name.partition("-")[2],
            "test_recall@20": test.get("recall@20", math.nan), "test_ndcg@20": test.get("ndcg@20", math.nan),
            "valid_ndcg@20": valid.get("ndcg@20", math.nan),
            "best_epoch": info.get("best_epoch", 0), "epochs_run": info.get("epochs_run", 0),
            "seconds_per_epoch": info.get("seconds_per_epoch", 0.0), "fit_seconds": training_seconds(sec),
            "inference_seconds": sec.get("evaluate", math.nan), "peak_rss_mb": info.get("peak_rss_mb", math.nan),
            "capped": bool(info.get("capped", False)) or budget_spent(info, config, bool(valid)),
            "settings": settings_summary(config), "device": info.get("device", "cpu"),
        })
    return rows


def budget_spent(info: dict[str, Any], config: dict[str, Any], validated: bool) -> bool:
    """Whether a validated run trained its whole epoch budget without early stopping: it was still improving
    (or had not yet waited out its patience), so its accuracy and time are lower bounds, as under a wall-time
    cap. A run without validation (a refit) trains a set number of epochs by design."""
    run, budget = int(info.get("epochs_run", 0)), config.get("train", {}).get("epochs")
    return (validated and run > 0 and budget is not None and run >= int(budget)
            and not info.get("stopped_early", True))


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
        rows.append({"dataset": out.parent.parent.name, "model": out.parent.name, "seed": out.name[len("seed"):],
                     "epoch": int(meta["epoch"]), "best_epoch": int(meta["best_epoch"]),
                     "best_valid_ndcg@20": float(meta["best_valid"].get("ndcg@20", math.nan)),
                     "seconds_per_epoch": float(np.mean([r.get("train_seconds", math.nan) for r in history]))})
    return rows


def settings_summary(config: dict[str, Any]) -> str:
    """The settings that matter for a model, as one short string (after validation selection)."""
    m, t, b, o = config.get("model"), config.get("train", {}), config.get("baseline", {}), config.get("ode", {})
    if m == "pop":
        return "-"
    if m in ("gf-cf",):
        return f"rank {b.get('rank')}, alpha {b.get('alpha', [None])[0]}"
    if m == "bspm":
        return (f"rank {b.get('rank')}, beta {b.get('idl_beta', [None])[0]}, T_b {b.get('t_blur')}, "
                f"T_s {b.get('t_sharp', [None])[0]} ({b.get('sharp_solver')})")
    common = f"lr {t.get('lr')}, batch {t.get('batch_size')}"
    if m in ("mf-bpr", "lightgcn", "mf-conv"):
        common += f", reg {b.get('reg')}, {t.get('sampling', 'pairs')} sampling"
        if m != "mf-bpr":
            common += f", L {b.get('layers', [None])[0]}"
        return common
    common += f", gamma {t.get('gamma')}, wd {t.get('weight_decay')}"
    if m == "lightgode":
        common += f", T {float(o.get('t', math.nan)):.3g}"
    return common


def select_variants(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:  # the choice of chosen_point
    """Per (dataset, model, seed), the grid point with the best validation NDCG@20 (test plays no part); each
    kept row says in ``grid_points`` how many points it was chosen from."""
    groups: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["dataset"], r["model"], r["seed"]), []).append(r)
    return [max(rs, key=lambda r: valid_key(r["valid_ndcg@20"]))
            | {"grid_points": len(rs)} for rs in groups.values()]


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
        def stat(key: str) -> tuple[float, float]:
            v = np.array([r[key] for r in rs], dtype=float)
            return float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else 0.0

        out.append({"dataset": dataset, "model": model, "seeds": len(rs),
                    **{k: stat(k) for k in ("test_recall@20", "test_ndcg@20", "best_epoch", "epochs_run",
                                            "seconds_per_epoch", "fit_seconds", "inference_seconds",
                                            "peak_rss_mb")},
                    "capped": any(r["capped"] for r in rs), "grid_points": max(r["grid_points"] for r in rs),
                    "stale": (dataset, model) in stale,
                    "gpu_seeds": sum(r.get("device", "cpu") != "cpu" for r in rs),
                    "settings": "; ".join(sorted({r["settings"] for r in rs}))})
    order = {m: i for i, m in enumerate(ALL_MODELS)}
    labels = list(LABELS.values())

    def key(r: dict[str, Any]) -> tuple[str, bool, int, int]:  # refits after the rest; a model's rows together
        name, _, label = r["model"].partition(" ")
        return (r["dataset"], "(refit" in label, order.get(name, 99),
                labels.index(" " + label) if label and " " + label in labels else 0)

    return sorted(out, key=key)
