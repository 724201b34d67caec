"""Readers of interaction files; each returns one deduplicated ``Interactions`` in file (or time) order.

Formats: LightGCN adjacency lists (``user item item ...`` per line, plain or gzip), CSV/TSV and Parquet tables
with named columns, and RecBole atomic ``.inter`` files. Everything a file can get wrong raises ``DataError``
with a one-line message naming the file; a bad format name or reader option raises ``ConfigError``.
"""

from __future__ import annotations

import csv
import gzip
import inspect
import io
import logging
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lightgode.data.interactions import Interactions, from_pairs
from lightgode.errors import ConfigError, DataError

log = logging.getLogger(__name__)

_GZIP_MAGIC = b"\x1f\x8b"
_PARQUET_MAGIC = b"PAR1"
_BOM = b"\xef\xbb\xbf"
_MAX_DIGITS = 18  # every 18-digit id fits in int64
DEFAULT_MAX_ID_LENGTH = 256  # characters; a longer id is refused (max_id_length, --max-id-length)
# The strings pandas reads as a missing value by default: an id that is one of them (or empty) is refused
# instead of becoming a user or item called "nan".
MISSING_MARKERS = frozenset(
    {
        "",
        "#N/A",
        "#N/A N/A",
        "#NA",
        "-1.#IND",
        "-1.#QNAN",
        "-NaN",
        "-nan",
        "1.#IND",
        "1.#QNAN",
        "<NA>",
        "N/A",
        "NA",
        "NULL",
        "NaN",
        "None",
        "n/a",
        "nan",
        "null",
    }
)

# Byte classes of a LightGCN file: 0 = not allowed, 1 = digit, 2 = whitespace.
_BYTE_CLASS = np.zeros(256, dtype=np.uint8)
_BYTE_CLASS[ord("0") : ord("9") + 1] = 1
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
    return data[len(_BOM) :] if data.startswith(_BOM) else data


# ---------------------------------------------------------------------------------------------------------------
# LightGCN adjacency lists


def _bad_token_error(data: bytes, pos: int, p: Path, why: str) -> DataError:
    line_no = data.count(b"\n", 0, pos) + 1
    start = data.rfind(b"\n", 0, pos) + 1
    end = data.find(b"\n", pos)
    line = data[start : end if end >= 0 else len(data)]
    offset = pos - start
    token = next(
        (m.group() for m in re.finditer(rb"\S+", line) if m.start() <= offset < m.end()), line[offset : offset + 1]
    )
    text = token[:24].decode("utf-8", errors="backslashreplace")
    shown = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)
    return DataError(f"{p}, line {line_no}: {why}, got '{shown}'")


def check_max_id_length(max_id_length) -> int:
    """``max_id_length`` as an int after checking that it is an integer >= 1 (else ConfigError)."""
    if isinstance(max_id_length, bool) or not isinstance(max_id_length, (int, np.integer)) or max_id_length < 1:
        raise ConfigError(f"max_id_length must be an integer >= 1, got {max_id_length!r}")
    return int(max_id_length)


def lightgcn_arrays(path, *, max_id_length: int = DEFAULT_MAX_ID_LENGTH) -> tuple[np.ndarray, np.ndarray]:
    """Raw integer (user, item) pairs of a LightGCN file, in file order, duplicates kept.

    Returns
    -------
    users, items : np.ndarray of int64, shape (n,)
    """
    limit = check_max_id_length(max_id_length)
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
    if lengths.max() > limit:
        raise _bad_token_error(
            data, int(starts[np.argmax(lengths)]), p, f"an id is longer than max_id_length {limit} (--max-id-length)"
        )
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
    return u_vocab.astype(str).astype(object), i_vocab.astype(str).astype(object), u, i


def _finish(inter: Interactions, n_rows: int, p: Path, what: str = "") -> Interactions:
    if len(inter) == 0:
        raise DataError(f"no interactions in {p}{what}")
    if len(inter) < n_rows:
        log.info("%s: dropped %d duplicate (user, item) rows", p, n_rows - len(inter))
    return inter


