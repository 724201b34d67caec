"""k-core filtering, the four split protocols (with RecBole's exact counts) and split persistence."""

import numpy as np
import pytest

from lightgode.data.datasets import load_dataset
from lightgode.data.filters import filter_kcore
from lightgode.data.interactions import Interactions, from_pairs
from lightgode.data.split import (
    SPLITS,
    Split,
    load_split,
    ratio_counts,
    save_split,
    split_given,
    split_leave_one_out,
    split_random,
    split_temporal,
)
from lightgode.errors import ConfigError, DataError


def pair_set(part):
    return set(zip(part.users.tolist(), part.items.tolist()))


def random_inter(seed=1, n=1500, n_users=50, n_items=40):
    rng = np.random.default_rng(seed)
    return from_pairs(rng.integers(0, n_users, n), rng.integers(0, n_items, n))


def recbole_counts(n, ratios):
    """RecBole's ``_calcu_split_ids``, transcribed."""
    cnt = [int(ratios[i] * n) for i in range(len(ratios))]
    cnt[0] = n - sum(cnt[1:])
    for i in range(1, len(ratios)):
        if cnt[0] <= 1:
            break
        if 0 < ratios[-i] * n < 1:
            cnt[-i] += 1
            cnt[0] -= 1
    return cnt


# ---------------------------------------------------------------- k-core


def test_kcore_reaches_the_fixpoint():
    inter = random_inter(0, 600, 80, 60)
    out = filter_kcore(inter, 5, 5)
    assert np.bincount(out.users).min() >= 5 and np.bincount(out.items).min() >= 5
    assert out.n_users == len(np.unique(out.users)) and out.n_items == len(np.unique(out.items))
    assert len(filter_kcore(out, 5, 5)) == len(out)
    kept = {(out.user_ids[u], out.item_ids[i]) for u, i in zip(out.users, out.items)}
    rows = [(inter.user_ids[u], inter.item_ids[i]) for u, i in zip(inter.users, inter.items)]
    assert [r for r in rows if r in kept] == [(out.user_ids[u], out.item_ids[i]) for u, i in zip(out.users, out.items)]


def test_kcore_hand_example_cascades():
    # u3 has 1 item (z) -> removed; then z has 0 and w (held by u1 and u3) has 1 -> removed; u1 drops to 2 items.
    inter = from_pairs(["u1", "u1", "u1", "u2", "u2", "u3", "u4", "u4"], ["x", "y", "w", "x", "y", "w", "x", "y"])
    out = filter_kcore(inter, 2, 2)
    assert list(out.user_ids) == ["u1", "u2", "u4"] and list(out.item_ids) == ["x", "y"]
    assert len(out) == 6
    cascade = from_pairs(["a", "a", "b", "b", "c"], ["x", "y", "x", "z", "z"])
    # c has 1 item -> gone; z then has 1 user -> gone; b has 1 item -> gone; x has 1 user -> gone; ...
    with pytest.raises(DataError, match="no interactions"):
        filter_kcore(cascade, 2, 2)


def test_kcore_sides_can_be_disabled():
    inter = from_pairs(["a", "a", "a", "b"], ["x", "y", "z", "x"])
    assert list(filter_kcore(inter, 3, 0).user_ids) == ["a"]
    assert list(filter_kcore(inter, 0, 2).item_ids) == ["x"]
    assert len(filter_kcore(inter, 0, -1)) == 4
    with pytest.raises(ConfigError, match="k_user"):
        filter_kcore(inter, 2.5, 2)


def test_beauty_is_already_five_core(beauty_data_dir):
    inter = load_dataset("amazon-beauty", data_dir=beauty_data_dir)
    assert len(filter_kcore(inter)) == len(inter) == 198502


# ---------------------------------------------------------------- ratio splits


