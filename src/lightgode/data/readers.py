"""Readers of interaction files; each returns one deduplicated ``Interactions`` in file (or time) order.

Formats: LightGCN adjacency lists (``user item item ...`` per line, plain or gzip), CSV/TSV and Parquet tables
with named columns, and RecBole atomic ``.inter`` files. Everything a file can get wrong raises ``DataError``
with a one-line message naming the file; a bad format name or reader option raises ``ConfigError``.
"""

from __future__ import annotations

import csv
import gzip
import inspect
import logging
import re
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from lightgode.errors import ConfigError, DataError
from lightgode.data.interactions import Interactions, from_pairs

log = logging.getLogger(__name__)

_GZIP_MAGIC = b"\x1f\x8b"
_PARQUET_MAGIC = b"PAR1"
_BOM = b"\xef\xbb\xbf"
_MAX_DIGITS = 18  # every 18-digit id fits in int64

# Byte classes of a LightGCN file: 0 = not allowed, 1 = digit, 2 = whitespace.
_BYTE_CLASS = np.zeros(256, dtype=np.uint8)
_BYTE_CLASS[ord("0"):ord("9") + 1] = 1
_BYTE_CLASS[[9, 10, 11, 12, 13, 32]] = 2
_BYTE_CLASS.setflags(write=False)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def check_file(path) -> Path:
    """``path`` as a Path after checking that it is an existing, non-empty regular file (else DataError)."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"data file not found: {p}")
    if not p.is_file():
        raise DataError(f"not a regular file: {p}")
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise DataError(f"cannot read {p}: {_first_line(exc)}") from None
    if size == 0:
        raise DataError(f"data file is empty: {p}")
    return p


def _read_bytes(p: Path) -> bytes:
    """Whole content of ``p``, gunzipped when it is gzip (by content, not by name)."""
    try:
        data = p.read_bytes()
        if data.startswith(_GZIP_MAGIC):
            data = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"cannot read {p}: {_first_line(exc)}") from None
    return data[len(_BOM):] if data.startswith(_BOM) else data


# ---------------------------------------------------------------------------------------------------------------
# LightGCN adjacency lists


def _bad_token_error(data: bytes, pos: int, p: Path, why: str) -> DataError:
    line_no = data.count(b"\n", 0, pos) + 1
    start = data.rfind(b"\n", 0, pos) + 1
    end = data.find(b"\n", pos)
    line = data[start:end if end >= 0 else len(data)]
    offset = pos - start
    token = next((m.group() for m in re.finditer(rb"\S+", line) if m.start() <= offset < m.end()),
                 line[offset:offset + 1])
    text = token[:24].decode("utf-8", errors="backslashreplace")
    shown = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)
    return DataError(f"{p}, line {line_no}: {why}, got '{shown}'")


def lightgcn_arrays(path) -> tuple[np.ndarray, np.ndarray]:
    """Raw integer (user, item) pairs of a LightGCN file, in file order, duplicates kept.

    Returns
    -------
    users, items : np.ndarray of int64, shape (n,)
    """
    p = check_file(path)
    data = _read_bytes(p).replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    buf = np.frombuffer(data, dtype=np.uint8)
    cls = _BYTE_CLASS[buf]
    bad = np.flatnonzero(cls == 0)
    if bad.size:
        raise _bad_token_error(data, int(bad[0]), p, "expected integer ids 'user item item ...'")
    digit = cls == 1
    before = np.concatenate(([False], digit[:-1]))
    after = np.concatenate((digit[1:], [False]))
    starts = np.flatnonzero(digit & ~before)
    if starts.size == 0:
        raise DataError(f"no interactions in {p}: the file holds only blank lines")
    lengths = np.flatnonzero(digit & ~after) + 1 - starts
    if lengths.max() > _MAX_DIGITS:
        raise _bad_token_error(data, int(starts[np.argmax(lengths)]), p, f"ids have at most {_MAX_DIGITS} digits")
    values = np.zeros(len(starts), dtype=np.int64)
    for k in range(int(lengths.max())):
        sel = np.flatnonzero(lengths > k) if k >= lengths.min() else slice(None)
        values[sel] = values[sel] * 10 + (buf[starts[sel] + k].astype(np.int64) - 48)
    line = np.searchsorted(np.flatnonzero(buf == 10), starts)  # 0-based line of each token
    first = np.concatenate(([True], line[1:] != line[:-1]))  # the user token of its line
    owner = np.maximum.accumulate(np.where(first, np.arange(len(first)), 0))
    n_lonely = int(np.count_nonzero(first & np.concatenate((first[1:], [True]))))
    if n_lonely:
        log.info("%s: skipped %d user lines without items", p, n_lonely)
    return values[owner[~first]], values[~first]


def _first_seen(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values in order of first appearance, and the index of each element among them."""
    uniq, first, inverse = np.unique(values, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return uniq[order], rank[inverse.ravel()]


def first_rows(users: np.ndarray, items: np.ndarray, n_items: int) -> np.ndarray:
    """Sorted row numbers of the first occurrence of each distinct (user, item) index pair."""
    key = users.astype(np.int64) * max(n_items, 1) + items
    return np.sort(np.unique(key, return_index=True)[1])


def index_int_pairs(users: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Id maps of integer raw ids by first appearance: (user_ids, item_ids, user index, item index).

    The same indexing as ``from_pairs`` gives on the decimal strings of the ids, without sorting strings.
    """
    u_vocab, u = _first_seen(np.asarray(users, dtype=np.int64))
    i_vocab, i = _first_seen(np.asarray(items, dtype=np.int64))
    return u_vocab.astype(str), i_vocab.astype(str), u, i


def _finish(inter: Interactions, n_rows: int, p: Path, what: str = "") -> Interactions:
    if len(inter) == 0:
        raise DataError(f"no interactions in {p}{what}")
    if len(inter) < n_rows:
        log.info("%s: dropped %d duplicate (user, item) rows", p, n_rows - len(inter))
    return inter


def read_lightgcn(path) -> Interactions:
    """Read LightGCN adjacency lists: ``user item item ...`` per line, whitespace separated.

    Plain or gzip (detected by content). Rows follow the file (for the Amazon files, time order); duplicate
    pairs keep their first row; user lines without items and blank lines are skipped; CRLF is fine. Ids are
    non-negative integers and become their decimal strings ("007" -> "7").

    Raises
    ------
    DataError
        Missing, empty or unreadable file, or a token that is not an integer (the message names the line).
    """
    p = Path(path)
    users, items = lightgcn_arrays(p)
    user_ids, item_ids, u, i = index_int_pairs(users, items)
    keep = first_rows(u, i, len(item_ids))
    inter = Interactions(user_ids, item_ids, u[keep].astype(np.int32), i[keep].astype(np.int32))
    return _finish(inter, len(users), p)


# ---------------------------------------------------------------------------------------------------------------
# Tables: CSV / TSV / Parquet / RecBole


def _head_text(p: Path, n: int = 65536) -> str:
    try:
        with open(p, "rb") as fh:
            head = fh.read(n)
        if head.startswith(_GZIP_MAGIC):
            with gzip.open(p, "rb") as fh:
                head = fh.read(n)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"cannot read {p}: {_first_line(exc)}") from None
    return head.decode("utf-8", errors="replace").lstrip("\ufeff")


def _sniff_sep(p: Path) -> str:
    """The separator of the header line: the most frequent of tab , ; | there, else runs of whitespace."""
    lines = _head_text(p).splitlines()
    header = lines[0] if lines else ""
    counts = {s: header.count(s) for s in ("\t", ",", ";", "|")}
    best = max(counts, key=lambda s: counts[s])
    if counts[best]:
        return best
    return r"\s+" if header.strip() and len(header.split()) > 1 else ","


def _is_parquet(p: Path) -> bool:
    try:
        with open(p, "rb") as fh:
            return fh.read(4) == _PARQUET_MAGIC
    except OSError as exc:
        raise DataError(f"cannot read {p}: {_first_line(exc)}") from None


def _load_frame(p: Path, kind: str, sep: str | None) -> pd.DataFrame:
    """Every column of a table as it is stored (text files: all columns as str, no NA guessing)."""
    try:
        if kind == "parquet":
            return pd.read_parquet(p)
        if sep is None:
            sep = {".csv": ",", ".tsv": "\t"}.get(p.suffix.lower()) or _sniff_sep(p)
        compression = "gzip" if _head_is_gzip(p) else None
        quoting = csv.QUOTE_NONE if kind == "recbole" else csv.QUOTE_MINIMAL
        return pd.read_csv(p, sep=sep, dtype=str, na_filter=False, keep_default_na=False, encoding="utf-8",
                           compression=compression, quoting=quoting, skip_blank_lines=True)
    except DataError:
        raise
    except Exception as exc:  # pandas and pyarrow raise many unrelated kinds for a malformed file
        if isinstance(exc, UnicodeDecodeError):
            raise DataError(f"cannot parse {p}: not UTF-8 text ({_first_line(exc)})") from None
        raise DataError(f"cannot parse {p} as {kind}: {_first_line(exc)}") from None


def _head_is_gzip(p: Path) -> bool:
    with open(p, "rb") as fh:
        return fh.read(2) == _GZIP_MAGIC


def _id_strings(col: pd.Series) -> pd.Series:
    """Raw ids as stripped strings; integral floats (a Parquet int column with nulls) lose their ".0"."""
    if pd.api.types.is_float_dtype(col):
        vals = col.to_numpy(dtype=np.float64, na_value=np.nan)
        if np.all(np.isnan(vals) | (np.mod(vals, 1) == 0)):
            col = col.astype("Int64")
    out = col.astype(str).str.strip()
    return out.where(col.notna(), "")


def _epoch_seconds(dates: pd.Series) -> np.ndarray:
    return (dates - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy(np.float64)


def _timestamps(col: pd.Series, p: Path, name: str) -> np.ndarray:
    """Seconds as float64 from numbers or date strings; a value that is neither raises DataError."""
    if pd.api.types.is_datetime64_any_dtype(col):
        return _epoch_seconds(pd.to_datetime(col, utc=True))
    num = pd.to_numeric(col, errors="coerce")
    if num.notna().all():
        return num.to_numpy(np.float64)
    dates = pd.to_datetime(col, errors="coerce", utc=True, format="ISO8601")
    if dates.notna().all():
        return _epoch_seconds(dates)
    bad = int(np.flatnonzero(num.isna().to_numpy() & dates.isna().to_numpy())[0])
    raise DataError(f"{p}: timestamp column {name!r} holds {str(col.iloc[bad])[:40]!r} (data row {bad + 1}), "
                    f"which is neither a number nor an ISO date")


def _frame_to_interactions(df: pd.DataFrame, p: Path, user_col: str, item_col: str, rating_col: str | None,
                           rating_threshold: float | None, timestamp_col: str | None) -> Interactions:
    df.columns = [str(c).strip().lstrip("\ufeff") for c in df.columns]
    if df.columns.duplicated().any():
        dup = df.columns[df.columns.duplicated()][0]
        raise DataError(f"{p}: column {dup!r} appears twice in the header")
    wanted = [c for c in (user_col, item_col, rating_col, timestamp_col) if c is not None]
    missing = [c for c in wanted if c not in df.columns]
    if missing:
        raise DataError(f"{p}: no column {missing[0]!r}; the columns are {', '.join(map(repr, df.columns))}")
    n_read = len(df)
    users, items = _id_strings(df[user_col]), _id_strings(df[item_col])
    keep = np.array((users != "") & (items != ""), dtype=bool)
    if not keep.all():
        log.info("%s: dropped %d rows with an empty user or item id", p, int((~keep).sum()))
    what = ""
    if rating_col is not None and rating_threshold is not None:
        rating = pd.to_numeric(df[rating_col], errors="coerce").to_numpy(np.float64)
        no_number = np.isnan(rating) & keep
        if no_number.any():
            log.info("%s: dropped %d rows without a numeric %r", p, int(no_number.sum()), rating_col)
        low = keep & ~np.isnan(rating) & (rating < rating_threshold)
        if low.any():
            log.info("%s: dropped %d rows with %s < %g", p, int(low.sum()), rating_col, rating_threshold)
        keep = keep & (rating >= rating_threshold)
        what = f" with {rating_col} >= {rating_threshold:g}"
    ts = None
    if timestamp_col is not None:
        ts = _timestamps(df[timestamp_col][keep], p, timestamp_col)
    inter = from_pairs(users.to_numpy()[keep], items.to_numpy()[keep], ts)
    log.info("%s: %d rows read, %d interactions kept", p, n_read, len(inter))
    return _finish(inter, int(keep.sum()), p, what)


def _check_rating_options(rating_col, rating_threshold) -> None:
    if rating_threshold is not None and rating_col is None:
        raise ConfigError(f"rating_threshold={rating_threshold!r} needs rating_col (the column to compare)")
    if rating_threshold is not None and not np.isfinite(float(rating_threshold)):
        raise ConfigError(f"rating_threshold must be a finite number, got {rating_threshold!r}")


def _read_any_table(path, kind: str | None, *, user_col: str, item_col: str, rating_col: str | None,
                    rating_threshold: float | None, timestamp_col: str | None, sep: str | None) -> Interactions:
    _check_rating_options(rating_col, rating_threshold)
    p = check_file(path)
    parquet = _is_parquet(p)
    if kind == "parquet" and not parquet:
        raise DataError(f"{p} is not a Parquet file (no PAR1 signature)")
    df = _load_frame(p, "parquet" if parquet else (kind or "csv"), sep)
    return _frame_to_interactions(df, p, user_col, item_col, rating_col, rating_threshold, timestamp_col)


def read_table(path, *, user_col: str = "user", item_col: str = "item", rating_col: str | None = None,
               rating_threshold: float | None = None, timestamp_col: str | None = None,
               sep: str | None = None) -> Interactions:
    """Read a CSV/TSV (plain or gzip) or Parquet table with named user and item columns.

    Parquet is recognised by its signature. For text, ``sep`` defaults to ``,`` for ``.csv``, tab for ``.tsv``
    and otherwise to the separator found on the header line (tab , ; | or whitespace). Ids are kept as
    strings (stripped); rows with an empty id are dropped. With ``rating_col`` and ``rating_threshold``,
    only rows with rating >= threshold stay. With ``timestamp_col`` (numbers or ISO dates), rows are stably
    sorted by time. Extra columns are ignored; duplicate pairs keep their first row.

    Raises
    ------
    DataError
        Missing/empty/unparsable file, a missing column (the message lists the columns), no rows left.
    ConfigError
        ``rating_threshold`` without ``rating_col``.
    """
    return _read_any_table(path, None, user_col=user_col, item_col=item_col, rating_col=rating_col,
                           rating_threshold=rating_threshold, timestamp_col=timestamp_col, sep=sep)


def read_csv(path, *, sep: str = ",", **options) -> Interactions:
    """``read_table`` with a comma (or the given) separator."""
    return read_table(path, sep=sep, **options)


def read_tsv(path, *, sep: str = "\t", **options) -> Interactions:
    """``read_table`` with a tab (or the given) separator."""
    return read_table(path, sep=sep, **options)


def read_parquet(path, *, user_col: str = "user", item_col: str = "item", rating_col: str | None = None,
                 rating_threshold: float | None = None, timestamp_col: str | None = None) -> Interactions:
    """``read_table`` for a file that must be Parquet."""
    return _read_any_table(path, "parquet", user_col=user_col, item_col=item_col, rating_col=rating_col,
                           rating_threshold=rating_threshold, timestamp_col=timestamp_col, sep=None)


def read_recbole(path, *, rating_threshold: float | None = None) -> Interactions:
    """Read a RecBole atomic ``.inter`` file: tab separated, typed header ``user_id:token\\titem_id:token...``.

    Uses ``user_id`` and ``item_id``; ``timestamp`` (when present) orders the rows; ``rating`` is compared with
    ``rating_threshold`` when one is given. Other fields are ignored.
    """
    p = check_file(path)
    df = _load_frame(p, "recbole", "\t")
    names = [str(c).strip().lstrip("\ufeff").split(":", 1)[0].strip() for c in df.columns]
    for field in ("user_id", "item_id"):
        if field not in names:
            raise DataError(f"{p}: a RecBole .inter header needs a {field} field; the header is "
                            f"{', '.join(map(repr, map(str, df.columns)))}")
    if rating_threshold is not None and "rating" not in names:
        raise DataError(f"{p}: rating_threshold given but the header has no rating field")
    df.columns = names
    return _frame_to_interactions(df, p, "user_id", "item_id", "rating" if rating_threshold is not None else None,
                                  rating_threshold, "timestamp" if "timestamp" in names else None)


FORMATS = {"lightgcn": read_lightgcn, "csv": read_csv, "tsv": read_tsv, "parquet": read_parquet,
           "recbole": read_recbole}

_SUFFIXES = ((".inter", "recbole"), (".parquet", "parquet"), (".pq", "parquet"), (".csv", "csv"),
             (".csv.gz", "csv"), (".tsv", "tsv"), (".tsv.gz", "tsv"), (".txt", "lightgcn"), (".txt.gz", "lightgcn"))


def detect_format(path) -> str:
    """Format name from the file name: .inter, .parquet, .csv, .tsv, .txt (the last three also with .gz)."""
    name = Path(path).name.lower()
    for suffix, fmt in _SUFFIXES:
        if name.endswith(suffix):
            return fmt
    raise DataError(f"cannot tell the format of {path} from its name; name the format "
                    f"({', '.join(FORMATS)})")


def read_interactions(path, fmt: str = "auto", **options) -> Interactions:
    """Read ``path`` with the reader of ``fmt`` (``"auto"``: from the file name) and its ``options``.

    Raises
    ------
    ConfigError
        Unknown ``fmt`` (the message lists the valid ones) or an option the reader does not take.
    DataError
        Anything wrong with the file.
    """
    if fmt != "auto" and fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}; choose one of auto, {', '.join(FORMATS)}")
    if fmt == "auto":
        fmt = detect_format(check_file(path))
    reader = FORMATS[fmt]
    accepted = {n for n, prm in inspect.signature(reader).parameters.items() if prm.kind is prm.KEYWORD_ONLY}
    if reader in (read_csv, read_tsv):
        accepted |= {n for n, prm in inspect.signature(read_table).parameters.items()
                     if prm.kind is prm.KEYWORD_ONLY}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise ConfigError(f"option {unknown[0]!r} does not apply to the {fmt} format; it takes "
                          f"{', '.join(sorted(accepted)) or 'no options'}")
    return reader(path, **options)
