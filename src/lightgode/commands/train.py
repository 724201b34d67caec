"""`lightgode train`: train a model on a dataset and write a run directory."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from lightgode.commands.common import (
    add_data_args,
    add_ode_args,
    add_progress_args,
    config_from_args,
    format_metrics,
    positive_float,
)
from lightgode.errors import ConfigError
from lightgode.names import MODEL_NAMES as MODELS
from lightgode.names import OPTIMIZERS, PAPER_SETTINGS, SAMPLINGS


def register(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a model and write a run directory",
        description="Train LightGODE (or another model) with early stopping on validation "
        "NDCG@20, then evaluate on test. With no --data, trains on the bundled "
        "Amazon-Beauty. Named datasets get the paper's T, gamma and weight decay "
        f"({', '.join(PAPER_SETTINGS)}); a config file and flags override them.",
    )
    add_data_args(p)
    t = p.add_argument_group("training")
    t.add_argument("--model", choices=tuple(MODELS), default=None, help="model (default lightgode)")
    t.add_argument("--dim", type=int, help="embedding dimension (default 64)")
    t.add_argument("--lr", type=positive_float, help="Adam learning rate (default 1e-3)")
    t.add_argument("--weight-decay", type=positive_float, help="Adam weight decay")
    t.add_argument(
        "--sampling",
        choices=SAMPLINGS,
        help="pairs (default: every training pair once per epoch, in random order) or users (LightGCN's "
        "reference sampler: uniform users, then one of each user's items)",
    )
    t.add_argument(
        "--optimizer",
        choices=OPTIMIZERS,
        help="adam (default, as the paper: every row moves each step; lightgode and directau without "
        "weight decay compute only the batch's rows and catch the others up exactly), dense-adam "
        "(torch's Adam on dense gradients, every row every step) or sparse-adam (only the batch's "
        "rows are updated, lazy moments; lightgode and directau only, no weight decay): faster "
        "steps on large tables, a different optimiser",
    )
    t.add_argument("--gamma", type=positive_float, help="uniformity weight of the DirectAU loss")
    t.add_argument("--batch-size", type=int, help="pairs per step (default 256)")
    t.add_argument("--epochs", type=int, help="maximum epochs (default 300)")
    t.add_argument("--patience", type=int, help="early-stopping patience in epochs (default 10)")
    t.add_argument(
        "--valid-every",
        type=int,
        metavar="N",
        help="validate every N epochs and after the last (default 1); patience still counts epochs",
    )
    t.add_argument(
        "--device",
        help="where training and validation run: cpu (default), cuda, cuda:N, or auto "
        "(cuda when torch sees a GPU); the run directory is the same either way",
    )
    t.add_argument(
        "--layers",
        type=int,
        nargs="+",
        help="lightgcn: propagation layers (default 3); mf-conv: "
        "post-training layers, several are chosen from on validation",
    )
    t.add_argument("--reg", type=positive_float, help="mf-bpr/lightgcn: L2 weight on the batch embeddings (1e-4)")
    t.add_argument(
        "--init-std",
        type=positive_float,
        help="mf-bpr/lightgcn: draw embeddings from N(0, std) (LightGCN's code: 0.1; default Xavier)",
    )
    t.add_argument("--conv-base", choices=("mf-bpr", "directau"), help="mf-conv: the MF trained first")
    t.add_argument("--alpha", type=positive_float, nargs="+", help="gf-cf: ideal low-pass weight(s) (0.3)")
    t.add_argument("--rank", type=int, help="gf-cf/bspm: truncated SVD rank (default 256)")
    add_ode_args(p, allow_auto=True)
    e = p.add_argument_group("evaluation")
    e.add_argument("--ks", type=int, nargs="+", help="cut-offs K (default 10 20 50)")
    e.add_argument("--eval-batch-size", type=int, help="users scored at once (default 1024)")
    r = p.add_argument_group("run")
    r.add_argument("--config", help='JSON or TOML file of settings ({"train": {"lr": 0.001}, ...})')
    r.add_argument("--seed", type=int, help="random seed (default 2020)")
    r.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    r.add_argument("--out", help="run directory to write (default: print metrics only)")
    r.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    r.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue the interrupted run that was writing RUN_DIR "
        "from its last checkpoint, with its own settings (other setting flags but --device are ignored)",
    )
    r.add_argument(
        "--search",
        type=positive_float,
        metavar="SECONDS",
        help="search the training settings on validation for SECONDS of wall time first (lightgode "
        "search, default space; the study in <out>.search) and write the best trial to --out",
    )
    r.add_argument(
        "--checkpoint-every",
        type=int,
        default=1,
        metavar="N",
        help="save a checkpoint in <out>.ckpt every N epochs (default 1; 0 disables)",
    )
    r.add_argument(
        "--uniformity",
        choices=("rank", "global"),
        default="rank",
        help="under torchrun: uniformity over each rank's shard of a batch (default) or the whole batch",
    )
    add_progress_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lightgode.parallel.distributed import launched_world_size
    from lightgode.runs.workflow import resume_config, train_run

    if args.checkpoint_every < 0:
        raise ConfigError(f"--checkpoint-every must be >= 0, got {args.checkpoint_every}")
    if args.resume and args.search is not None:
        raise ConfigError("--search starts a new search; continue an interrupted one with lightgode search --resume")
    if args.resume:
        if args.out and Path(args.out) != Path(args.resume):
            raise ConfigError("--resume names the run directory; drop --out or give the same path")
        out: Path | None = Path(args.resume)
        cfg = resume_config(out)
        if args.device is not None:  # the one setting a resumed run may change: where it goes on training
            cfg = cfg.override({"train": {"device": args.device}})
    else:
        cfg = config_from_args(args)
        if args.search is not None:
            from lightgode.commands.search import train_with_search

            return train_with_search(args, cfg)
        out = Path(args.out) if args.out else None
    if launched_world_size(os.environ) > 1:  # started by torchrun: one rank of a multi-process run
        from lightgode.commands.launch import run_distributed_train

        return run_distributed_train(args, cfg, out)
    summary = train_run(
        cfg,
        out,
        env_data_dir=args.env_data_dir,
        overwrite=args.overwrite,
        show_progress=args.show_progress,
        resume=bool(args.resume),
        checkpoint_every=args.checkpoint_every,
    )
    info = summary.info
    print(
        f"{cfg.model} on {cfg.data.data}: best epoch {info['best_epoch']} of {info['epochs_run']}, "
        f"{info['seconds_per_epoch']:.2f} s/epoch, {info['seconds']['total']:.1f} s in all, "
        f"peak memory {info['peak_rss_mb']:.0f} MiB"
    )
    print(format_metrics(summary.metrics))
    if "tune" in info:
        print(
            f"T chosen on validation: {info['tune']['t']:.4g} ({info['tune']['evaluations']} evaluations, "
            f"{info['tune']['seconds']:.1f} s)"
        )
    if out is not None:
        print(f"run written to {out}")
    if args.verbose:
        print(json.dumps(cfg.to_dict(), indent=2))
    return 0