@pytest.mark.parametrize(
    "ratios",
    [
        (0.8, 0.1, 0.1),
        (0.7, 0.2, 0.1),
        (0.6, 0.2, 0.2),
        (0.9, 0.1),
        (0.5, 0.5, 0.0),
        (0.34, 0.33, 0.33),
        (0.98, 0.01, 0.01),
    ],
)
def test_counts_equal_recbole(ratios):
    n = np.arange(0, 301)
    got = ratio_counts(n, ratios)
    assert got.tolist() == [recbole_counts(int(k), ratios) for k in n]


def test_random_split_disjoint_complete_deterministic():
    inter = filter_kcore(random_inter(), 5, 5)
    a, b, c = split_random(inter, seed=1), split_random(inter, seed=1), split_random(inter, seed=2)
    tr, va, te = pair_set(a.train), pair_set(a.valid), pair_set(a.test)
    assert not (tr & va) and not (tr & te) and not (va & te)
    assert tr | va | te == pair_set(inter) and len(a.train) + len(a.valid) + len(a.test) == len(inter)
    assert all(pair_set(getattr(a, p)) == pair_set(getattr(b, p)) for p in ("train", "valid", "test"))
    assert pair_set(c.test) != te
    n = np.bincount(inter.users, minlength=inter.n_users)
    want = ratio_counts(n, (0.8, 0.1, 0.1))
    for k, part in enumerate((a.train, a.valid, a.test)):
        assert np.array_equal(np.bincount(part.users, minlength=inter.n_users), want[:, k])
    for part in (a.train, a.valid, a.test):
        assert part.user_ids is inter.user_ids and part.item_ids is inter.item_ids


def _rows(inter, part):
    """Row numbers of ``part`` within ``inter`` (pairs are unique)."""
    key = inter.users.astype(np.int64) * inter.n_items + inter.items
    pkey = part.users.astype(np.int64) * inter.n_items + part.items
    rows = np.searchsorted(np.sort(key), pkey)
    return np.argsort(key)[rows]


def test_parts_keep_row_order():
    inter = random_inter(5)
    s = split_random(inter, seed=0)
    for part in (s.train, s.valid, s.test):
        assert np.all(np.diff(_rows(inter, part)) > 0)


def test_beauty_random_split_counts_match_the_paper_protocol(beauty_data_dir):
    inter = filter_kcore(load_dataset("amazon-beauty", data_dir=beauty_data_dir), 5, 5)
    s = split_random(inter, (0.8, 0.1, 0.1), seed=2020)
    summary = s.summary()
    assert (summary["train"], summary["valid"], summary["test"]) == (148766, 24868, 24868)
    assert (summary["users"], summary["items"]) == (22363, 12101)


def test_temporal_split_puts_later_rows_in_test():
    inter = random_inter(7)
    s = split_temporal(inter, (0.6, 0.2, 0.2))
    rows = {name: _rows(inter, getattr(s, name)) for name in ("train", "valid", "test")}
    for u in range(inter.n_users):
        tr, va, te = (rows[n][inter.users[rows[n]] == u] for n in ("train", "valid", "test"))
        if len(va):
            assert tr.max() < va.min()
        if len(te):
            assert max(tr.max(), va.max() if len(va) else -1) < te.min()
    n = np.bincount(inter.users, minlength=inter.n_users)
    assert np.array_equal(np.bincount(s.test.users, minlength=inter.n_users), ratio_counts(n, (0.6, 0.2, 0.2))[:, 2])
    assert pair_set(split_temporal(inter, (0.6, 0.2, 0.2), seed=5).test) == pair_set(s.test)
    hand = from_pairs(["a"] * 10 + ["b"] * 3, [str(i) for i in range(10)] + ["0", "1", "2"])
    t = split_temporal(hand)
    assert list(t.test.item_ids[t.test.items[t.test.users == 0]]) == ["9"]
    assert list(t.valid.item_ids[t.valid.items[t.valid.users == 0]]) == ["8"]


