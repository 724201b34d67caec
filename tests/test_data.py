import numpy as np
import pytest

from lightgode.data.datasets import load_dataset
from lightgode.data.filters import filter_kcore
from lightgode.data.interactions import from_pairs
from lightgode.data.readers import read_interactions, read_lightgcn
from lightgode.data.split import load_split, save_split, split_given, split_leave_one_out, split_random, split_temporal
from lightgode.errors import ConfigError, DataError


def test_lightgcn_reader_handles_crlf_blank_lines_and_duplicates(tmp_path):
    f = tmp_path / "x.txt"
    f.write_bytes(b"1 5 6 5\r\n\r\n2 6\r\n3\r\n")
    inter = read_lightgcn(f)
    assert len(inter) == 3 and inter.n_users == 2 and inter.n_items == 2


def test_csv_parquet_and_recbole_readers(tmp_path):
    csv = tmp_path / "x.csv"
    csv.write_text("u,i,r,ts,extra\na,x,5,3,z\na,y,1,1,z\nb,x,4,2,z\na,x,5,3,z\n")
    inter = read_interactions(csv, user_col="u", item_col="i", rating_col="r", rating_threshold=4,
                              timestamp_col="ts")
    assert len(inter) == 2 and list(inter.user_ids[inter.users]) == ["b", "a"]  # sorted by time
    import pandas as pd
    pq = tmp_path / "x.parquet"
    pd.DataFrame({"user": [1, 2], "item": [3, 3]}).to_parquet(pq)
    assert len(read_interactions(pq)) == 2
    rb = tmp_path / "x.inter"
    rb.write_text("user_id:token\titem_id:token\ttimestamp:float\nu1\ti1\t2\nu2\ti1\t1\n")
    assert list(read_interactions(rb).user_ids) == ["u2", "u1"]


@pytest.mark.parametrize("content,name", [(b"", "e.txt"), (b"1 a b\n", "bad.txt"), (b"\xff\xfe\x00", "bin.txt"),
                                          (b"x,y\n1,2\n", "cols.csv")])
def test_bad_files_raise_data_error(tmp_path, content, name):
    f = tmp_path / name
    f.write_bytes(content)
    with pytest.raises(DataError):
        read_interactions(f)


def test_missing_file_and_unknown_format(tmp_path):
    with pytest.raises(DataError):
        read_interactions(tmp_path / "nope.txt")
    f = tmp_path / "a.txt"
    f.write_text("1 2\n")
    with pytest.raises(ConfigError):
        read_interactions(f, fmt="xml")


def test_kcore_reaches_fixpoint():
    rng = np.random.default_rng(0)
    inter = from_pairs(rng.integers(0, 80, 600), rng.integers(0, 60, 600))
    out = filter_kcore(inter, 5, 5)
    assert np.bincount(out.users).min() >= 5 and np.bincount(out.items).min() >= 5
    assert len(filter_kcore(out, 5, 5)) == len(out)
    # hand example: user c has 1 item; removing it drops item z below 2
    hand = from_pairs(["a", "a", "b", "b", "c"], ["x", "y", "x", "y", "z"])
    assert set(filter_kcore(hand, 2, 2).item_ids) == {"x", "y"}


def _pairs(part):
    return set(zip(part.users.tolist(), part.items.tolist()))


def test_random_split_disjoint_complete_deterministic():
    rng = np.random.default_rng(1)
    inter = filter_kcore(from_pairs(rng.integers(0, 50, 1500), rng.integers(0, 40, 1500)), 5, 5)
    a, b, c = split_random(inter, seed=1), split_random(inter, seed=1), split_random(inter, seed=2)
    tr, va, te = _pairs(a.train), _pairs(a.valid), _pairs(a.test)
    assert not (tr & va) and not (tr & te) and not (va & te)
    assert tr | va | te == _pairs(inter)
    assert _pairs(b.test) == te and _pairs(c.test) != te


def test_beauty_split_counts_match_the_reference(shared_datasets):
    inter = filter_kcore(load_dataset("amazon-beauty", data_dir=shared_datasets), 5, 5)
    s = split_random(inter, seed=2020).summary()
    assert (s["train"], s["valid"], s["test"]) == (148766, 24868, 24868)


def test_temporal_and_loo_put_latest_rows_in_test():
    inter = from_pairs(["a"] * 10 + ["b"] * 3, [str(i) for i in range(10)] + ["0", "1", "2"])
    t = split_temporal(inter)
    assert list(t.test.item_ids[t.test.items[t.test.users == 0]]) == ["9"]
    loo = split_leave_one_out(inter)
    assert len(loo.test) == 2 and len(loo.valid) == 2


def test_given_split_keeps_gowalla_test(shared_datasets):
    train, test = load_dataset("gowalla", given_split=True, data_dir=shared_datasets)
    assert (len(train), len(test)) == (810128, 217242)
    s = split_given(train, test, 0.1, seed=0)
    assert len(s.test) == 217242 and len(s.train) + len(s.valid) == 810128


def test_split_round_trip(tmp_path):
    inter = from_pairs(["a", "a", "a", "b", "b", "b"], ["x", "y", "z", "x", "y", "w"])
    s = split_random(inter, (0.34, 0.33, 0.33), seed=0)
    save_split(s, tmp_path)
    t = load_split(tmp_path)
    for name in ("train", "valid", "test"):
        assert _pairs(getattr(s, name)) == _pairs(getattr(t, name))
    assert list(t.train.item_ids) == list(s.train.item_ids)


def test_bad_ratios():
    inter = from_pairs(["a"], ["x"])
    with pytest.raises(ConfigError):
        split_random(inter, (0.5, 0.6, 0.1))