def read_lightgcn(path, *, max_id_length: int = DEFAULT_MAX_ID_LENGTH) -> Interactions:
    """Read LightGCN adjacency lists: ``user item item ...`` per line, whitespace separated.

    Plain or gzip (detected by content). Rows follow the file (for the Amazon files, time order); duplicate
    pairs keep their first row; user lines without items and blank lines are skipped; CRLF is fine. Ids are
    non-negative integers and become their decimal strings ("007" -> "7").

    Raises
    ------
    DataError
        Missing, empty or unreadable file, or a token that is not an integer or is longer than
        ``max_id_length`` (the message names the line).
    """
    p = Path(path)
    users, items = lightgcn_arrays(p, max_id_length=max_id_length)
    user_ids, item_ids, u, i = index_int_pairs(users, items)
    keep = first_rows(u, i, len(item_ids))
    inter = Interactions(user_ids, item_ids, u[keep].astype(np.int32), i[keep].astype(np.int32))
    return _finish(inter, len(users), p)


# ---------------------------------------------------------------------------------------------------------------
# Tables: CSV / TSV / Parquet / RecBole

_SPACE = np.zeros(256, dtype=bool)
_SPACE[[9, 10, 11, 12, 13, 32]] = True
_SPACE.setflags(write=False)
_WHITESPACE_SEP = r"\s+"


def _sniff_sep(data: bytes) -> str:
    """The separator of the header line: the most frequent of tab , ; | there, else runs of whitespace."""
    end = data.find(b"\n")
    header = data[: end if end >= 0 else 65536].decode("utf-8", errors="replace")
    counts = {s: header.count(s) for s in ("\t", ",", ";", "|")}
    best = max(counts, key=lambda s: counts[s])
    if counts[best]:
        return best
    return _WHITESPACE_SEP if header.strip() and len(header.split()) > 1 else ","


def _is_parquet(p: Path) -> bool:
    try:
        with open(p, "rb") as fh:
            return fh.read(4) == _PARQUET_MAGIC
    except OSError as exc:
        raise DataError(f"cannot read {p}: {_first_line(exc)}") from None


@dataclass(frozen=True)
class _Layout:
    """The records of a text table (blank lines left out), found by a scan of its bytes.

    Attributes
    ----------
    first_line, last_line : np.ndarray of int64, shape (n_records,)
        1-based physical lines on which each record starts and ends (they differ for quoted line breaks).
    fields : np.ndarray of int64, shape (n_records,)
        Number of fields of each record; record 0 is the header.
    """

    first_line: np.ndarray
    last_line: np.ndarray
    fields: np.ndarray


def _scan_plain(data: bytes, sep: int | None) -> _Layout:
    """Records of unquoted text: every non-blank line; fields = separators + 1, or whitespace-separated tokens
    when ``sep`` is None. Vectorised over the bytes."""
    buf = np.frombuffer(data, dtype=np.uint8)
    n = len(buf)
    starts = np.concatenate(([0], np.flatnonzero(buf == 10) + 1))
    if starts[-1] == n:  # nothing after the final line break
        starts = starts[:-1]
    if n == 0 or len(starts) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return _Layout(empty, empty, empty)
    solid = ~_SPACE[buf]
    nonblank = np.add.reduceat(solid, starts, dtype=np.int64) > 0
    if sep is None:
        mark = solid & ~np.concatenate(([False], solid[:-1]))  # first byte of each token
        fields = np.add.reduceat(mark, starts, dtype=np.int64)
    else:
        fields = np.add.reduceat(buf == sep, starts, dtype=np.int64) + 1
    lines = np.flatnonzero(nonblank).astype(np.int64) + 1
    return _Layout(lines, lines, fields[nonblank])


