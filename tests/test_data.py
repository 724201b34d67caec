"""Readers: every format on small files with known answers, odd-but-usable input, and each kind of bad input."""

import gzip
import logging

import numpy as np
import pandas as pd
import pytest

from lightgode.data.interactions import from_pairs
from lightgode.data.readers import FORMATS, detect_format, read_interactions, read_lightgcn, read_recbole, read_table
from lightgode.errors import ConfigError, DataError


def pairs(inter):
    """Rows as (raw user, raw item) in row order."""
    return list(zip(inter.user_ids[inter.users].tolist(), inter.item_ids[inter.items].tolist()))


def write(tmp_path, name, content):
    f = tmp_path / name
    f.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return f


def raises_one_line(exc_type, fn, *args, match=None, **kw):
    with pytest.raises(exc_type) as e:
        fn(*args, **kw)
    msg = str(e.value)
    assert "\n" not in msg and msg
    if match is not None:
        for m in np.atleast_1d(match):
            assert m in msg, (m, msg)
    return msg


# ---------------------------------------------------------------- LightGCN


def test_lightgcn_crlf_blank_lines_duplicates_and_user_only_lines(tmp_path, caplog):
    f = write(tmp_path, "x.txt", b"7 5 6 5\r\n\r\n   \n3\r\n2 6 9\n7 1\n")
    with caplog.at_level(logging.INFO, logger="lightgode.data.readers"):
        inter = read_lightgcn(f)
    assert pairs(inter) == [("7", "5"), ("7", "6"), ("2", "6"), ("2", "9"), ("7", "1")]
    assert list(inter.user_ids) == ["7", "2"] and list(inter.item_ids) == ["5", "6", "9", "1"]
    assert inter.users.dtype == np.int32 and inter.items.dtype == np.int32 and inter.timestamps is None
    assert "1 duplicate" in caplog.text and "1 user lines without items" in caplog.text


def test_lightgcn_old_mac_line_ends_tabs_and_no_final_newline(tmp_path):
    f = write(tmp_path, "x.txt", b"1\t2  3\r4 5\r")
    assert pairs(read_lightgcn(f)) == [("1", "2"), ("1", "3"), ("4", "5")]
    f = write(tmp_path, "y.txt", b"\xef\xbb\xbf1 007")  # BOM, leading zeros
    assert pairs(read_lightgcn(f)) == [("1", "7")]


def test_lightgcn_reads_gzip_by_name_and_by_content(tmp_path):
    raw = b"0 1 2\n1 2\n"
    a = write(tmp_path, "x.txt.gz", gzip.compress(raw))
    b = write(tmp_path, "x.txt", gzip.compress(raw))
    assert pairs(read_lightgcn(a)) == pairs(read_lightgcn(b)) == [("0", "1"), ("0", "2"), ("1", "2")]
    assert detect_format(a) == "lightgcn"


def test_lightgcn_matches_from_pairs_on_random_lists(tmp_path):
    rng = np.random.default_rng(3)
    lines, us, its = [], [], []
    for _ in range(300):
        u = int(rng.integers(0, 60))
        items = (
            rng.integers(0, 10**12, int(rng.integers(0, 8)))
            if rng.random() < 0.1
            else rng.integers(0, 40, int(rng.integers(0, 8)))
        )
        lines.append(" ".join(map(str, [u, *items.tolist()])))
        us += [str(u)] * len(items)
        its += [str(x) for x in items.tolist()]
    f = write(tmp_path, "r.txt", "\n".join(lines) + "\n")
    got, want = read_lightgcn(f), from_pairs(us, its)
    assert list(got.user_ids) == list(want.user_ids) and list(got.item_ids) == list(want.item_ids)
    assert np.array_equal(got.users, want.users) and np.array_equal(got.items, want.items)


@pytest.mark.parametrize(
    "content,line,token",
    [
        (b"1 2\n3 4\n5 x7 8\n", 3, "x7"),
        (b"1 2\n-3 4\n", 2, "-3"),
        (b"1 2.5\n", 1, "2.5"),
        (b"1 2\r\n\r\n3 \xff\xfe\n", 3, "\\xff\\xfe"),
        (b"1 1234567890123456789\n", 1, "1234567890123456789"),
    ],
)
def test_lightgcn_bad_token_names_file_and_line(tmp_path, content, line, token):
    f = write(tmp_path, "bad.txt", content)
    raises_one_line(DataError, read_lightgcn, f, match=[str(f), f"line {line}", token])


@pytest.mark.parametrize(
    "content",
    [b"", b"\n\n  \r\n", b"1\n2\n", b"\x00\x01\x02binary", gzip.compress(b"1 2\n")[:-6], b"\x1f\x8bnot really gzip"],
)
def test_lightgcn_unusable_files(tmp_path, content):
    f = write(tmp_path, "u.txt", content)
    raises_one_line(DataError, read_lightgcn, f, match=str(f))


