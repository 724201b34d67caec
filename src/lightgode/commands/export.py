"""`lightgode export RUN_DIR`: embeddings with their original ids, as .npy files or Parquet."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lightgode.commands.common import add_ode_args


def register(sub) -> None:
    p = sub.add_parser(
        "export",
        help="export user and item embeddings with their original ids",
        description="Writes users and items with their raw ids and embeddings. npy: users.npy, "
        "items.npy (float32, n x d) and user_ids.npy, item_ids.npy (unicode, no pickle). "
        "parquet: users.parquet, items.parquet with columns id (string) and "
        "embedding (fixed-size list of float32).",
    )
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--format", choices=("npy", "parquet"), default="npy", help="file format (default npy)")
    p.add_argument("--out", help="folder to write (default RUN_DIR-export beside the run)")
    p.add_argument(
        "--which",
        choices=("propagated", "e0"),
        default="propagated",
        help="E(T) after the ODE, what scores use (default), or the trained E0",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    add_ode_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from lightgode.commands.common import ode_from_args
    from lightgode.runs.store import check_out_dir, load_model, load_run, run_config, staged

    out = Path(args.out) if args.out else Path(str(Path(args.run_dir).resolve()) + "-export")
    check_out_dir(out, args.overwrite, source=Path(args.run_dir))  # before any work
    run_ = load_run(args.run_dir)
    if args.which == "e0":
        U, I = run_.user_embedding, run_.item_embedding
    else:
        model = load_model(run_, ode_from_args(args, run_config(run_).ode))
        U, I = model.user_embeddings_, model.item_embeddings_
    tables = {
        "users": (run_.split.user_ids, U.detach().numpy().astype(np.float32)),
        "items": (run_.split.item_ids, I.detach().numpy().astype(np.float32)),
    }
    with staged(out, overwrite=args.overwrite, source=Path(args.run_dir), marker=False) as staging:
        for name, (ids, emb) in tables.items():
            if args.format == "npy":
                np.save(staging / f"{name}.npy", emb, allow_pickle=False)
                np.save(staging / f"{name[:-1]}_ids.npy", np.asarray(ids, dtype=str), allow_pickle=False)
            else:
                import pyarrow as pa
                import pyarrow.parquet as pq

                flat = pa.array(emb.reshape(-1), type=pa.float32())
                col = pa.FixedSizeListArray.from_arrays(flat, emb.shape[1])
                pq.write_table(
                    pa.table({"id": pa.array([str(x) for x in ids], type=pa.string()), "embedding": col}),
                    staging / f"{name}.parquet",
                )
    print(
        f"wrote {len(tables['users'][0])} users and {len(tables['items'][0])} items ({args.which}, "
        f"{args.format}) to {out}",
        file=sys.stderr,
    )
    return 0