class _FieldLimit:
    """Lets the csv module read fields of any length for the duration of a ``with`` block."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.saved = csv.field_size_limit()

    def __enter__(self) -> None:
        csv.field_size_limit(max(self.saved, self.limit))

    def __exit__(self, *exc) -> None:
        csv.field_size_limit(self.saved)


def _scan_quoted(data: bytes, sep: str) -> _Layout | None:
    """Records of text with quoted fields (which may hold separators and line breaks), through the csv module;
    None when it cannot follow the file (pandas then reads it alone)."""
    from array import array

    first, last, fields = array("q"), array("q"), array("q")
    try:
        text = data.decode("utf-8")
        with _FieldLimit(min(len(text) + 1, 2**31 - 1)):
            reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep, quotechar='"', doublequote=True)
            before = 0
            for row in reader:
                if len(row) > 1 or (row and row[0].strip()):
                    first.append(before + 1)
                    last.append(reader.line_num)
                    fields.append(len(row))
                before = reader.line_num
    except (UnicodeDecodeError, csv.Error):
        return None
    return _Layout(
        *(np.frombuffer(a, dtype=np.int64) if len(a) else np.zeros(0, dtype=np.int64) for a in (first, last, fields))
    )


def _scan(data: bytes, sep: str, quoting: int) -> _Layout | None:
    """The records of a text table, or None for a separator the scan does not know (a regex, several bytes)."""
    quoted = quoting != csv.QUOTE_NONE and b'"' in data
    if sep == _WHITESPACE_SEP:
        return None if quoted else _scan_plain(data, None)
    if len(sep) != 1 or not sep.isascii() or sep in '"\n\r':
        return None
    return _scan_quoted(data, sep) if quoted else _scan_plain(data, ord(sep))


def _drop_lines(data: bytes, first: np.ndarray, last: np.ndarray) -> bytes:
    """``data`` without the physical lines ``first[k] .. last[k]`` (1-based, inclusive) of every k."""
    buf = np.frombuffer(data, dtype=np.uint8)
    starts = np.concatenate(([0], np.flatnonzero(buf == 10) + 1, [len(buf)]))
    edge = np.zeros(len(buf) + 1, dtype=np.int8)
    np.add.at(edge, starts[first - 1], 1)
    np.add.at(edge, starts[np.minimum(last, len(starts) - 1)], -1)
    return buf[np.cumsum(edge[:-1], dtype=np.int8) == 0].tobytes()


@dataclass(frozen=True)
class _Rows:
    """How a table's data rows are named in messages: by line (text) or by number (Parquet, or unknown)."""

    lines: np.ndarray | None = None  # 1-based line of each data row
    word: str = "data row"

    def name(self, row: int) -> str:
        return f"line {int(self.lines[row])}" if self.lines is not None else f"{self.word} {row + 1}"


def _load_text(p: Path, kind: str, sep: str | None, skip_bad_rows: bool) -> tuple[pd.DataFrame, _Rows]:
    """Every column of a text table as str (no NA guessing), after checking that each record has as many
    fields as the header: a ragged record is a DataError naming its line, or skipped (and counted)."""
    data = _read_bytes(p)
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    if sep is None:
        sep = {".csv": ",", ".tsv": "\t"}.get(p.suffix.lower()) or _sniff_sep(data)
    quoting = csv.QUOTE_NONE if kind == "recbole" else csv.QUOTE_MINIMAL
    layout = _scan(data, sep, quoting)
    rows = _Rows()
    if layout is not None and len(layout.fields):
        want = int(layout.fields[0])
        bad = np.flatnonzero(layout.fields != want)
        keep = np.ones(len(layout.fields), dtype=bool)
        if len(bad):
            k = int(bad[0])
            where = f"{p}, line {int(layout.first_line[k])}"
            if not skip_bad_rows:
                raise DataError(f"{where}: {int(layout.fields[k])} fields where the header has {want}")
            log.warning(
                "%s: skipped %d rows whose number of fields differs from the header's %d (first: line %d)",
                p,
                len(bad),
                want,
                int(layout.first_line[k]),
            )
            data = _drop_lines(data, layout.first_line[bad], layout.last_line[bad])
            keep[bad] = False
        rows = _Rows(layout.first_line[keep][1:])
    try:
        df = pd.read_csv(
            io.BytesIO(data),
            sep=sep,
            dtype=str,
            na_filter=False,
            keep_default_na=False,
            encoding="utf-8",
            quoting=quoting,
            skip_blank_lines=True,
            index_col=False,
        )
    except Exception as exc:  # pandas raises many unrelated kinds for a malformed file
        if isinstance(exc, UnicodeDecodeError):
            raise DataError(f"cannot parse {p}: not UTF-8 text ({_first_line(exc)})") from None
        raise DataError(f"cannot parse {p} as {kind}: {_first_line(exc)}") from None
    if rows.lines is not None and len(rows.lines) != len(df):
        log.debug("%s: the scan found %d data rows, pandas %d; rows are named by number", p, len(rows.lines), len(df))
        rows = _Rows()
    return df, rows