def test_temporal_split_follows_timestamps():
    inter = from_pairs(["a"] * 5, ["p", "q", "r", "s", "t"], timestamps=[5, 1, 4, 2, 3])
    s = split_temporal(inter, (0.6, 0.2, 0.2))
    assert list(s.test.item_ids[s.test.items]) == ["p"] and list(s.valid.item_ids[s.valid.items]) == ["r"]


def test_leave_one_out():
    hand = from_pairs(["a", "b", "a", "a", "b", "c", "c", "c", "c"], ["1", "1", "2", "3", "2", "1", "2", "3", "4"])
    s = split_leave_one_out(hand)
    raw = lambda part: sorted(zip(part.user_ids[part.users], part.item_ids[part.items]))  # noqa: E731
    assert raw(s.test) == [("a", "3"), ("c", "4")] and raw(s.valid) == [("a", "2"), ("c", "3")]
    assert raw(s.train) == [("a", "1"), ("b", "1"), ("b", "2"), ("c", "1"), ("c", "2")]
    assert pair_set(split_leave_one_out(hand, seed=3).test) == pair_set(s.test)


def test_given_split_on_a_small_case():
    both = from_pairs(["a"] * 10 + ["b"] * 2 + ["a", "c"], [str(i) for i in range(12)] + ["x", "y"])
    train, test = both.select(np.arange(12)), both.select(np.arange(12, 14))
    s = split_given(train, test, valid_ratio=0.2, seed=1)
    assert s.test is test
    assert len(s.valid) == 3 and len(s.train) == 9  # a: 8 train + 2 valid; b: 0 < 0.2 * 2 < 1 -> 1 + 1
    assert pair_set(s.train) | pair_set(s.valid) == pair_set(train)
    other = from_pairs(["a"], ["z"])
    with pytest.raises(DataError, match="share id maps"):
        split_given(train, other)
    with pytest.raises(ConfigError, match="1.5"):
        split_given(train, test, valid_ratio=1.5)
    assert len(split_given(train, test, valid_ratio=0.0).valid) == 0


def test_given_split_keeps_gowalla_test_untouched(gowalla_like):
    train, test = load_dataset("gowalla", given_split=True, data_dir=gowalla_like)
    s = split_given(train, test, valid_ratio=0.1, seed=2020)
    assert s.test is test
    assert pair_set(s.train) | pair_set(s.valid) == pair_set(train) and not pair_set(s.train) & pair_set(s.valid)
    assert 0 < len(s.valid) < len(train)
    n = np.bincount(train.users, minlength=train.n_users)
    assert np.array_equal(np.bincount(s.valid.users, minlength=train.n_users), ratio_counts(n, (0.9, 0.1))[:, 1])
    t = split_given(train, test, valid_ratio=0.1, seed=2020)
    assert np.array_equal(t.valid.users, s.valid.users) and np.array_equal(t.valid.items, s.valid.items)


@pytest.mark.parametrize(
    "ratios,shown",
    [
        ((0.5, 0.6, 0.1), "1.2"),
        ((0.9, -0.1, 0.2), "-0.1"),
        ((0.8, 0.2), "0.8"),
        ((0.5, 0.2, 0.2, 0.1), "0.5"),
        (("a", 0.5, 0.5), "a"),
        ((0.0, 0.5, 0.5), "0.0"),
        ((float("nan"), 0.5, 0.5), "nan"),
    ],
)
def test_bad_ratios_are_config_errors_naming_the_value(ratios, shown):
    inter = from_pairs(["a", "a"], ["x", "y"])
    for fn in (split_random, split_temporal):
        with pytest.raises(ConfigError, match=shown):
            fn(inter, ratios)


def test_nothing_to_train_on_is_a_data_error():
    inter = from_pairs(["a", "a", "b", "b"], ["x", "y", "x", "y"])
    with pytest.raises(DataError, match="no training"):
        split_random(inter, (1e-7, 0.5, 0.5))
    empty = inter.select(np.zeros(4, bool))
    for fn in (split_random, split_temporal, split_leave_one_out):
        with pytest.raises(DataError):
            fn(empty)


