"""Argument groups and helpers shared by subcommands."""

from __future__ import annotations

import argparse
import math
from typing import TYPE_CHECKING

from lightgode.errors import ConfigError
from lightgode.names import SOLVERS

if TYPE_CHECKING:
    from lightgode.core.ode import ODEConfig


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
