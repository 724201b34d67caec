"""Fuzz: readers given arbitrary bytes either succeed or raise DataError, never anything else."""

import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lightgode.data.readers import read_interactions, read_lightgcn, read_recbole, read_table
from lightgode.errors import DataError

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Bytes near the formats (digits, separators, line ends, quotes, letters, a few odd bytes) reach deeper code
# than uniform bytes, which fail at the first check.
near_text = st.lists(
    st.sampled_from(
        [
            b"0",
            b"1",
            b"7",
            b"42",
            b" ",
            b"\t",
            b"\n",
            b"\r\n",
            b"\r",
            b",",
            b";",
            b'"',
            b"user",
            b"item",
            b"user_id:token",
            b"item_id:token",
            b"x",
            b"-",
            b".",
            b"\xff",
            b"\x00",
            b"\x1f\x8b",
            b"PAR1",
            b"\xef\xbb\xbf",
        ]
    ),
    max_size=60,
).map(b"".join)
any_bytes = st.one_of(st.binary(max_size=400), near_text)


def _check(reader, name: str, content: bytes, **kw) -> None:
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / name
        f.write_bytes(content)
        try:
            inter = reader(f, **kw)
        except DataError as exc:
            assert str(exc) and "\n" not in str(exc)
            return
        assert len(inter) > 0
        assert inter.users.dtype == np.int32 and inter.items.dtype == np.int32
        assert inter.users.max() < inter.n_users and inter.items.max() < inter.n_items
        key = inter.users.astype(np.int64) * inter.n_items + inter.items
        assert len(np.unique(key)) == len(key)


@FUZZ
@given(any_bytes)
def test_fuzz_read_lightgcn(content):
    _check(read_lightgcn, "f.txt", content)


@FUZZ
@given(any_bytes, st.sampled_from(["f.csv", "f.tsv", "f.dat"]))
def test_fuzz_read_table(content, name):
    _check(read_table, name, content)


@FUZZ
@given(any_bytes)
def test_fuzz_read_table_with_rating_and_time(content):
    _check(read_table, "f.csv", b"user,item,r,t\n" + content, rating_col="r", rating_threshold=1, timestamp_col="t")


@FUZZ
@given(any_bytes)
def test_fuzz_read_recbole_and_parquet(content):
    _check(read_recbole, "f.inter", b"user_id:token\titem_id:token\ttimestamp:float\n" + content)
    _check(read_interactions, "f.parquet", content)
