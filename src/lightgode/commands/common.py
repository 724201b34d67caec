"""Argument groups and helpers shared by subcommands."""

from __future__ import annotations

import argparse
import math
from typing import TYPE_CHECKING

from lightgode.errors import ConfigError
from lightgode.names import FORMATS, SOLVERS, SPLIT_KINDS

if TYPE_CHECKING:
    from lightgode.core.config import RunConfig
    from lightgode.core.ode import ODEConfig

FLAG_SECTIONS = {
    "data": (
        "data",
        "test",
        "format",
        "data_dir",
        "user_col",
        "item_col",
        "rating_col",
        "rating_threshold",
        "timestamp_col",
        "max_id_length",
        "skip_bad_rows",
        "kcore",
        "split",
        "ratios",
    ),
    "train": (
        "dim",
        "lr",
        "weight_decay",
        "gamma",
        "batch_size",
        "epochs",
        "patience",
        "valid_every",
        "optimizer",
        "sampling",
        "device",
    ),
    "ode": ("t", "solver", "steps"),
    "eval": ("ks", "eval_batch_size"),
    "baseline": ("layers", "reg", "conv_base", "alpha", "rank", "init_std"),
}
"""The RunConfig section of each flag name that commands set (``config_from_args``)."""


def positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return v


def t_or_auto(text: str) -> float | str:
    """A horizon T, or the word 'auto' (choose T on validation after training)."""
    return "auto" if text.strip().lower() == "auto" else positive_float(text)


def add_ode_args(p: argparse.ArgumentParser, *, allow_auto: bool = False) -> None:
    g = p.add_argument_group("post-training ODE")
    if allow_auto:
        g.add_argument(
            "--t",
            type=t_or_auto,
            help="ODE horizon T (>= 0), or 'auto': keep the dataset's (or the "
            "default) T for early stopping, then choose T on validation",
        )
    else:
        g.add_argument("--t", type=positive_float, help="ODE horizon T (>= 0)")
    g.add_argument("--solver", choices=SOLVERS, help="ODE solver (default euler)")
    g.add_argument("--steps", type=int, help="steps of a fixed-step solver (default 1)")


def add_progress_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--progress", action="store_true", help="progress bars even when stderr is not a terminal")


def ode_from_args(args: argparse.Namespace, base: ODEConfig) -> ODEConfig | None:
    """``base`` with the --t/--solver/--steps flags applied, or None when none was given."""
    over = {k: getattr(args, k) for k in ("t", "solver", "steps") if getattr(args, k, None) is not None}
    if not over:
        return None
    from dataclasses import replace

    return replace(base, **over)


def check_k(k: int) -> int:
    if k <= 0:
        raise ConfigError(f"-k must be > 0, got {k}")
    return k


def format_metrics(metrics: dict[str, dict[str, float]]) -> str:
    """Metrics as a small table: one row per metric, one column per split."""
    parts = list(metrics)
    keys = sorted({k for m in metrics.values() for k in m}, key=lambda s: (s.split("@")[0], int(s.split("@")[1])))
    lines = ["metric        " + "".join(f"{p:>10}" for p in parts)]
    for k in keys:
        lines.append(f"{k:<14}" + "".join(f"{metrics[p].get(k, float('nan')):>10.4f}" for p in parts))
    return "\n".join(lines)


def add_data_args(p: argparse.ArgumentParser) -> None:
    """The data flags of ``train`` and ``search``: what to read, how, and how to split it."""
    g = p.add_argument_group("data")
    g.add_argument(
        "--data",
        help="dataset name (amazon-beauty, amazon-toys-games, gowalla) or a file path (with --test: the training file)",
    )
    g.add_argument(
        "--test",
        metavar="TEST",
        help="a test file of your own beside --data TRAIN (implies --split "
        "given): read with the same format and column options, the same raw id in both files is the same "
        "user or item; validation is carved per user from TRAIN (--ratios' valid share); --kcore filters "
        "TRAIN only; test rows whose user or item is not in the (filtered) TRAIN are dropped, with a "
        "warning giving their count",
    )
    g.add_argument("--format", choices=("auto", *FORMATS), help="file format (default: from the file name)")
    g.add_argument(
        "--data-dir", help="folder with the named datasets (else $LIGHTGODE_DATA, ../shared/datasets, the bundled copy)"
    )
    g.add_argument("--user-col", help="user column of CSV/TSV/Parquet files (default user)")
    g.add_argument("--item-col", help="item column of CSV/TSV/Parquet files (default item)")
    g.add_argument("--rating-col", help="rating column (optional)")
    g.add_argument("--rating-threshold", type=positive_float, help="keep rows with rating >= this")
    g.add_argument("--timestamp-col", help="timestamp column (optional)")
    g.add_argument(
        "--max-id-length", type=int, metavar="N", help="refuse a user or item id longer than N characters (default 256)"
    )
    g.add_argument(
        "--skip-bad-rows",
        action="store_true",
        default=None,
        help="skip (and count) table rows with a wrong number of fields or a missing or too long id, "
        "instead of stopping at the first",
    )
    g.add_argument("--kcore", type=int, help="k-core filter on users and items (default 5; 0 disables)")
    g.add_argument(
        "--split",
        choices=SPLIT_KINDS,
        help="split protocol (default random 0.8/0.1/0.1 per user; given: fixed files, --test or gowalla's)",
    )
    g.add_argument(
        "--ratios",
        type=positive_float,
        nargs=3,
        metavar=("TRAIN", "VALID", "TEST"),
        help="split shares (default 0.8 0.1 0.1)",
    )


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """The run's settings from parsed flags: defaults < the paper's settings for a named dataset < config file
    (``--config``) < flags. Flags a command does not define count as not given."""
    from lightgode.core.config import RunConfig, load_config_file, paper_overrides

    config = getattr(args, "config", None)
    file_over = load_config_file(config) if config else {}
    file_data = file_over.get("data") if isinstance(file_over.get("data"), dict) else {}
    test, split = getattr(args, "test", None), getattr(args, "split", None)
    if test is not None and split not in (None, "given"):
        raise ConfigError(f"--test needs --split given (or no --split), not --split {split}")
    if (
        (test is not None or file_data.get("test") is not None) and split is None and "split" not in file_data
    ):  # a test file, and no split named anywhere: the split is given
        file_data = {**file_data, "split": "given"}
        file_over = {**file_over, "data": file_data}
    named = file_data.get("data")
    # a wrong type in the file is reported by override() below, naming its key
    data = getattr(args, "data", None) or (named if isinstance(named, str) else None) or RunConfig().data.data
    cfg = RunConfig().override(paper_overrides(data)).override(file_over)
    flags: dict = {}
    for section, names in FLAG_SECTIONS.items():
        for name in names:
            value = getattr(args, name, None)
            if value is None:
                continue
            if name == "t" and value == "auto":  # early stopping keeps the configured T; tune.py picks the final T
                flags["t_auto"] = True
                continue
            key = "batch_size" if name == "eval_batch_size" else name
            flags.setdefault(section, {})[key] = tuple(value) if isinstance(value, list) else value
    for name in ("model", "seed", "threads"):
        if getattr(args, name, None) is not None:
            flags[name] = getattr(args, name)
    return cfg.override(flags)
