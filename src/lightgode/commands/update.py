"""`lightgode update RUN_DIR --interactions FILE`: add interactions without retraining."""

from __future__ import annotations

import argparse
import json
import sys


def register(sub) -> None:
    p = sub.add_parser(
        "update",
        help="add interactions (new users, items, edges) without retraining",
        description="Adds the FILE's (user, item) pairs to the training graph, recomputes degrees "
        "and the normalised adjacency and re-propagates the ODE; new users and items "
        "start from the mean E0 of their known neighbours (see docs/serving.md). "
        "Writes a complete run directory atomically: --out, or the run itself. "
        "Concurrent updates of one target queue; each reads the run once the one "
        "before it has finished, so none is lost.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument(
        "--interactions",
        required=True,
        help="file of (user, item) pairs: CSV/TSV/Parquet with --user-col/--item-col, LightGCN lists, RecBole .inter",
    )
    p.add_argument("--format", default="auto", help="file format (default: from the file name)")
    p.add_argument("--user-col", default="user", help="user column of CSV/TSV/Parquet files (default user)")
    p.add_argument("--item-col", default="item", help="item column of CSV/TSV/Parquet files (default item)")
    p.add_argument(
        "--max-id-length", type=int, metavar="N", help="refuse a user or item id longer than N characters (default 256)"
    )
    p.add_argument(
        "--skip-bad-rows",
        action="store_true",
        help="skip (and count) rows with a wrong number of fields or a missing or too long id",
    )
    p.add_argument("--out", help="new run directory (default: replace RUN_DIR atomically)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out directory")
    p.add_argument(
        "--init",
        choices=("zero", "mean", "norm_mean"),
        default=None,
        help="initial value of new users and items (default: the library's)",
    )
    p.add_argument("--json", action="store_true", help="print the update statistics as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import time
    from dataclasses import asdict
    from pathlib import Path

    from lightgode.data.readers import read_interactions
    from lightgode.runs.store import check_out_dir, holding
    from lightgode.serving.foldin import FoldInConfig
    from lightgode.serving.recommender import Recommender

    target = Path(args.out or args.run_dir)
    check_out_dir(target, args.overwrite, source=Path(args.run_dir), same_ok=True)  # before any work
    opts = {}
    if args.user_col != "user":
        opts["user_col"] = args.user_col
    if args.item_col != "item":
        opts["item_col"] = args.item_col
    if args.max_id_length is not None:
        opts["max_id_length"] = args.max_id_length
    if args.skip_bad_rows:
        opts["skip_bad_rows"] = True
    new = read_interactions(args.interactions, args.format, **opts)
    foldin = FoldInConfig(**({"init": args.init} if args.init else {}))
    with holding(target):  # the run is read under the target's lock: an update queued behind another sees it
        rec = Recommender.load(args.run_dir, foldin=foldin)
        t0 = time.perf_counter()
        stats = rec.add_interactions(zip(new.user_ids[new.users].tolist(), new.item_ids[new.items].tolist()))
        seconds = time.perf_counter() - t0
        out = rec.save_run(target, overwrite=args.overwrite)
    info = asdict(stats) | {"seconds": seconds, "out": str(out)}
    print(
        json.dumps(info)
        if args.json
        else f"added {stats.new_edges} edges ({stats.new_users} new users, {stats.new_items} new items); "
        f"{stats.mode} re-propagation of {stats.recomputed_rows} rows in {seconds:.3f} s; wrote {out}",
        file=sys.stdout if args.json else sys.stderr,
    )
    return 0