def _load_parquet(p: Path) -> tuple[pd.DataFrame, _Rows]:
    try:
        return pd.read_parquet(p), _Rows(word="row")
    except Exception as exc:  # pyarrow raises many unrelated kinds for a malformed file
        raise DataError(f"cannot parse {p} as parquet: {_first_line(exc)}") from None


def _id_strings(col: pd.Series) -> pd.Series:
    """Raw ids as stripped strings; integral floats (a Parquet int column with nulls) lose their ".0"; a null
    becomes "" (refused as a missing id)."""
    if pd.api.types.is_float_dtype(col):
        vals = col.to_numpy(dtype=np.float64, na_value=np.nan)
        if np.all(np.isnan(vals) | (np.mod(vals, 1) == 0)):
            col = col.astype("Int64")
    out = col.astype(str).str.strip()
    return out.where(col.notna(), "").astype(str)


def _id_problem(ids: pd.Series, what: str, limit: int) -> tuple[np.ndarray, list[str | None]]:
    """(rows whose id is missing or too long, a reason per such row in row order) for one id column."""
    missing = ids.isin(MISSING_MARKERS).to_numpy(dtype=bool)
    lengths = ids.str.len().to_numpy(dtype=np.int64)
    long = lengths > limit
    bad = missing | long
    reasons: list[str | None] = []
    for r in np.flatnonzero(bad)[:1].tolist():  # only the first is ever shown
        if long[r]:
            reasons.append(
                f"{what} id of {int(lengths[r])} characters is longer than max_id_length {limit} (--max-id-length)"
            )
        elif ids.iloc[r] == "":
            reasons.append(f"empty or null {what} id")
        else:
            reasons.append(f"{what} id {str(ids.iloc[r])!r} reads as a missing value")
    return bad, reasons


def _check_ids(users: pd.Series, items: pd.Series, p: Path, rows: _Rows, limit: int, skip_bad_rows: bool) -> np.ndarray:
    """Rows whose user and item ids are both present and at most ``limit`` characters long; the first bad
    row is a DataError naming it, unless ``skip_bad_rows`` (then they are counted in a warning)."""
    bad_u, why_u = _id_problem(users, "user", limit)
    bad_i, why_i = _id_problem(items, "item", limit)
    bad = bad_u | bad_i
    if not bad.any():
        return ~bad
    r = int(np.flatnonzero(bad)[0])
    why = why_u[0] if bad_u[r] else why_i[0]
    if not skip_bad_rows:
        raise DataError(f"{p}, {rows.name(r)}: {why}")
    log.warning(
        "%s: skipped %d rows with a missing or too long id (first: %s: %s)", p, int(bad.sum()), rows.name(r), why
    )
    return ~bad


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
    raise DataError(
        f"{p}: timestamp column {name!r} holds {str(col.iloc[bad])[:40]!r} (data row {bad + 1}), "
        f"which is neither a number nor an ISO date"
    )


@dataclass(frozen=True)
class _IdRules:
    """What a table reader does with bad rows: the longest id accepted, and whether bad rows are skipped."""

    max_id_length: int = DEFAULT_MAX_ID_LENGTH
    skip_bad_rows: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "max_id_length", check_max_id_length(self.max_id_length))
        if not isinstance(self.skip_bad_rows, (bool, np.bool_)):
            raise ConfigError(f"skip_bad_rows must be true or false, got {self.skip_bad_rows!r}")


