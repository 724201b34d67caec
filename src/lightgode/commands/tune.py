"""`lightgode tune RUN_DIR`: choose the ODE horizon T on validation and write it into the run."""

from __future__ import annotations

import argparse
import json
import sys

from lightgode.commands.common import add_progress_args, format_metrics, positive_float


def register(sub) -> None:
    p = sub.add_parser(
        "tune",
        help="choose the ODE horizon T on validation (no retraining)",
        description="Search T for the run's trained embeddings E0 on validation NDCG@20 "
        "(coarse grid, then refinement around the best point), with any solver. "
        "Writes the chosen T into config.json, recomputed metrics into "
        "metrics.json, the curve into tune.json and RUN_DIR/t_curve.png. Test "
        "metrics are computed once, after the choice, and never influence it.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR")
    g = p.add_argument_group("search")
    from lightgode.names import SOLVERS

    g.add_argument("--solver", choices=SOLVERS, help="ODE solver (default: the run's)")
    g.add_argument("--steps", type=int, help="steps of a fixed-step solver (default: the run's)")
    g.add_argument("--t-min", type=positive_float, default=0.0, help="smallest T searched (default 0)")
    g.add_argument("--t-max", type=positive_float, default=4.0, help="largest T searched (default 4)")
    g.add_argument("--grid", type=int, default=7, help="points of the coarse grid (default 7)")
    g.add_argument("--refine", type=int, default=3, help="evaluations refining around the best (default 3)")
    g.add_argument(
        "--extend",
        type=int,
        default=3,
        help="grid steps tried beyond --t-max while the best T is the largest so far (default 3; 0: none)",
    )
    g.add_argument("--metric", help="validation metric maximised (default: the run's, ndcg@20)")
    g.add_argument(
        "--max-users",
        type=int,
        help="score a fixed seeded sample of at most this many validation users (default: as many as "
        "keep users x items <= 6e8 per pass; 0: all)",
    )
    p.add_argument("--dry-run", action="store_true", help="print the choice, write nothing")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    add_progress_args(p)
    p.set_defaults(func=run)


def user_cap(max_users: int | None) -> dict:
    """TuneConfig settings for --max-users: default cap, 0 for all users, or N users."""
    if max_users is None:
        return {}
    return {"max_users": max_users or None, "max_scores": None}


def run(args: argparse.Namespace) -> int:
    from lightgode.core.tune import TuneConfig
    from lightgode.runs.tuned import tune_run

    tcfg = TuneConfig(
        t_min=args.t_min,
        t_max=args.t_max,
        grid=args.grid,
        refine=args.refine,
        extend=args.extend,
        **user_cap(args.max_users),
    )

    def report(point: dict, metric: str) -> None:
        if args.show_progress:
            print(
                f"  T={point['t']:.4f} {metric}={point['metrics'][metric]:.5f} ({point['seconds']:.2f} s)",
                file=sys.stderr,
            )

    result, metrics, cfg = tune_run(
        args.run_dir,
        tcfg,
        metric=args.metric,
        solver=args.solver,
        steps=args.steps,
        write=not args.dry_run,
        on_point=report,
    )
    if args.json:
        print(json.dumps({"tune": result.to_dict(), "metrics": metrics, "written": not args.dry_run}, indent=2))
        return 0
    metric = result.metric
    print(f"{'T':>8} {metric:>10} {'recall@20':>10} {'cos dist':>9} {'unif chg':>9}")
    for p in result.points:
        mark = "  <- chosen" if p["t"] == result.t else ""
        print(
            f"{p['t']:8.4f} {p['metrics'][metric]:10.5f} {p['metrics']['recall@20']:10.5f} "
            f"{p['discrepancy']['cosine_distance']:9.4f} {p['discrepancy']['uniformity_delta']:9.4f}{mark}"
        )
    print(
        f"chosen T={result.t:.4g} (solver {result.ode.solver}, steps {result.ode.steps}) from "
        f"{len(result.points)} evaluations on {result.valid_users} validation users in {result.seconds:.1f} s"
        f" (was T={cfg.ode.t:g})"
    )
    if result.at_boundary:
        print("note: the best T is the largest searched; try a larger --t-max or --extend", file=sys.stderr)
    print(format_metrics(metrics))
    print(
        f"written to {args.run_dir} (config.json, metrics.json, tune.json, t_curve.png)"
        if not args.dry_run
        else "dry run: nothing written"
    )
    return 0
