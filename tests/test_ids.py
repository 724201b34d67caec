"""Ids at the input boundary: a maximum length, storage that grows with the total id length, ragged rows,
missing-value ids, and error messages that print ids as plain strings."""

import sys

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lightgode.cli import main
from lightgode.data.interactions import Interactions, as_ids, from_pairs
from lightgode.data.readers import (
    DEFAULT_MAX_ID_LENGTH,
    MISSING_MARKERS,
    read_interactions,
    read_lightgcn,
    read_recbole,
    read_table,
)
from lightgode.data.split import load_split, save_split, split_random
from lightgode.errors import ConfigError, DataError, UnknownIdError

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def write(tmp_path, name, content):
    f = tmp_path / name
    f.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return f


def one_line(exc_type, fn, *args, **kw) -> str:
    with pytest.raises(exc_type) as e:
        fn(*args, **kw)
    msg = str(e.value)
    assert msg and "\n" not in msg
    assert "np.str_" not in msg and "np.int" not in msg
    return msg


def pairs(inter):
    return list(zip(inter.user_ids[inter.users].tolist(), inter.item_ids[inter.items].tolist()))


def long_id_csv(tmp_path, length: int, rows: int = 100, at: int = 50):
    lines = ["user,item"] + [("x" * length if r == at else f"u{r}") + f",i{r % 7}" for r in range(rows)]
    return write(tmp_path, "long.csv", "\n".join(lines) + "\n")


# ---------------------------------------------------------------- maximum id length


def test_long_id_is_refused_naming_its_line_and_length(tmp_path):
    f = long_id_csv(tmp_path, 1_000_000)
    msg = one_line(DataError, read_interactions, f)
    assert f"{f}, line 52:" in msg and "1000000 characters" in msg and f"max_id_length {DEFAULT_MAX_ID_LENGTH}" in msg


def test_long_id_on_the_command_line_is_exit_2_one_line(tmp_path, capsys):
    f = long_id_csv(tmp_path, 300_000)
    assert main(["train", "--data", str(f), "--kcore", "0", "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "line 52" in err and "Traceback" not in err
    assert main(["train", "--data", str(f), "--max-id-length", "0"]) == 2


def test_long_ids_accepted_when_allowed_cost_their_own_length(tmp_path):
    n = 200_000
    f = long_id_csv(tmp_path, n)
    inter = read_interactions(f, max_id_length=n)
    assert inter.n_users == 100 and max(map(len, inter.user_ids.tolist())) == n
    # objects: the array holds one pointer per id; each id holds its own characters (a fixed-width '<U200000'
    # array would hold 100 x 800 kB)
    assert inter.user_ids.dtype == object and inter.user_ids.nbytes == 8 * inter.n_users
    assert all(type(x) is str for x in inter.user_ids.tolist())
    total = sum(sys.getsizeof(x) for x in inter.user_ids.tolist())
    assert total < n + 100 * 100
    one_line(DataError, read_interactions, f, max_id_length=n - 1)


def test_item_and_other_formats_respect_the_limit(tmp_path):
    f = write(tmp_path, "x.csv", "user,item\n1,2\n3," + "y" * 40 + "\n")
    assert "line 3: item id of 40 characters" in one_line(DataError, read_table, f, max_id_length=39)
    assert len(read_table(f, max_id_length=40)) == 2
    g = write(tmp_path, "x.inter", "user_id:token\titem_id:token\nabcdef\t1\n")
    assert "line 2: user id of 6" in one_line(DataError, read_recbole, g, max_id_length=5)
    h = tmp_path / "x.parquet"
    pd.DataFrame({"user": ["a", "b" * 9], "item": ["1", "2"]}).to_parquet(h)
    assert "row 2: user id of 9" in one_line(DataError, read_interactions, h, max_id_length=8)
    assert len(read_interactions(h, max_id_length=8, skip_bad_rows=True)) == 1
    t = write(tmp_path, "x.txt", "1 2 3\n123456 7\n")
    assert "line 2" in one_line(DataError, read_lightgcn, t, max_id_length=5)
    assert len(read_lightgcn(t, max_id_length=6)) == 3


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "9"])
def test_max_id_length_must_be_a_positive_integer(tmp_path, bad):
    f = write(tmp_path, "x.csv", "user,item\n1,2\n")
    one_line(ConfigError, read_table, f, max_id_length=bad)


