"""`lightgode synth`: write a synthetic power-law interaction file for scale tests."""

from __future__ import annotations

import argparse

from lightgode.commands.common import positive_float


def register(sub) -> None:
    p = sub.add_parser(
        "synth",
        help="write a synthetic power-law interaction file",
        description="Draw distinct (user, item) pairs whose user and item degrees follow power "
        "laws (seeded) and write them as LightGCN lists or CSV, for scale tests.",
    )
    p.add_argument("--users", type=int, required=True, help="number of user ids")
    p.add_argument("--items", type=int, required=True, help="number of item ids")
    p.add_argument("--edges", type=int, required=True, help="distinct interactions to draw")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--user-exponent", type=positive_float, default=0.8, help="Zipf exponent of user activity")
    p.add_argument("--item-exponent", type=positive_float, default=1.0, help="Zipf exponent of item popularity")
    p.add_argument(
        "--format", choices=("lightgcn", "csv"), help="output format (default: csv for *.csv, else lightgcn)"
    )
    p.add_argument("--out", required=True, help="file to write")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lightgode.atomic import check_target, staged_file
    from lightgode.data.synth import SynthConfig, synth_edges, write_edges
    from lightgode.errors import ConfigError

    if args.seed < 0:
        raise ConfigError(f"--seed must be >= 0, got {args.seed}")
    cfg = SynthConfig(
        users=args.users,
        items=args.items,
        edges=args.edges,
        seed=args.seed,
        user_exponent=args.user_exponent,
        item_exponent=args.item_exponent,
    )
    fmt = args.format or ("csv" if args.out.lower().endswith(".csv") else "lightgcn")
    check_target(args.out, overwrite=args.overwrite, kind="file")  # before any work
    users, items = synth_edges(cfg)
    with staged_file(args.out, overwrite=args.overwrite) as tmp:
        write_edges(users, items, tmp, fmt)
    print(
        f"wrote {len(users)} interactions of {len(set(users.tolist()))} users and "
        f"{len(set(items.tolist()))} items to {args.out} ({fmt})"
    )
    return 0
