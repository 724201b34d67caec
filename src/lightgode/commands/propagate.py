"""`lightgode propagate`: run the post-training graph ODE on embeddings from any model (lightgode.runs.propagate)."""

from __future__ import annotations

import argparse
import json

from lightgode.commands.common import add_progress_args, format_metrics, positive_float, t_or_auto

DESCRIPTION = """The graph is the training part of a saved split (``--split-dir RUN_DIR/split``; then validation and
test metrics are reported before and after) or every interaction of ``--data``. Embeddings come as
``.npy`` (rows in the order of ``--user-ids`` / ``--item-ids``: text, one id per line, or a .npy of ids;
with ``--split-dir`` and no id file, rows follow the split's ``users.txt`` / ``items.txt``) or as ``.parquet`` with an ``id``
column and a ``vector`` list column. Every user and item of the graph needs an embedding; embedded ids
the graph lacks are isolated nodes, for which the ODE gives E(T) = (1 + T) E0 exactly.

Output folder (complete or absent): ``users.parquet`` / ``items.parquet`` (id, vector),
``user_embedding.npy`` / ``item_embedding.npy`` with ``user_ids.txt`` / ``item_ids.txt`` (input row
order), ``propagate.json`` (settings, discrepancy, metrics before/after), and with ``--t auto``
``tune.json`` and ``t_curve.png``.
"""


def register(sub) -> None:
    from lightgode.names import SOLVERS

    p = sub.add_parser(
        "propagate",
        help="propagate any user/item embeddings with the graph ODE",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    g = p.add_argument_group("graph (one of)")
    g.add_argument(
        "--split-dir",
        help="a saved split (e.g. RUN_DIR/split): graph of its train part, and "
        "metrics before/after on its validation and test parts",
    )
    g.add_argument("--data", help="dataset name or interaction file: graph of all its interactions")
    g.add_argument("--format", default="auto", help="file format of --data (default: from the name)")
    g.add_argument("--data-dir", help="folder with the named datasets")
    e = p.add_argument_group("embeddings")
    e.add_argument("--user-emb", required=True, help="user embeddings, .npy (n, d) or .parquet (id, vector)")
    e.add_argument("--item-emb", required=True, help="item embeddings, .npy (n, d) or .parquet (id, vector)")
    e.add_argument("--user-ids", help="user id of each .npy row: text, one per line, or a .npy of ids")
    e.add_argument("--item-ids", help="item id of each .npy row: text, one per line, or a .npy of ids")
    o = p.add_argument_group("post-training ODE")
    o.add_argument(
        "--t",
        type=t_or_auto,
        default=1.0,
        help="horizon T, or 'auto' to choose it on validation (needs --split-dir; default 1)",
    )
    o.add_argument("--solver", choices=SOLVERS, default="euler", help="ODE solver (default euler)")
    o.add_argument("--steps", type=int, default=1, help="steps of a fixed-step solver (default 1)")
    o.add_argument("--t-max", type=positive_float, default=4.0, help="largest T searched by --t auto")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    p.add_argument("--json", action="store_true", help="print propagate.json")
    add_progress_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lightgode.core.ode import ODEConfig
    from lightgode.runs.propagate import PropagateInput, propagate_files

    source = PropagateInput(
        user_emb=args.user_emb,
        item_emb=args.item_emb,
        user_ids=args.user_ids,
        item_ids=args.item_ids,
        split_dir=args.split_dir,
        data=args.data,
        data_dir=args.data_dir,
        env_data_dir=args.env_data_dir,
        format=args.format,
    )
    t_auto = args.t == "auto"
    ode = ODEConfig(t=0.0 if t_auto else args.t, solver=args.solver, steps=args.steps)
    report = propagate_files(
        source,
        args.out,
        ode,
        t_auto=t_auto,
        t_max=args.t_max,
        overwrite=args.overwrite,
        show_progress=args.show_progress,
    )
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    o = report["ode"]
    print(
        f"propagated {report['written']['users']} users and {report['written']['items']} items with "
        f"T={o['t']:.4g} ({o['solver']}, {o['steps']} steps) over a graph of {report['graph']['edges']} edges; "
        f"mean cosine distance to E0 {report['discrepancy']['cosine_distance']:.4f}"
    )
    if "metrics" in report:
        for when in ("before", "after"):
            print(f"{when}:\n" + format_metrics(report["metrics"][when]))
    print(f"written to {args.out}")
    return 0