@FAST
@given(
    ids=st.lists(st.text(alphabet="abcXYZ019_-", min_size=1, max_size=30), min_size=1, max_size=20),
    limit=st.integers(1, 30),
)
def test_limit_refuses_exactly_the_ids_longer_than_it(tmp_path_factory, ids, limit):
    f = write(tmp_path_factory.mktemp("h"), "x.csv", "user,item\n" + "".join(f"{u},i\n" for u in ids))
    too_long = [k for k, u in enumerate(ids) if len(u) > limit]
    if too_long:
        msg = one_line(DataError, read_table, f, max_id_length=limit)
        assert f"line {too_long[0] + 2}: user id of {len(ids[too_long[0]])} characters" in msg
        kept = read_table(f, max_id_length=limit, skip_bad_rows=True) if len(too_long) < len(ids) else None
        if kept is not None:
            assert set(kept.user_ids.tolist()) == {u for u in ids if len(u) <= limit}
    else:
        assert set(read_table(f, max_id_length=limit).user_ids.tolist()) == set(ids)


# ---------------------------------------------------------------- storage


def test_from_pairs_and_as_ids_make_objects_in_first_seen_order():
    inter = from_pairs(np.array(["b", "a" * 1000, "b"]), [1, 2, 3])
    assert inter.user_ids.dtype == object and inter.user_ids.tolist() == ["b", "a" * 1000]
    assert inter.item_ids.tolist() == ["1", "2", "3"] and all(type(x) is str for x in inter.item_ids.tolist())
    assert as_ids("one").tolist() == ["one"] and as_ids(np.str_("x"))[0].__class__ is str


def test_split_round_trip_keeps_long_ids_as_objects(tmp_path):
    users = [f"u{k}" for k in range(30)] + ["z" * 5000]
    inter = from_pairs([u for u in users for _ in range(4)], [f"i{k}" for k in range(4 * len(users))])
    split = split_random(inter, seed=0)
    save_split(split, tmp_path / "s")
    back = load_split(tmp_path / "s")
    assert back.user_ids.dtype == object and back.user_ids.tolist() == split.user_ids.tolist()
    assert np.array_equal(back.train.users, split.train.users)


# ---------------------------------------------------------------- ragged rows


@pytest.mark.parametrize(
    "text,line,fields",
    [
        ("user,item\n1,2,3,4\n5,6\n", 2, 4),  # the first data row: once read silently as the pair (3, 4)
        ("user,item\n5,6\n1,2,3,4\n", 3, 4),
        ("user,item\n5,6\n\n7\n", 4, 1),  # too few fields; the blank line still counts
        ("user,item\r\n5,6\r\n7,8,\r\n", 3, 3),
        ('user,item\n5,"a\nb"\n1,2,3\n', 4, 3),  # a quoted line break: the physical line is named
        ("user item\n5 6\n1 2 3\n", 3, 3),  # whitespace separated (sniffed from a non-.csv name)
    ],
)
def test_ragged_rows_name_their_line(tmp_path, text, line, fields):
    f = write(tmp_path, "x.csv" if "," in text else "x.dat", text)
    msg = one_line(DataError, read_table, f)
    assert f"line {line}: {fields} fields where the header has 2" in msg


