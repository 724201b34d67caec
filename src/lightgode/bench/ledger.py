"""The ledger of runs the benchmark counts as made: complete run directories on disk, and rows recorded in an
earlier report's CSV whose run directory is gone.

A run directory can be lost (runs/ is not kept with the code) while its row stays in the report's CSV: a run
recorded there with the benchmark's settings counts as complete (:func:`chosen_point`, :func:`recorded_row`), so a
fresh machine trains only what is missing and a new grid point is weighed against the recorded ones. A run on disk
counts while its stored settings are the benchmark's (:func:`changed_settings`).
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lightgode.bench.settings import (
    REFIT_SUFFIX,
    RUN_NAME,
    TUNED_SUFFIX,
    BenchmarkConfig,
    dataset_label,
    parse_variant,
    run_config,
    run_dir,
    settings_summary,
    variant_name,
)
from lightgode.core.config import RunConfig
from lightgode.errors import ConfigError, DataError, RunDirError
from lightgode.runs import store as artifacts

CSV_COLUMNS = (
    "protocol",
    "dataset",
    "model",
    "seed",
    "variant",
    "test_recall@20",
    "test_ndcg@20",
    "valid_ndcg@20",
    "best_epoch",
    "epochs_run",
    "seconds_per_epoch",
    "fit_seconds",
    "inference_seconds",
    "peak_rss_mb",
    "capped",
    "settings",
    "device",
)
OPTIONAL_COLUMNS = {"device": "cpu"}
"""Columns added since the first reports, with the value an older CSV's rows take."""

_KEY = ("protocol", "dataset", "model", "seed", "variant")
_INTS = ("best_epoch", "epochs_run")
_FLOATS = tuple(c for c in CSV_COLUMNS[5:14] if c not in _INTS)


def read_recorded(csv_path: Path) -> list[dict[str, Any]]:
    """The rows of an earlier report's CSV, typed as ``collect`` makes them; [] when there is none. A run's row
    outlives its directory there (runs/ is not kept with the code), so a report rewritten on a fresh checkout
    still holds what was measured."""
    if not csv_path.is_file():
        return []
    with open(csv_path, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or []) and c not in OPTIONAL_COLUMNS]
        if missing:
            raise DataError(
                f"{csv_path}: not a benchmark CSV (no column {missing[0]!r}); move it away or pass --drop-recorded"
            )
        try:
            rows = [
                {
                    **r,
                    **{c: r.get(c) or default for c, default in OPTIONAL_COLUMNS.items()},
                    "seed": int(r["seed"]),
                    "capped": r["capped"] == "True",
                    **{c: float(r[c]) for c in _FLOATS},
                    **{c: int(float(r[c])) for c in _INTS},
                }
                for r in reader
            ]
        except ValueError as exc:
            raise DataError(f"{csv_path}: malformed row {reader.line_num}: {exc}") from None
    unique: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in rows:  # one row per run: a key met twice keeps its first row
        unique.setdefault(tuple(r[k] for k in _KEY), r)
    return list(unique.values())


def with_recorded(rows: list[dict[str, Any]], recorded: list[dict[str, Any]], protocol: str) -> list[dict[str, Any]]:
    """The runs on disk, plus the recorded rows of ``protocol`` whose run is not on disk (marked ``recorded``);
    a run on disk replaces its recorded row."""
    on_disk = {tuple(r[k] for k in _KEY) for r in rows}
    return rows + [
        r | {"recorded": True}
        for r in recorded
        if r["protocol"] == protocol and tuple(r[k] for k in _KEY) not in on_disk
    ]


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
    """The rows of an earlier report (:func:`read_recorded`) of ``protocol``, by run."""
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


def recorded_row(
    recorded: Recorded,
    bench: BenchmarkConfig,
    dataset: str,
    model: str,
    seed: int,
    variant: dict[str, float],
    cfg: RunConfig | None = None,
) -> dict[str, Any] | None:
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


def valid_key(value: float) -> float:
    """How grid points compare on validation NDCG@20 (NaN counts as -inf); the first of equal points is kept."""
    return -math.inf if math.isnan(value) else value


def chosen_point(
    bench: BenchmarkConfig, dataset: str, model: str, seed: int, recorded: Recorded | None = None
) -> Point | None:
    """The point of (dataset, model, seed) with the best validation NDCG@20, chosen as the report chooses
    (:func:`select_variants`): over every complete run of the seed on disk (``seed<N>``, ``seed<N>-lr0.002``, ...,
    whatever grid made it) and, after them, the recorded rows of points not on disk."""
    folder = run_dir(bench, dataset, model, seed).parent
    points = []
    for path in sorted(folder.glob(f"seed{seed}*")):
        name = path.name
        if (
            RUN_NAME.fullmatch(name)
            and not name.endswith((REFIT_SUFFIX, TUNED_SUFFIX))
            and name.partition("-")[0] == f"seed{seed}"
            and is_complete(path)
        ):
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
