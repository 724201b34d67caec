"""`lightgode propagate`: run the post-training graph ODE on embeddings from any model.

The graph is the training part of a saved split (``--split-dir RUN_DIR/split``; then validation and test
metrics are reported before and after) or every interaction of ``--data``. Embeddings come as
``.npy`` (rows in the order of ``--user-ids`` / ``--item-ids``, one id per line; with ``--split-dir`` and
no id file, rows follow the split's ``users.txt`` / ``items.txt``) or as ``.parquet`` with an ``id``
column and a ``vector`` list column. Every user and item of the graph needs an embedding; embedded ids
the graph lacks are isolated nodes, for which the ODE gives E(T) = (1 + T) E0 exactly.

Output folder (complete or absent): ``users.parquet`` / ``items.parquet`` (id, vector),
``user_embedding.npy`` / ``item_embedding.npy`` with ``user_ids.txt`` / ``item_ids.txt`` (input row
order), ``propagate.json`` (settings, discrepancy, metrics before/after), and with ``--t auto``
``tune.json`` and ``t_curve.png``.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from lightgode.errors import ConfigError, DataError
from lightgode.commands.common import add_progress_args, format_metrics, positive_float, t_or_auto


def register(sub) -> None:
    from lightgode.names import SOLVERS

    p = sub.add_parser("propagate", help="propagate any user/item embeddings with the graph ODE",
                       description=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_argument_group("graph (one of)")
    g.add_argument("--split-dir", help="a saved split (e.g. RUN_DIR/split): graph of its train part, and "
                                       "metrics before/after on its validation and test parts")
    g.add_argument("--data", help="dataset name or interaction file: graph of all its interactions")
    g.add_argument("--format", default="auto", help="file format of --data (default: from the name)")
    g.add_argument("--data-dir", help="folder with the named datasets")
    e = p.add_argument_group("embeddings")
    e.add_argument("--user-emb", required=True, help="user embeddings, .npy (n, d) or .parquet (id, vector)")
    e.add_argument("--item-emb", required=True, help="item embeddings, .npy (n, d) or .parquet (id, vector)")
    e.add_argument("--user-ids", help="user id of each .npy row, one per line")
    e.add_argument("--item-ids", help="item id of each .npy row, one per line")
    o = p.add_argument_group("post-training ODE")
    o.add_argument("--t", type=t_or_auto, default=1.0,
                   help="horizon T, or 'auto' to choose it on validation (needs --split-dir; default 1)")
    o.add_argument("--solver", choices=SOLVERS, default="euler", help="ODE solver (default euler)")
    o.add_argument("--steps", type=int, default=1, help="steps of a fixed-step solver (default 1)")
    o.add_argument("--t-max", type=positive_float, default=4.0, help="largest T searched by --t auto")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    p.add_argument("--json", action="store_true", help="print propagate.json")
    add_progress_args(p)
    p.set_defaults(func=run)


def read_ids(path: str) -> np.ndarray:
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read id file {path}: {exc}") from None
    return np.array(text.splitlines(), dtype=str)


def read_vectors(path: str, ids_path: str | None) -> tuple[np.ndarray | None, np.ndarray]:
    """(ids or None, float32 matrix (n, d)) from a .npy (+ id file) or a .parquet with id and vector
    (``embedding`` is accepted for the vector column too: the name ``lightgode export`` writes)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"embedding file not found: {p}")
    if p.suffix.lower() == ".parquet":
        import pandas as pd

        try:
            df = pd.read_parquet(p)
        except Exception as exc:  # pyarrow raises several kinds for a damaged file
            raise DataError(f"cannot read {p}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
        col = next((c for c in ("vector", "embedding") if c in df.columns), None)
        if "id" not in df.columns or col is None:
            raise DataError(f"{p} needs an 'id' column and a 'vector' (or 'embedding') list column, has "
                            f"{', '.join(map(str, df.columns))}")
        try:
            X = np.stack([np.asarray(v, dtype=np.float32) for v in df[col]]) if len(df) else np.zeros((0, 0))
        except (ValueError, TypeError):
            raise DataError(f"{p}: every '{col}' must be a list of numbers of one length") from None
        ids = df["id"].astype(str).to_numpy(dtype=str)
        if ids_path:
            raise ConfigError(f"{p} holds its ids; do not also give an id file")
    else:
        try:
            X = np.load(p, allow_pickle=False)
        except Exception as exc:  # numpy raises ValueError/OSError/EOFError for damaged or pickled files
            raise DataError(f"cannot read {p} as a .npy array: {str(exc).splitlines()[0]}") from None
        ids = read_ids(ids_path) if ids_path else None
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0 or not np.issubdtype(X.dtype, np.number):
        raise DataError(f"{p} must hold a non-empty 2-D numeric array, got shape {X.shape} of {X.dtype}")
    X = X.astype(np.float32)
    if not np.isfinite(X).all():
        raise DataError(f"{p} holds NaN or infinite values")
    if ids is not None:
        if len(ids) != X.shape[0]:
            raise DataError(f"{p} has {X.shape[0]} rows but its ids number {len(ids)}")
        if any("\n" in x or "\r" in x for x in ids.tolist()):
            raise DataError(f"an id of {p} holds a line break")
        uniq, counts = np.unique(ids, return_counts=True)
        if (counts > 1).any():
            raise DataError(f"id {str(uniq[counts > 1][0])!r} appears twice in the ids of {p}")
    return ids, X


def align(vocab: np.ndarray, ids: np.ndarray | None, n_rows: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """(row of each graph node, rows of embedded ids the graph lacks) for one side."""
    if ids is None:
        if n_rows != len(vocab):
            raise DataError(f"{n_rows} {what} embeddings for {len(vocab)} {what}s of the graph; give --{what}-ids")
        return np.arange(n_rows), np.zeros(0, dtype=np.int64)
    order = np.argsort(ids, kind="stable")
    pos = np.minimum(np.searchsorted(ids[order], vocab), len(ids) - 1)
    found = ids[order][pos] == vocab
    if not found.all():
        missing = vocab[~found]
        raise DataError(f"{len(missing)} {what}s of the graph have no embedding (e.g. {str(missing[0])!r}); "
                        f"every {what} of the data needs one")
    rows = order[pos]
    extra = np.setdiff1d(np.arange(len(ids)), rows)
    return rows, extra


def run(args: argparse.Namespace) -> int:
    import torch

    from lightgode.runs.store import check_out_dir, staged
    from lightgode.atomic import write_json
    from lightgode.core.discrepancy import discrepancy
    from lightgode.core.graph import normalized_adjacency
    from lightgode.models.lightgode import LightGODE
    from lightgode.core.ode import ODEConfig, propagate
    from lightgode.runs.workflow import evaluate_model

    if (args.split_dir is None) == (args.data is None):
        raise ConfigError("give exactly one of --split-dir and --data")
    if args.t == "auto" and args.split_dir is None:
        raise ConfigError("--t auto chooses T on validation and needs --split-dir")
    out = Path(args.out)
    source = Path(args.split_dir) if args.split_dir is not None else None
    check_out_dir(out, args.overwrite, source=source)  # before any work; never over the split it reads
    split = None
    if args.split_dir is not None:
        from lightgode.data.split import load_split
        split = load_split(args.split_dir)
        graph = split.train
    else:
        from lightgode.data.datasets import load_dataset
        graph = load_dataset(args.data, data_dir=args.data_dir, env_data_dir=args.env_data_dir, fmt=args.format)
    ode = ODEConfig(t=0.0 if args.t == "auto" else args.t, solver=args.solver, steps=args.steps)
    if split is None and (args.user_ids is None or args.item_ids is None):
        for side in ("user", "item"):
            if Path(getattr(args, f"{side}_emb")).suffix.lower() != ".parquet" and getattr(args, f"{side}_ids") is None:
                raise ConfigError(f"--{side}-ids is needed with --data and a .npy file (row order is otherwise unknown)")
    u_ids, U = read_vectors(args.user_emb, args.user_ids)
    i_ids, I = read_vectors(args.item_emb, args.item_ids)
    if U.shape[1] != I.shape[1]:
        raise DataError(f"user embeddings have {U.shape[1]} dimensions but item embeddings {I.shape[1]}")
    u_rows, u_extra = align(graph.user_ids, u_ids, U.shape[0], "user")
    i_rows, i_extra = align(graph.item_ids, i_ids, I.shape[0], "item")
    n_users = graph.n_users
    A_hat = normalized_adjacency(n_users, graph.n_items, graph.users, graph.items)
    E0 = torch.from_numpy(np.concatenate([U[u_rows], I[i_rows]]))

    report: dict = {"graph": {"users": n_users, "items": graph.n_items, "edges": int(A_hat.nnz // 2),
                              "source": args.split_dir or args.data},
                    "isolated": {"users": int(len(u_extra)), "items": int(len(i_extra))}}
    tune_result = None
    if args.t == "auto":
        from lightgode.core.tune import TuneConfig, tune_split
        tune_result = tune_split(E0, split, ode=ode, config=TuneConfig(t_max=args.t_max))
        ode = tune_result.ode
        report["tune"] = {k: v for k, v in tune_result.to_dict().items() if k != "points"}
    E = propagate(A_hat, E0, ode)
    report["ode"] = asdict(ode)
    report["discrepancy"] = discrepancy(E0, E, n_users)
    if split is not None:
        before = LightGODE.from_embeddings(E0, n_users, A_hat, replace(ode, t=0.0))
        after = LightGODE.from_embeddings(E0, n_users, A_hat, ode)
        report["metrics"] = {"before": evaluate_model(before, split, show_progress=args.show_progress),
                             "after": evaluate_model(after, split, show_progress=args.show_progress)}

    U_out, I_out = (1.0 + ode.t) * U, (1.0 + ode.t) * I  # isolated nodes: dE/dt = E0 gives (1 + T) E0
    U_out[u_rows], I_out[i_rows] = E[:n_users].numpy(), E[n_users:].numpy()
    u_names = u_ids if u_ids is not None else graph.user_ids
    i_names = i_ids if i_ids is not None else graph.item_ids

    with staged(out, overwrite=args.overwrite, source=source) as staging:
        for side, names, X in (("user", u_names, U_out), ("item", i_names, I_out)):
            _write_side(staging, side, names, X)
        write_json(staging / "propagate.json", report)
        if tune_result is not None:
            from lightgode.core.tune import write_tune_files
            write_tune_files(staging, tune_result, title="propagate --t auto")
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"propagated {len(u_names)} users and {len(i_names)} items with T={ode.t:.4g} ({ode.solver}, "
          f"{ode.steps} steps) over a graph of {report['graph']['edges']} edges; "
          f"mean cosine distance to E0 {report['discrepancy']['cosine_distance']:.4f}")
    if split is not None:
        for when in ("before", "after"):
            print(f"{when}:\n" + format_metrics(report["metrics"][when]))
    print(f"written to {out}")
    return 0


def _write_side(folder: Path, side: str, names: np.ndarray, X: np.ndarray) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from lightgode.atomic import atomic_path

    with atomic_path(folder / f"{side}_embedding.npy") as tmp, open(tmp, "wb") as fh:
        np.save(fh, X.astype(np.float32), allow_pickle=False)
    with atomic_path(folder / f"{side}_ids.txt") as tmp:
        tmp.write_text("".join(f"{x}\n" for x in names.tolist()), encoding="utf-8")
    table = pa.table({"id": pa.array(names.tolist(), pa.string()),
                      "vector": pa.FixedSizeListArray.from_arrays(pa.array(X.reshape(-1), pa.float32()), X.shape[1])})
    with atomic_path(folder / f"{side}s.parquet") as tmp:
        pq.write_table(table, str(tmp))
