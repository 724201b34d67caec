"""The benchmark's grid and settings: which runs it makes, with which settings, under which directory names.

A benchmark is a :class:`BenchmarkConfig`; each (protocol, dataset, model, seed, grid point) is one run of
:func:`run_config` in :func:`run_dir`. Derived runs carry a suffix (``seed2020.refit``, ``seed2020.tuned``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lightgode.core.config import DataConfig, RunConfig, check_device_name, paper_overrides
from lightgode.errors import ConfigError
from lightgode.names import BENCH_MODELS, PROTOCOLS

ALL_MODELS = BENCH_MODELS
RUN_ORDER = ("pop", "gf-cf", "bspm", "lightgode", "directau", "mf-bpr", "mf-conv", "lightgcn")
"""Cheapest first; mf-conv after mf-bpr, whose trained run it reuses."""

PUBLISHED_GOWALLA = {"lightgcn": (0.1830, 0.1554), "gf-cf": (0.1849, 0.1518), "bspm": (0.1920, 0.1597)}
"""Published Recall@20 / NDCG@20 on the LightGCN Gowalla split (LightGCN, GF-CF and BSPM papers)."""

GRID_FIELDS = {"lr": ("train", "lr"), "reg": ("baseline", "reg"), "gamma": ("train", "gamma")}
"""Trained settings a benchmark grid may vary (``--grid lr=...``): where each lives in the run config."""
GRID_MODELS = {
    "lr": ("mf-bpr", "lightgcn", "directau", "lightgode"),
    "reg": ("mf-bpr", "lightgcn"),
    "gamma": ("directau", "lightgode"),
}
"""The models each grid field applies to (mf-conv follows the mf-bpr run chosen on validation)."""

CONV_LAYERS = tuple(range(1, 11))
GF_CF_ALPHA = (0.0, 0.1, 0.3, 0.5, 1.0, 2.0, 4.0)
BSPM_BETA = (0.0, 0.2, 0.5, 1.0)
BSPM_T_SHARP = (1.0, 2.5)
TUNE_T = {"t_max": 16.0, "grid": 9, "refine": 4, "extend": 4}
"""The search of LightGODE's T on validation (tune.TuneConfig): T in 0, 2, ..., 16, up to 24 while the curve still
rises, then 4 bisections around the best point; about 15 validation passes, no retraining."""

REFIT_SUFFIX = ".refit"
TUNED_SUFFIX = ".tuned"
LABELS = {
    "": "",
    REFIT_SUFFIX: " (refit)",
    TUNED_SUFFIX: " (T on validation)",
    REFIT_SUFFIX + TUNED_SUFFIX: " (refit, T on validation)",
}
"""Row labels of the derived runs, by run-directory suffix ("seed2020.refit" -> "<model> (refit)")."""
REFIT_MODELS = ("pop", "mf-bpr", "directau", "lightgcn", "lightgode", "gf-cf", "bspm")
"""Models refit on the whole training file (mf-conv has no refit: it is layers on an mf-bpr run)."""

RUN_NAME = re.compile(r"seed\d+(?:-[a-z]+[0-9.e+-]+)*(?:\.refit)?(?:\.tuned)?")
"""The name of a run directory: seed, grid point (``variant_name``) and derived-run suffixes."""


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
        over["baseline"] = {
            "idl_beta": list(BSPM_BETA),
            "t_sharp": list(BSPM_T_SHARP),
            "rank": 256,
            "t_blur": 1.0,
            "steps_blur": 1,
            "steps_sharp": 1,
            "sharp_solver": "rk4",
        }
    if bench.quick:
        over.setdefault("train", {})["epochs"] = 3
        over.setdefault("baseline", {})["rank"] = 8
    return over


def model_device(bench: BenchmarkConfig, model: str) -> str:
    """Where the benchmark trains ``model``: its ``--device``, but the CPU for pop, gf-cf and bspm (scipy)."""
    from lightgode.models import TRAINING_FREE

    return "cpu" if model in TRAINING_FREE else bench.device


def run_config(
    bench: BenchmarkConfig, dataset: str, model: str, seed: int, variant: dict[str, float] | None = None
) -> RunConfig:
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


def parse_variant(name: str) -> dict[str, float]:
    """The grid point of a run name's variant part: 'lr0.002' -> {'lr': 0.002} (inverse of :func:`variant_name`)."""
    return {k: float(v) for k, v in re.findall(r"([a-z]+)([0-9.]+(?:e[+-]?[0-9]+)?)", name)}


def dataset_label(dataset: str) -> str:
    """The folder name of a dataset: its registry name, or a file's stem."""
    from lightgode.data.datasets import DATASETS

    return dataset if dataset in DATASETS else Path(dataset).stem


def run_dir(
    bench: BenchmarkConfig, dataset: str, model: str, seed: int, variant: dict[str, float] | None = None
) -> Path:
    return (
        Path(bench.out_dir)
        / bench.protocol
        / dataset_label(dataset)
        / model
        / f"seed{seed}{variant_name(variant or {})}"
    )


def settings_summary(config: dict[str, Any]) -> str:
    """The settings that matter for a model, as one short string (after validation selection)."""
    m, t, b, o = config.get("model"), config.get("train", {}), config.get("baseline", {}), config.get("ode", {})
    if m == "pop":
        return "-"
    if m in ("gf-cf",):
        return f"rank {b.get('rank')}, alpha {b.get('alpha', [None])[0]}"
    if m == "bspm":
        return (
            f"rank {b.get('rank')}, beta {b.get('idl_beta', [None])[0]}, T_b {b.get('t_blur')}, "
            f"T_s {b.get('t_sharp', [None])[0]} ({b.get('sharp_solver')})"
        )
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