@FAST
@given(
    rows=st.lists(
        st.lists(st.sampled_from(["1", "2", "ab", '"q,r"', '"s\nt"']), min_size=1, max_size=3), min_size=1, max_size=12
    ),
    blank=st.sets(st.integers(0, 12), max_size=3),
)
def test_ragged_rows_found_on_any_table(tmp_path_factory, rows, blank):
    lines, line_of, n = ["user,item"], [], 1
    for k, row in enumerate(rows):
        if k in blank:
            lines.append("")
            n += 1
        text = ",".join(row)
        lines.append(text)
        line_of.append(n + 1)
        n += 1 + text.count("\n")
    f = write(tmp_path_factory.mktemp("r"), "x.csv", "\n".join(lines) + "\n")
    ragged = [k for k, row in enumerate(rows) if len(row) != 2]
    if ragged:
        k = ragged[0]
        assert f"line {line_of[k]}: {len(rows[k])} fields" in one_line(DataError, read_table, f)
    else:
        assert len(read_table(f)) == len({tuple(r) for r in rows})


def test_ragged_rows_skipped_and_counted_when_asked(tmp_path, caplog):
    f = write(tmp_path, "x.csv", 'user,item\n1,2,3,4\na,"x\ny"\n5\n7,8\n')
    inter = read_table(f, skip_bad_rows=True)
    assert pairs(inter) == [("a", "x\ny"), ("7", "8")]
    assert "skipped 2 rows" in caplog.text and "line 2" in caplog.text


def test_recbole_ragged_row(tmp_path):
    f = write(tmp_path, "x.inter", "user_id:token\titem_id:token\n1\t2\n3\n")
    assert "line 3: 1 fields" in one_line(DataError, read_recbole, f)


# ---------------------------------------------------------------- missing-value ids


@pytest.mark.parametrize("value", ["NaN", "nan", "null", "NULL", "None", "N/A", "NA", "", "  "])
def test_missing_value_ids_name_their_line(tmp_path, value):
    f = write(tmp_path, "x.csv", f"user,item\n1,2\n3,{value}\n")
    msg = one_line(DataError, read_table, f)
    assert "line 3:" in msg and "item id" in msg
    assert ("empty or null" in msg) if not value.strip() else (f"'{value}' reads as a missing value" in msg)
    assert pairs(read_table(f, skip_bad_rows=True)) == [("1", "2")]


def test_missing_markers_are_pandas_defaults():
    assert {"NaN", "nan", "NULL", "null", "", "N/A", "<NA>"} <= MISSING_MARKERS and "0" not in MISSING_MARKERS


def test_whitespace_only_lines_are_blank(tmp_path):
    assert pairs(read_table(write(tmp_path, "x.csv", "user,item\n1,2\n   \n3,4\n"))) == [("1", "2"), ("3", "4")]


# ---------------------------------------------------------------- messages print ids as plain strings


def test_unknown_id_messages_print_plain_strings(tmp_path):
    inter = Interactions(np.array(["22363"]), as_ids(["7"]), np.zeros(1, np.int32), np.zeros(1, np.int32))
    assert one_line(UnknownIdError, inter.user_index, [np.str_("404")]) == "unknown user id '404'"
    split = split_random(from_pairs([u for u in "abcd" for _ in range(5)], list(range(20))), seed=0)
    save_split(split, tmp_path / "s")
    (tmp_path / "s" / "train.csv").write_text("user,item\na,0\n22363,1\n")
    msg = one_line(DataError, load_split, tmp_path / "s")
    assert "data row 2: user '22363' is not in users.txt" in msg


def test_propagate_messages_print_plain_strings(tmp_path):
    from lightgode.runs.propagate import align, read_vectors

    vocab = np.array(["a", "22363"])
    msg = one_line(DataError, align, vocab, np.array(["a"]), 1, "user")
    assert "(e.g. '22363')" in msg
    np.save(tmp_path / "e.npy", np.ones((2, 2), np.float32))
    (tmp_path / "ids.txt").write_text("7\n7\n")
    assert "id '7' appears twice" in one_line(
        DataError, read_vectors, str(tmp_path / "e.npy"), str(tmp_path / "ids.txt")
    )


def test_a_long_unknown_id_is_shortened_in_the_message():
    inter = from_pairs(["a"], ["x"])
    msg = one_line(UnknownIdError, inter.user_index, ["q" * 10_000])
    assert msg == f"unknown user id {'q' * 60!r}... (10000 characters)"
