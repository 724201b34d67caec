"""`lightgode recommend RUN_DIR`: top-K items for one user or for every user of a split."""

from __future__ import annotations

import argparse
import csv
import sys

from lightgode.commands.common import add_ode_args, add_progress_args, check_k, ode_from_args
from lightgode.errors import ConfigError


def register(sub) -> None:
    p = sub.add_parser(
        "recommend",
        help="top-K recommendations for known users",
        description="Recommend items the user has not interacted with in training or validation.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", help="raw user id")
    who.add_argument("--all-users", action="store_true", help="every user (of --split, if given)")
    p.add_argument(
        "--split",
        choices=("train", "valid", "test"),
        help="with --all-users: only users that have interactions in this split",
    )
    p.add_argument("-k", type=int, default=20, help="list length (default 20)")
    p.add_argument("--output", help="CSV file to write (user,item,rank,score); default stdout")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
    add_ode_args(p)
    add_progress_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from lightgode.atomic import check_target, staged_file
    from lightgode.runs.store import load_run, run_config
    from lightgode.serving.recommender import Recommender

    check_k(args.k)
    if args.split and not args.all_users:
        raise ConfigError("--split goes with --all-users")
    if args.output:
        check_target(args.output, overwrite=args.overwrite, kind="file")  # before any work
    ode = None
    if any(getattr(args, a) is not None for a in ("t", "solver", "steps")):
        ode = ode_from_args(args, run_config(load_run(args.run_dir)).ode)
    rec = Recommender.load(args.run_dir, ode)
    if args.user is not None:
        users = [args.user]
        rec.vocab.user_index(users)
    else:
        run = load_run(args.run_dir)
        if args.split:
            part = getattr(run.split, args.split)
            users = [str(u) for u in rec.vocab.user_ids[np.unique(part.users)]]
        else:
            users = [str(u) for u in rec.vocab.user_ids]

    def write(fh) -> None:
        w = csv.writer(fh)
        w.writerow(["user", "item", "rank", "score"])
        for user, recs in rec.recommend_many(users, args.k):
            for r in recs:
                w.writerow([user, r.item, r.rank, f"{r.score:.6g}"])

    if args.output:
        with staged_file(args.output, overwrite=args.overwrite) as tmp, open(tmp, "w", newline="") as fh:
            write(fh)
        print(f"wrote {len(users)} users x {args.k} to {args.output}", file=sys.stderr)
    else:
        write(sys.stdout)
    return 0
