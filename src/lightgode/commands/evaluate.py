"""`lightgode evaluate RUN_DIR`: recompute metrics, optionally with another ODE horizon or solver."""

from __future__ import annotations

import argparse
import json

from .common import add_ode_args, add_progress_args, format_metrics, ode_from_args


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="recompute validation and test metrics of a run",
                       description="Recompute full-ranking metrics from a run's weights and split. Another "
                                   "--t, --solver or --steps needs no retraining.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    add_ode_args(p)
    p.add_argument("--json", action="store_true", help="print metrics as JSON")
    add_progress_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..artifacts import load_run
    from ..pipeline import evaluate_model, load_model, run_config

    r = load_run(args.run_dir)
    ode = ode_from_args(args, run_config(r).ode)
    model = load_model(r, ode)
    metrics = evaluate_model(model, r.split, show_progress=args.show_progress)
    disc = None
    if hasattr(model, "E0_") and hasattr(model, "item_embeddings_"):  # how far E(T) moved from E(0)
        import torch

        from ..discrepancy import discrepancy
        disc = discrepancy(model.E0_, torch.cat([model.user_embeddings_, model.item_embeddings_]), model.n_users_)
    if args.json:
        print(json.dumps(metrics | ({"discrepancy": disc} if disc else {}), indent=2))
        return 0
    head = (f"T={model.ode.t} solver={model.ode.solver} steps={model.ode.steps}" if hasattr(model, "ode")
            else f"model {run_config(r).model}")  # baselines have no ODE
    print(head + "\n" + format_metrics(metrics))
    if disc:
        print(f"discrepancy E(T) vs E(0): mean cosine distance {disc['cosine_distance']:.4f}, "
              f"uniformity change {disc['uniformity_delta']:+.4f} (see docs/solvers.md)")
    return 0
