"""The post-training graph ODE on any model's embeddings: read user and item vectors with their ids, align them
with a graph (a saved split's training part, or every interaction of a data file), propagate, and write the
result as a folder that is complete or absent.

The graph is the training part of a saved split (then validation and test metrics are reported before and after)
or every interaction of a data file. Embeddings come as ``.npy`` (rows in the order of an id file: text, one id
per line, or the ``.npy`` of ids that ``lightgode export --format npy`` writes; with a split and no id file, rows
follow the split's ``users.txt`` / ``items.txt``) or as ``.parquet`` with an ``id`` column and a ``vector`` (or
``embedding``) list column. Every user and item of the graph needs an embedding; embedded ids the graph lacks are
isolated nodes, for which the ODE gives E(T) = (1 + T) E0 exactly.

Output folder: ``users.parquet`` / ``items.parquet`` (id, vector), ``user_embedding.npy`` /
``item_embedding.npy`` with ``user_ids.txt`` / ``item_ids.txt`` (input row order), ``propagate.json`` (settings,
discrepancy, metrics before/after), and with T chosen on validation ``tune.json`` and ``t_curve.png``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lightgode.atomic import atomic_path, write_json
from lightgode.core.discrepancy import discrepancy
from lightgode.core.graph import normalized_adjacency
from lightgode.core.ode import ODEConfig, propagate
from lightgode.core.tune import TuneConfig, tune_split, write_tune_files
from lightgode.errors import ConfigError, DataError
from lightgode.models.lightgode import LightGODE
from lightgode.runs.store import check_out_dir, staged
from lightgode.runs.workflow import evaluate_model


@dataclass(frozen=True, kw_only=True)
class PropagateInput:
    """Where the embeddings and the graph come from (exactly one of ``split_dir`` and ``data``)."""

    user_emb: str  # .npy (n, d) or .parquet (id, vector)
    item_emb: str
    user_ids: str | None = None  # id of each .npy row: text (one per line) or .npy of strings
    item_ids: str | None = None
    split_dir: str | None = None  # a saved split: graph of its train part, metrics on valid/test
    data: str | None = None  # dataset name or interaction file: graph of all its interactions
    data_dir: str | None = None
    env_data_dir: str | None = None
    format: str = "auto"

    def __post_init__(self) -> None:
        if (self.split_dir is None) == (self.data is None):
            raise ConfigError("give exactly one of --split-dir and --data")
        if self.split_dir is None:
            for side in ("user", "item"):
                if (
                    Path(getattr(self, f"{side}_emb")).suffix.lower() != ".parquet"
                    and getattr(self, f"{side}_ids") is None
                ):
                    raise ConfigError(
                        f"--{side}-ids is needed with --data and a .npy file (row order is otherwise unknown)"
                    )


def propagate_files(
    source: PropagateInput,
    out: str | Path,
    ode: ODEConfig,
    *,
    t_auto: bool = False,
    t_max: float = 4.0,
    overwrite: bool = False,
    show_progress: bool = False,
) -> dict[str, Any]:
    """Propagate ``source``'s embeddings over its graph with ``ode`` and write the folder ``out``.

    Parameters
    ----------
    source : the embeddings, their ids and the graph
    out : output folder (refused when it exists, unless ``overwrite``; never the split it reads)
    ode : the ODE (its ``t`` is ignored when ``t_auto``)
    t_auto : choose T on the split's validation part (needs ``source.split_dir``), searching up to ``t_max``
    show_progress : progress bars for the before/after evaluation

    Returns
    -------
    The report written as ``propagate.json``: graph size, isolated nodes, ODE settings, discrepancy, and with a
    split the metrics before and after (and the T search).

    Raises
    ------
    ConfigError, DataError, OutputError : one-line errors for bad settings, files or targets
    """
    if t_auto and source.split_dir is None:
        raise ConfigError("--t auto chooses T on validation and needs --split-dir")
    out = Path(out)
    src_dir = Path(source.split_dir) if source.split_dir is not None else None
    check_out_dir(out, overwrite, source=src_dir)  # before any work; never over the split it reads
    split = None
    if source.split_dir is not None:
        from lightgode.data.split import load_split

        split = load_split(source.split_dir)
        graph = split.train
    else:
        from lightgode.data.datasets import load_dataset

        graph = load_dataset(source.data, data_dir=source.data_dir, env_data_dir=source.env_data_dir, fmt=source.format)
    if t_auto:
        ode = replace(ode, t=0.0)
    u_ids, U = read_vectors(source.user_emb, source.user_ids)
    i_ids, I = read_vectors(source.item_emb, source.item_ids)
    if U.shape[1] != I.shape[1]:
        raise DataError(f"user embeddings have {U.shape[1]} dimensions but item embeddings {I.shape[1]}")
    u_rows, u_extra = align(graph.user_ids, u_ids, U.shape[0], "user")
    i_rows, i_extra = align(graph.item_ids, i_ids, I.shape[0], "item")
    n_users = graph.n_users
    A_hat = normalized_adjacency(n_users, graph.n_items, graph.users, graph.items)
    E0 = torch.from_numpy(np.concatenate([U[u_rows], I[i_rows]]))

    report: dict[str, Any] = {
        "graph": {
            "users": n_users,
            "items": graph.n_items,
            "edges": int(A_hat.nnz // 2),
            "source": source.split_dir or source.data,
        },
        "isolated": {"users": int(len(u_extra)), "items": int(len(i_extra))},
    }
    tune_result = None
    if t_auto:
        tune_result = tune_split(E0, split, ode=ode, config=TuneConfig(t_max=t_max))
        ode = tune_result.ode
        report["tune"] = {k: v for k, v in tune_result.to_dict().items() if k != "points"}
    E = propagate(A_hat, E0, ode)
    report["ode"] = asdict(ode)
    report["discrepancy"] = discrepancy(E0, E, n_users)
    if split is not None:
        before = LightGODE.from_embeddings(E0, n_users, A_hat, replace(ode, t=0.0))
        after = LightGODE.from_embeddings(E0, n_users, A_hat, ode)
        report["metrics"] = {
            "before": evaluate_model(before, split, show_progress=show_progress),
            "after": evaluate_model(after, split, show_progress=show_progress),
        }

    U_out, I_out = (1.0 + ode.t) * U, (1.0 + ode.t) * I  # isolated nodes: dE/dt = E0 gives (1 + T) E0
    U_out[u_rows], I_out[i_rows] = E[:n_users].numpy(), E[n_users:].numpy()
    u_names = u_ids if u_ids is not None else graph.user_ids
    i_names = i_ids if i_ids is not None else graph.item_ids
    report["written"] = {"users": int(len(u_names)), "items": int(len(i_names))}

    with staged(out, overwrite=overwrite, source=src_dir) as staging:
        for side, names, X in (("user", u_names, U_out), ("item", i_names, I_out)):
            _write_side(staging, side, names, X)
        write_json(staging / "propagate.json", report)
        if tune_result is not None:
            write_tune_files(staging, tune_result, title="propagate --t auto")
    return report


def read_ids(path: str | Path) -> np.ndarray:
    """Ids, one per row of an embedding file: a text file (one id per line, UTF-8) or a .npy array of strings or
    integers (what ``lightgode export --format npy`` writes; no pickle)."""
    p = Path(path)
    if p.suffix.lower() == ".npy":
        try:
            ids = np.load(p, allow_pickle=False)
        except Exception as exc:  # numpy raises ValueError/OSError/EOFError for damaged or pickled files
            raise DataError(
                f"cannot read id file {p}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
            ) from None
        if ids.ndim != 1 or not (np.issubdtype(ids.dtype, np.str_) or np.issubdtype(ids.dtype, np.integer)):
            raise DataError(f"id file {p} must hold a 1-D array of strings or integers, got {ids.dtype} {ids.shape}")
        return np.array([str(x) for x in ids.tolist()], dtype=object)
    try:
        text = p.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read id file {p}: {exc}") from None
    return np.array(text.splitlines(), dtype=object)


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
            raise DataError(
                f"cannot read {p}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
            ) from None
        col = next((c for c in ("vector", "embedding") if c in df.columns), None)
        if "id" not in df.columns or col is None:
            raise DataError(
                f"{p} needs an 'id' column and a 'vector' (or 'embedding') list column, has "
                f"{', '.join(map(str, df.columns))}"
            )
        try:
            X = np.stack([np.asarray(v, dtype=np.float32) for v in df[col]]) if len(df) else np.zeros((0, 0))
        except (ValueError, TypeError):
            raise DataError(f"{p}: every '{col}' must be a list of numbers of one length") from None
        ids = np.array([str(x) for x in df["id"].tolist()], dtype=object)
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
        raise DataError(
            f"{len(missing)} {what}s of the graph have no embedding (e.g. {str(missing[0])!r}); "
            f"every {what} of the data needs one"
        )
    rows = order[pos]
    extra = np.setdiff1d(np.arange(len(ids)), rows)
    return rows, extra


def _write_side(folder: Path, side: str, names: np.ndarray, X: np.ndarray) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    with atomic_path(folder / f"{side}_embedding.npy") as tmp, open(tmp, "wb") as fh:
        np.save(fh, X.astype(np.float32), allow_pickle=False)
    with atomic_path(folder / f"{side}_ids.txt") as tmp:
        tmp.write_text("".join(f"{x}\n" for x in names.tolist()), encoding="utf-8")
    table = pa.table(
        {
            "id": pa.array(names.tolist(), pa.string()),
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(X.reshape(-1), pa.float32()), X.shape[1]),
        }
    )
    with atomic_path(folder / f"{side}s.parquet") as tmp:
        pq.write_table(table, str(tmp))