def _frame_to_interactions(
    df: pd.DataFrame,
    p: Path,
    user_col: str,
    item_col: str,
    rating_col: str | None,
    rating_threshold: float | None,
    timestamp_col: str | None,
    rows: _Rows,
    rules: _IdRules,
) -> Interactions:
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
    keep = _check_ids(users, items, p, rows, rules.max_id_length, rules.skip_bad_rows)
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
    inter = from_pairs(users[keep], items[keep], ts)
    log.info("%s: %d rows read, %d interactions kept", p, n_read, len(inter))
    return _finish(inter, int(keep.sum()), p, what)


def _check_rating_options(rating_col, rating_threshold) -> None:
    if rating_threshold is not None and rating_col is None:
        raise ConfigError(f"rating_threshold={rating_threshold!r} needs rating_col (the column to compare)")
    if rating_threshold is not None and not np.isfinite(float(rating_threshold)):
        raise ConfigError(f"rating_threshold must be a finite number, got {rating_threshold!r}")


def _read_any_table(
    path,
    kind: str | None,
    *,
    user_col: str,
    item_col: str,
    rating_col: str | None,
    rating_threshold: float | None,
    timestamp_col: str | None,
    sep: str | None,
    rules: _IdRules,
) -> Interactions:
    _check_rating_options(rating_col, rating_threshold)
    p = check_file(path)
    parquet = _is_parquet(p)
    if kind == "parquet" and not parquet:
        raise DataError(f"{p} is not a Parquet file (no PAR1 signature)")
    df, rows = _load_parquet(p) if parquet else _load_text(p, kind or "csv", sep, rules.skip_bad_rows)
    return _frame_to_interactions(df, p, user_col, item_col, rating_col, rating_threshold, timestamp_col, rows, rules)


def read_table(
    path,
    *,
    user_col: str = "user",
    item_col: str = "item",
    rating_col: str | None = None,
    rating_threshold: float | None = None,
    timestamp_col: str | None = None,
    sep: str | None = None,
    max_id_length: int = DEFAULT_MAX_ID_LENGTH,
    skip_bad_rows: bool = False,
) -> Interactions:
    """Read a CSV/TSV (plain or gzip) or Parquet table with named user and item columns.

    Parquet is recognised by its signature. For text, ``sep`` defaults to ``,`` for ``.csv``, tab for ``.tsv``
    and otherwise to the separator found on the header line (tab , ; | or whitespace). Ids are kept as
    strings (stripped). With ``rating_col`` and ``rating_threshold``, only rows with rating >= threshold
    stay. With ``timestamp_col`` (numbers or ISO dates), rows are stably sorted by time. Extra columns are
    ignored; duplicate pairs keep their first row.

    Bad rows: a row with more or fewer fields than the header, an empty id, an id that reads as a missing
    value (``NaN``, ``null``, ``NA``... : ``MISSING_MARKERS``) and an id longer than ``max_id_length``
    characters are a DataError naming the line (Parquet: the row), or, with ``skip_bad_rows``, left out
    and counted in a warning.

    Raises
    ------
    DataError
        Missing/empty/unparsable file, a missing column (the message lists the columns), a bad row, no rows left.
    ConfigError
        ``rating_threshold`` without ``rating_col``; ``max_id_length`` not an integer >= 1.
    """
    return _read_any_table(
        path,
        None,
        user_col=user_col,
        item_col=item_col,
        rating_col=rating_col,
        rating_threshold=rating_threshold,
        timestamp_col=timestamp_col,
        sep=sep,
        rules=_IdRules(max_id_length, skip_bad_rows),
    )


def read_csv(path, *, sep: str = ",", **options) -> Interactions:
    """``read_table`` with a comma (or the given) separator."""
    return read_table(path, sep=sep, **options)


def read_tsv(path, *, sep: str = "\t", **options) -> Interactions:
    """``read_table`` with a tab (or the given) separator."""
    return read_table(path, sep=sep, **options)


