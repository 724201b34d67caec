"""Readers of interaction files; each returns one deduplicated ``Interactions``."""

from __future__ import annotations

import gzip
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ConfigError, DataError
from .interactions import Interactions, from_pairs

log = logging.getLogger(__name__)


def _check_file(path) -> Path:
    p = Path(path)
    if not p.exists():
        raise DataError(f"data file not found: {p}")
    if not p.is_file():
        raise DataError(f"not a file: {p}")
    if p.stat().st_size == 0:
        raise DataError(f"data file is empty: {p}")
    return p


def _finish(inter: Interactions, n_rows: int, p: Path) -> Interactions:
    if len(inter) == 0:
        raise DataError(f"no interactions found in {p}")
    if len(inter) < n_rows:
        log.info("dropped %d duplicate rows of %s", n_rows - len(inter), p)
    return inter


def read_lightgcn(path) -> Interactions:
    """LightGCN adjacency lists: ``user item item ...`` per line (plain or .gz); file order kept."""
    p = _check_file(path)
    opener = gzip.open if p.suffix == ".gz" else open
    try:
        with opener(p, "rt", encoding="utf-8", newline=None) as fh:
            lines = fh.read().splitlines()
    except (UnicodeDecodeError, OSError, EOFError) as exc:
        raise DataError(f"cannot read {p} as text: {exc}") from None
    users: list[str] = []
    items: list[str] = []
    for n, line in enumerate(lines, 1):
        tok = line.split()
        if not tok:
            continue
        if not all(t.isdigit() for t in tok):
            raise DataError(f"{p}, line {n}: expected integer ids 'user item item ...'")
        users.extend([tok[0]] * (len(tok) - 1))
        items.extend(tok[1:])
    return _finish(from_pairs(np.array(users, dtype=str), np.array(items, dtype=str)), len(users), p)


def read_table(path, *, user_col: str = "user", item_col: str = "item", rating_col: str | None = None,
               rating_threshold: float | None = None, timestamp_col: str | None = None,
               sep: str | None = None) -> Interactions:
    """CSV/TSV (separator from the suffix, else sniffed) or Parquet with named columns."""
    p = _check_file(path)
    try:
        if p.suffix.lower() == ".parquet":
            df = pd.read_parquet(p)
        else:
            if sep is None:
                sep = "\t" if p.suffix.lower() == ".tsv" else ("," if p.suffix.lower() == ".csv" else None)
            df = pd.read_csv(p, sep=sep, engine="python" if sep is None else "c", dtype=str,
                             skip_blank_lines=True)
    except Exception as exc:  # pandas/pyarrow raise many kinds for malformed files
        raise DataError(f"cannot parse {p}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    df.columns = [str(c).strip() for c in df.columns]
    need = [c for c in (user_col, item_col, rating_col, timestamp_col) if c]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise DataError(f"{p}: missing column {missing[0]!r}; columns are {', '.join(map(str, df.columns))}")
    df = df.dropna(subset=[user_col, item_col])
    if rating_col and rating_threshold is not None:
        r = pd.to_numeric(df[rating_col], errors="coerce")
        if r.isna().all():
            raise DataError(f"{p}: rating column {rating_col!r} holds no numbers")
        df = df[r >= rating_threshold]
    ts = None
    if timestamp_col:
        ts = pd.to_numeric(df[timestamp_col], errors="coerce")
        if ts.isna().any():
            raise DataError(f"{p}: timestamp column {timestamp_col!r} has non-numeric values")
        ts = ts.to_numpy(np.float64)
    n = len(df)
    return _finish(from_pairs(df[user_col].astype(str).str.strip().to_numpy(),
                              df[item_col].astype(str).str.strip().to_numpy(), ts), n, p)


def read_recbole(path, *, rating_threshold: float | None = None) -> Interactions:
    """RecBole atomic ``.inter`` file: tab-separated, typed header ``user_id:token\\titem_id:token...``."""
    p = _check_file(path)
    try:
        with open(p, encoding="utf-8") as fh:
            header = fh.readline().rstrip("\r\n").split("\t")
    except (UnicodeDecodeError, OSError) as exc:
        raise DataError(f"cannot read {p}: {exc}") from None
    names = {h.split(":")[0].strip(): h for h in header}
    if "user_id" not in names or "item_id" not in names:
        raise DataError(f"{p}: a RecBole .inter header needs user_id and item_id fields, got {header}")
    return read_table(p, user_col=names["user_id"], item_col=names["item_id"],
                      rating_col=names.get("rating") if rating_threshold is not None else None,
                      rating_threshold=rating_threshold, timestamp_col=names.get("timestamp"), sep="\t")


FORMATS = {"lightgcn": read_lightgcn, "csv": read_table, "tsv": read_table, "parquet": read_table,
           "recbole": read_recbole}


def detect_format(path) -> str:
    name = str(path).lower()
    for suffix, fmt in ((".inter", "recbole"), (".parquet", "parquet"), (".csv", "csv"), (".tsv", "tsv"),
                        (".txt", "lightgcn"), (".txt.gz", "lightgcn")):
        if name.endswith(suffix):
            return fmt
    raise DataError(f"cannot tell the format of {path} from its name; pass --format ({', '.join(FORMATS)})")


def read_interactions(path, fmt: str = "auto", **options) -> Interactions:
    if fmt == "auto":
        _check_file(path)
        fmt = detect_format(path)
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}; choose one of auto, {', '.join(FORMATS)}")
    if fmt == "lightgcn":
        if options:
            raise ConfigError(f"column options do not apply to LightGCN files: {', '.join(options)}")
        return read_lightgcn(path)
    if fmt == "recbole":
        return read_recbole(path, rating_threshold=options.get("rating_threshold"))
    if fmt == "tsv":
        options.setdefault("sep", "\t")
    if fmt == "csv":
        options.setdefault("sep", ",")
    return read_table(path, **options)