def test_missing_file_and_directory(tmp_path):
    for reader in (read_lightgcn, read_table, read_recbole, read_interactions):
        raises_one_line(DataError, reader, tmp_path / "nope.txt", match=["not found", "nope.txt"])
        raises_one_line(DataError, reader, tmp_path, match=["not a regular file", str(tmp_path)])


# ---------------------------------------------------------------- tables


def test_csv_extra_columns_duplicates_threshold_and_time_order(tmp_path, caplog):
    f = write(
        tmp_path, "x.csv", "u,i,r,ts,extra\r\na,x,5,3,z\r\na,y,1,1,z\r\nb,x,4,2,z\r\n\r\na,x,5,9,z\r\nc,x,oops,0,z\r\n"
    )
    with caplog.at_level(logging.INFO, logger="lightgode.data.readers"):
        inter = read_interactions(f, user_col="u", item_col="i", rating_col="r", rating_threshold=4, timestamp_col="ts")
    assert pairs(inter) == [("b", "x"), ("a", "x")]  # sorted by time; the later (a, x) is a duplicate
    assert inter.timestamps.tolist() == [2.0, 3.0]
    assert "1 duplicate" in caplog.text and "without a numeric 'r'" in caplog.text
    every = read_table(f, user_col="u", item_col="i")  # no rating filter, file order
    assert pairs(every) == [("a", "x"), ("a", "y"), ("b", "x"), ("c", "x")]


def test_csv_ids_stay_strings_quoted_stripped_and_missing_refused(tmp_path):
    f = write(tmp_path, "x.csv", 'user,item\n"a,1", 007 \nNA,null\n,x\n b ,""\n c,d\n')
    raises_one_line(DataError, read_table, f, match=["line 3", "user id 'NA' reads as a missing value"])
    assert pairs(read_table(f, skip_bad_rows=True)) == [("a,1", "007"), ("c", "d")]


@pytest.mark.parametrize(
    "name,text",
    [
        ("x.tsv", "user\titem\tr\n1\t2\t3\n4\t5\t6\n"),
        ("x.txt", "user\titem\n1\t2\n4\t5\n"),
        ("x.dat", "user;item\n1;2\n4;5\n"),
        ("x.dat", "user item\n1   2\n4 5\n"),
        ("x.dat", "user|item\n1|2\n4|5\n"),
    ],
)
def test_table_separator_from_suffix_or_header(tmp_path, name, text):
    assert pairs(read_table(write(tmp_path, name, text))) == [("1", "2"), ("4", "5")]


def test_csv_gzip_and_explicit_sep(tmp_path):
    f = write(tmp_path, "x.csv.gz", gzip.compress(b"user,item\n1,2\n"))
    assert detect_format(f) == "csv" and pairs(read_interactions(f)) == [("1", "2")]
    g = write(tmp_path, "y.csv", "user:item\n1:2\n")
    assert pairs(read_table(g, sep=":")) == [("1", "2")]


def test_iso_dates_as_timestamps(tmp_path):
    f = write(tmp_path, "x.csv", "user,item,t\na,x,2020-01-02\nb,y,2020-01-01T12:00:00\n")
    inter = read_table(f, timestamp_col="t")
    assert pairs(inter) == [("b", "y"), ("a", "x")] and inter.timestamps[1] - inter.timestamps[0] == 43200


def test_parquet_types(tmp_path):
    f = tmp_path / "x.parquet"
    pd.DataFrame(
        {
            "user": [1.0, 2.0, None, 1.0],
            "item": [10, 10, 11, 12],
            "r": [5, 1, 5, 5],
            "t": pd.to_datetime(["2021-01-03", "2021-01-01", "2021-01-02", "2021-01-04"]),
        }
    ).to_parquet(f)
    raises_one_line(DataError, read_interactions, f, match=["x.parquet, row 3", "empty or null user id"])
    inter = read_interactions(f, rating_col="r", rating_threshold=2, timestamp_col="t", skip_bad_rows=True)
    assert pairs(inter) == [("1", "10"), ("1", "12")]
    g = write(tmp_path, "y.bin", f.read_bytes())  # recognised by content
    assert len(read_table(g, skip_bad_rows=True)) == 3
    raises_one_line(
        DataError, read_interactions, write(tmp_path, "z.parquet", "user,item\n1,2\n"), match=["z.parquet", "Parquet"]
    )
    raises_one_line(DataError, read_interactions, write(tmp_path, "w.parquet", b"PAR1garbagePAR1"), match="w.parquet")


def test_missing_column_lists_the_columns(tmp_path):
    f = write(tmp_path, "x.csv", "uid,iid,extra\n1,2,3\n")
    raises_one_line(DataError, read_table, f, match=["'user'", "'uid'", "'iid'", "'extra'", str(f)])
    raises_one_line(DataError, read_table, f, user_col="uid", item_col="iid", timestamp_col="time", match="'time'")


