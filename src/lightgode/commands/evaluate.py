"""`lightgode evaluate RUN_DIR`: recompute metrics, optionally with another ODE horizon or solver."""

from __future__ import annotations

import argparse
import json

from lightgode.commands.common import add_ode_args, add_progress_args, format_metrics, ode_from_args


def register(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="recompute validation and test metrics of a run",
        description="Recompute full-ranking metrics from a run's weights and split. Another "
        "--t, --solver or --steps needs no retraining.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument(
        "--checkpoint",
        action="store_true",
        help="a run still training (or interrupted): score the last epoch saved in RUN_DIR.ckpt",
    )
    add_ode_args(p)
    p.add_argument("--json", action="store_true", help="print metrics as JSON")
    add_progress_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from lightgode.runs.store import load_model, load_run, run_config
    from lightgode.runs.workflow import checkpoint_model, evaluate_model, resume_config

    epoch = None
    if args.checkpoint:
        cfg = resume_config(Path(args.run_dir))
        model, split, state = checkpoint_model(
            Path(args.run_dir), ode_from_args(args, cfg.ode), env_data_dir=args.env_data_dir
        )
        epoch = state.epoch
    else:
        r = load_run(args.run_dir)
        cfg, split = run_config(r), r.split
        model = load_model(r, ode_from_args(args, cfg.ode))
    metrics = evaluate_model(model, split, show_progress=args.show_progress)
    disc = None
    if hasattr(model, "E0_") and hasattr(model, "item_embeddings_"):  # how far E(T) moved from E(0)
        import torch

        from lightgode.core.discrepancy import discrepancy

        disc = discrepancy(model.E0_, torch.cat([model.user_embeddings_, model.item_embeddings_]), model.n_users_)
    if args.json:
        extra = ({"discrepancy": disc} if disc else {}) | ({"checkpoint_epoch": epoch} if epoch else {})
        print(json.dumps(metrics | extra, indent=2))
        return 0
    head = (
        f"T={model.ode.t} solver={model.ode.solver} steps={model.ode.steps}"
        if hasattr(model, "ode")
        else f"model {cfg.model}"
    )  # baselines have no ODE
    if epoch:
        head += f" (from the checkpoint: epoch {epoch}'s weights, not the best epoch's)"
    print(head + "\n" + format_metrics(metrics))
    if disc:
        print(
            f"discrepancy E(T) vs E(0): mean cosine distance {disc['cosine_distance']:.4f}, "
            f"uniformity change {disc['uniformity_delta']:+.4f} (see docs/ode.md)"
        )
    return 0