def test_split_requires_shared_maps_and_registry():
    inter = from_pairs(["a", "b"], ["x", "y"])
    with pytest.raises(DataError, match="id maps"):
        Split(inter, from_pairs(["b"], ["y"]), inter)
    assert set(SPLITS) == {"random", "temporal", "loo", "given"}
    assert SPLITS["random"] is split_random and SPLITS["given"] is split_given


# ---------------------------------------------------------------- persistence


def test_split_round_trip_keeps_indices_exactly(tmp_path):
    users = ["u,1", "NA", "", " sp ", "ü", 'q"t', "a", "a", "a", "b", "b", "b"]
    items = ["x", "y", "z", "NA", "x", "y", "1.0", "01", "x", "y", "z", "w"]
    inter = from_pairs(users, items)
    s = split_random(inter, (0.34, 0.33, 0.33), seed=0)
    save_split(s, tmp_path / "split")
    t = load_split(tmp_path / "split")
    assert list(t.train.user_ids) == list(s.train.user_ids) and list(t.train.item_ids) == list(s.train.item_ids)
    for name in ("train", "valid", "test"):
        a, b = getattr(s, name), getattr(t, name)
        assert np.array_equal(a.users, b.users) and np.array_equal(a.items, b.items) and b.users.dtype == np.int32
    assert (tmp_path / "split" / "train.csv").read_text(encoding="utf-8").startswith("user,item\n")
    assert not list((tmp_path / "split").glob("*.tmp"))


def test_split_round_trip_with_test_only_users(tmp_path):
    inter = from_pairs(["a", "a", "a", "b", "c"], ["x", "y", "z", "w", "v"])
    s = split_leave_one_out(inter)
    train_only = Split(s.train.select(s.train.users == 0), s.valid, s.test)  # b, c, w, v in no part
    save_split(train_only, tmp_path)
    t = load_split(tmp_path)
    assert list(t.train.user_ids) == ["a", "b", "c"] and t.train.n_items == 5
    assert np.array_equal(t.test.items, train_only.test.items)


@pytest.mark.parametrize("damage", ["missing_csv", "missing_vocab", "header", "unknown_id", "truncated", "dup"])
def test_damaged_split_is_a_data_error(tmp_path, damage):
    s = split_leave_one_out(from_pairs(["a", "a", "a", "b"], ["x", "y", "z", "x"]))
    save_split(s, tmp_path)
    if damage == "missing_csv":
        (tmp_path / "valid.csv").unlink()
    elif damage == "missing_vocab":
        (tmp_path / "items.txt").unlink()
    elif damage == "header":
        (tmp_path / "test.csv").write_text("u,i\na,z\n")
    elif damage == "unknown_id":
        (tmp_path / "test.csv").write_text("user,item\na,nope\n")
    elif damage == "truncated":
        (tmp_path / "users.txt").write_text("a\nb")
    elif damage == "dup":
        (tmp_path / "users.txt").write_text("a\nb\na\n")
    with pytest.raises(DataError) as e:
        load_split(tmp_path)
    assert "\n" not in str(e.value)
    with pytest.raises(DataError, match="not found"):
        load_split(tmp_path / "absent")


def test_round_trip_of_a_real_split(tmp_path, beauty_data_dir):
    s = split_random(load_dataset("amazon-beauty", data_dir=beauty_data_dir), seed=2020)
    save_split(s, tmp_path)
    t = load_split(tmp_path)
    for name in ("train", "valid", "test"):
        assert np.array_equal(getattr(s, name).users, getattr(t, name).users)
        assert np.array_equal(getattr(s, name).items, getattr(t, name).items)


def test_a_single_row_stays_in_train():
    inter = Interactions(np.array(["a"]), np.array(["x"]), np.array([0], np.int32), np.array([0], np.int32))
    s = split_random(inter, seed=0)
    assert len(s.train) == 1 and len(s.valid) == len(s.test) == 0