def read_parquet(
    path,
    *,
    user_col: str = "user",
    item_col: str = "item",
    rating_col: str | None = None,
    rating_threshold: float | None = None,
    timestamp_col: str | None = None,
    max_id_length: int = DEFAULT_MAX_ID_LENGTH,
    skip_bad_rows: bool = False,
) -> Interactions:
    """``read_table`` for a file that must be Parquet."""
    return _read_any_table(
        path,
        "parquet",
        user_col=user_col,
        item_col=item_col,
        rating_col=rating_col,
        rating_threshold=rating_threshold,
        timestamp_col=timestamp_col,
        sep=None,
        rules=_IdRules(max_id_length, skip_bad_rows),
    )


def read_recbole(
    path,
    *,
    rating_threshold: float | None = None,
    max_id_length: int = DEFAULT_MAX_ID_LENGTH,
    skip_bad_rows: bool = False,
) -> Interactions:
    """Read a RecBole atomic ``.inter`` file: tab separated, typed header ``user_id:token\\titem_id:token...``.

    Uses ``user_id`` and ``item_id``; ``timestamp`` (when present) orders the rows; ``rating`` is compared with
    ``rating_threshold`` when one is given. Other fields are ignored. Bad rows as in ``read_table``.
    """
    rules = _IdRules(max_id_length, skip_bad_rows)
    p = check_file(path)
    df, rows = _load_text(p, "recbole", "\t", rules.skip_bad_rows)
    names = [str(c).strip().lstrip("\ufeff").split(":", 1)[0].strip() for c in df.columns]
    for field in ("user_id", "item_id"):
        if field not in names:
            raise DataError(
                f"{p}: a RecBole .inter header needs a {field} field; the header is "
                f"{', '.join(map(repr, map(str, df.columns)))}"
            )
    if rating_threshold is not None and "rating" not in names:
        raise DataError(f"{p}: rating_threshold given but the header has no rating field")
    df.columns = names
    return _frame_to_interactions(
        df,
        p,
        "user_id",
        "item_id",
        "rating" if rating_threshold is not None else None,
        rating_threshold,
        "timestamp" if "timestamp" in names else None,
        rows,
        rules,
    )


FORMATS = {
    "lightgcn": read_lightgcn,
    "csv": read_csv,
    "tsv": read_tsv,
    "parquet": read_parquet,
    "recbole": read_recbole,
}

_SUFFIXES = (
    (".inter", "recbole"),
    (".parquet", "parquet"),
    (".pq", "parquet"),
    (".csv", "csv"),
    (".csv.gz", "csv"),
    (".tsv", "tsv"),
    (".tsv.gz", "tsv"),
    (".txt", "lightgcn"),
    (".txt.gz", "lightgcn"),
)


def detect_format(path) -> str:
    """Format name from the file name: .inter, .parquet, .csv, .tsv, .txt (the last three also with .gz)."""
    name = Path(path).name.lower()
    for suffix, fmt in _SUFFIXES:
        if name.endswith(suffix):
            return fmt
    raise DataError(f"cannot tell the format of {path} from its name; name the format ({', '.join(FORMATS)})")


def read_interactions(path, fmt: str = "auto", **options) -> Interactions:
    """Read ``path`` with the reader of ``fmt`` (``"auto"``: from the file name) and its ``options``.

    Parameters
    ----------
    path : str or path
        An interaction file, plain or gzip: ``.csv``, ``.tsv``, ``.parquet``, ``.inter`` (RecBole), ``.txt``
        (LightGCN's ``user item item ...`` lines).
    fmt : str
        auto, lightgcn, csv, tsv, parquet or recbole.
    **options
        The reader's keyword options: for tables ``user_col`` (default "user"), ``item_col`` ("item"),
        ``rating_col``, ``rating_threshold``, ``timestamp_col``, ``sep``, ``max_id_length``, ``skip_bad_rows``
        (see ``read_table``).

    Returns
    -------
    Interactions
        Deduplicated pairs in file order (time order with ``timestamp_col``), ids kept as strings.

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
        accepted |= {n for n, prm in inspect.signature(read_table).parameters.items() if prm.kind is prm.KEYWORD_ONLY}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise ConfigError(
            f"option {unknown[0]!r} does not apply to the {fmt} format; it takes "
            f"{', '.join(sorted(accepted)) or 'no options'}"
        )
    return reader(path, **options)