@pytest.mark.parametrize(
    "content,match",
    [
        (b"user,item\n", "no interactions"),
        (b"user,item\n,\n", "line 2: empty or null user id"),
        (b"user,item,t\n1,2,yesterday\n", "yesterday"),
        (b"user,item\n1,2\n3,4,5,6\n", "line 3: 4 fields where the header has 2"),
        (b"user,item\n\xff\xfe,1\n", "UTF-8"),
        (b"user, user,item\n1,2,3\n", "twice"),
    ],
)
def test_bad_tables(tmp_path, content, match):
    f = write(tmp_path, "x.csv", content)
    raises_one_line(DataError, read_table, f, timestamp_col="t" if b",t\n" in content else None, match=[match, str(f)])


def test_rating_threshold_without_column_is_a_config_error(tmp_path):
    f = write(tmp_path, "x.csv", "user,item\n1,2\n")
    raises_one_line(ConfigError, read_table, f, rating_threshold=3, match="rating_col")
    raises_one_line(DataError, read_table, f, rating_col="r", rating_threshold=3, match="'r'")


def test_recbole_typed_header(tmp_path):
    f = write(
        tmp_path,
        "x.inter",
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\ttitle:token_seq\n"
        'u1\ti1\t5\t20\t"a b\nu2\ti1\t2\t10\tc\nu2\ti2\t4\t30\td"\n',
    )
    assert pairs(read_interactions(f)) == [("u2", "i1"), ("u1", "i1"), ("u2", "i2")]
    assert pairs(read_recbole(f, rating_threshold=4)) == [("u1", "i1"), ("u2", "i2")]
    g = write(tmp_path, "y.inter", "user_id:token\titem_id:token\nu1\ti1\nu1\ti1\n")
    assert pairs(read_interactions(g)) == [("u1", "i1")]
    raises_one_line(DataError, read_recbole, g, rating_threshold=4, match="rating")
    h = write(tmp_path, "z.inter", "user:token\titem_id:token\nu1\ti1\n")
    raises_one_line(DataError, read_recbole, h, match=["user_id", "z.inter"])


# ---------------------------------------------------------------- dispatch


def test_auto_format_by_suffix(tmp_path):
    assert {detect_format(n) for n in ("a.inter", "a.parquet", "a.csv", "a.tsv", "a.txt", "a.TXT.gz")} == set(FORMATS)
    assert [detect_format(n) for n in ("a.inter", "a.parquet", "a.csv", "a.tsv", "a.txt", "a.txt.gz")] == [
        "recbole",
        "parquet",
        "csv",
        "tsv",
        "lightgcn",
        "lightgcn",
    ]
    f = write(tmp_path, "a.tsv", "user\titem\n1\t2\n")
    assert pairs(read_interactions(f)) == pairs(read_interactions(f, fmt="tsv")) == [("1", "2")]
    raises_one_line(DataError, read_interactions, write(tmp_path, "a.xyz", "1 2\n"), match=["a.xyz", "lightgcn"])
    assert pairs(read_interactions(tmp_path / "a.xyz", fmt="lightgcn")) == [("1", "2")]


def test_unknown_format_and_inapplicable_options(tmp_path):
    f = write(tmp_path, "a.txt", "1 2\n")
    msg = raises_one_line(ConfigError, read_interactions, f, fmt="xml", match="'xml'")
    assert all(name in msg for name in FORMATS)
    raises_one_line(ConfigError, read_interactions, f, user_col="u", match="user_col")
    raises_one_line(
        ConfigError, read_interactions, write(tmp_path, "a.inter", "user_id\titem_id\n1\t2\n"), sep=",", match="sep"
    )


# ---------------------------------------------------------------- real files and files in their formats


def lines_as_pairs(path):
    """(user, item) pairs of a ``user item item ...`` file, parsed by hand, in file order."""
    return [(row[0], x) for row in (line.split() for line in path.read_text().splitlines()) for x in row[1:]]


def test_beauty_reads_right(beauty_data_dir):
    """Counts and row order of Amazon-Beauty (the bundled copy as a text file; reading speed is a benchmark
    matter, not asserted here). The real Gowalla files are checked in test_data_datasets.test_real_files."""
    beauty = beauty_data_dir / "amazon-beauty" / "Beauty.txt"
    inter = read_lightgcn(beauty)
    assert (inter.n_users, inter.n_items, len(inter)) == (22363, 12101, 198502)
    assert pairs(inter) == lines_as_pairs(beauty)


def test_lightgcn_format_pair_reads_right(gowalla_like):
    """A train/test pair in the format of LightGCN's Gowalla files (0-based ids, synthetic)."""
    for name in ("train.txt", "test.txt"):
        f = gowalla_like / "gowalla" / name
        assert pairs(read_lightgcn(f)) == lines_as_pairs(f)
