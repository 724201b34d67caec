"""`lightgode launch --nproc N COMMAND ...`: run a lightgode command in N processes through torchrun.

Also the glue that ``lightgode train`` uses when torchrun started it (WORLD_SIZE > 1).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from lightgode.errors import ConfigError


def register(sub) -> None:
    p = sub.add_parser(
        "launch",
        help="run a command (train) in N processes with torchrun",
        description="Start N local processes with torch.distributed.run (torchrun --standalone) "
        "running 'lightgode COMMAND ...'; the same as "
        "'torchrun --standalone --nproc_per_node=N -m lightgode COMMAND ...'. "
        "Each process trains a shard of every batch and holds a block of the graph; "
        "rank 0 writes the run directory.",
    )
    p.add_argument("--nproc", type=int, required=True, help="number of processes (ranks) on this machine")
    p.add_argument("rest", nargs=argparse.REMAINDER, metavar="COMMAND ...", help="the command to run, e.g. train")
    p.set_defaults(func=run)


def launch_command(nproc: int, rest: list[str]) -> list[str]:
    """The torchrun command line that runs ``lightgode <rest>`` in ``nproc`` processes."""
    if nproc < 1:
        raise ConfigError(f"--nproc must be >= 1, got {nproc}")
    if not rest or rest[0] != "train":
        raise ConfigError("launch runs 'train' in several processes: lightgode launch --nproc N train ...")
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        "-m",
        "lightgode",
        *rest,
    ]


def run(args: argparse.Namespace) -> int:
    rest = args.rest[1:] if args.rest and args.rest[0] == "--" else args.rest
    cmd = launch_command(args.nproc, rest)
    return subprocess.run(cmd, env=dict(os.environ) | {"PYTHONUNBUFFERED": "1"}).returncode


def run_distributed_train(args: argparse.Namespace, cfg, out: Path | None) -> int:
    """`lightgode train` as one rank of a torchrun job: train, evaluate, and let rank 0 write and print."""
    from lightgode.commands.common import format_metrics
    from lightgode.parallel.distributed import init_from_env, shutdown
    from lightgode.runs.distributed import train_run_distributed

    ctx = init_from_env(os.environ, "auto")
    try:
        summary = train_run_distributed(
            cfg,
            out,
            ctx,
            uniformity=getattr(args, "uniformity", "rank"),
            env_data_dir=args.env_data_dir,
            overwrite=args.overwrite,
            show_progress=args.show_progress,
            resume=bool(args.resume),
            checkpoint_every=args.checkpoint_every,
        )
    finally:
        shutdown(ctx)
    if ctx.is_main:
        info = summary.info
        print(
            f"{cfg.model} on {cfg.data.data} with {ctx.world_size} processes ({ctx.backend}): best epoch "
            f"{info['best_epoch']} of {info['epochs_run']}, {info['seconds_per_epoch']:.2f} s/epoch, "
            f"{info['seconds']['total']:.1f} s in all, peak memory per process "
            f"{max(info['distributed']['peak_rss_mb_per_rank']):.0f} MiB"
        )
        print(format_metrics(summary.metrics))
        if out is not None:
            print(f"run written to {out}")
    if ctx.active:
        _exit_without_finalizing(0)
    return 0


def _exit_without_finalizing(code: int) -> None:
    """End a finished rank without the interpreter's finalization.

    After a complete job (process group destroyed, run written) a gloo rank has been seen to abort during
    finalization, with no Python frame left ("terminate called without an active exception", SIGABRT, about one
    job in 15 to 40 here), which made torchrun report a failed job; leaving with os._exit after flushing skips that
    teardown. Only for ranks of a torchrun job.
    """
    import logging

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
