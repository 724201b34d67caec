"""Named datasets: the search order, the bundled copy, Gowalla's fixed split, and name errors."""

import gzip
import hashlib

import numpy as np
import pytest

from lightgode.data import datasets
from lightgode.data.datasets import DATASETS, bundled_dir, find_data_dir, load_dataset, load_named
from lightgode.data.readers import read_lightgcn
from lightgode.errors import ConfigError, DataError

BEAUTY_SHA256 = "226cce9c3105299ca0db9615d7d3fb32b3175e90da43100ae352599f0f0107b8"


def fake_root(tmp_path, name, content=b"1 2 3\n"):
    for rel in (DATASETS[name],) if isinstance(DATASETS[name], str) else DATASETS[name]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(content)
    return tmp_path


def test_bundled_copy_has_the_recorded_content():
    raw = gzip.decompress((bundled_dir() / "amazon-beauty.txt.gz").read_bytes())
    assert hashlib.sha256(raw).hexdigest() == BEAUTY_SHA256
    assert (bundled_dir() / "README.md").is_file()


def test_bundled_copy_reads_like_the_original():
    inter = read_lightgcn(bundled_dir() / "amazon-beauty.txt.gz")
    assert (inter.n_users, inter.n_items, len(inter)) == (22363, 12101, 198502)


def test_search_order(tmp_path, monkeypatch):
    a = fake_root(tmp_path / "a", "amazon-beauty", b"1 2\n")
    b = fake_root(tmp_path / "b", "amazon-beauty", b"3 4\n")
    assert find_data_dir("amazon-beauty", a, b) == a
    assert find_data_dir("amazon-beauty", tmp_path / "empty", b) == b
    assert list(load_dataset("amazon-beauty", data_dir=a, env_data_dir=b).user_ids) == ["1"]
    assert list(load_dataset("amazon-beauty", env_data_dir=b).user_ids) == ["3"]
    # a dataset's own folder works as data_dir too
    assert find_data_dir("amazon-beauty", a / "amazon-beauty") == a / "amazon-beauty"
    # ../shared/datasets from the working directory comes before the repository's copy
    (tmp_path / "work").mkdir()
    fake_root(tmp_path / "shared" / "datasets", "amazon-toys-games")
    monkeypatch.chdir(tmp_path / "work")
    found = find_data_dir("amazon-toys-games")
    assert found.resolve() == (tmp_path / "shared" / "datasets").resolve()


def test_bundled_copy_is_the_last_resort(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "search_dirs", lambda data_dir=None, env_data_dir=None: [tmp_path])
    assert find_data_dir("amazon-beauty") == bundled_dir()
    assert find_data_dir("gowalla") is None
    assert len(load_dataset("amazon-beauty")) == 198502
    with pytest.raises(DataError, match="LIGHTGODE_DATA"):
        load_dataset("amazon-toys-games")


def test_names_paths_and_their_errors(tmp_path):
    with pytest.raises(DataError) as e:
        load_dataset("amazon-beuaty")
    assert all(name in str(e.value) for name in DATASETS)
    with pytest.raises(DataError, match="unknown dataset"):
        find_data_dir("movielens")
    f = tmp_path / "x.csv"
    f.write_text("u,i\n1,2\n")
    assert len(load_dataset(str(f), user_col="u", item_col="i")) == 1
    with pytest.raises(DataError, match="given_split"):
        load_dataset(f, given_split=True)
    root = fake_root(tmp_path / "r", "amazon-beauty")
    with pytest.raises(DataError, match="given_split"):
        load_dataset("amazon-beauty", given_split=True, data_dir=root)
    with pytest.raises(ConfigError, match="user_col"):
        load_dataset("amazon-beauty", data_dir=root, user_col="u")
    with pytest.raises(ConfigError, match="csv"):
        load_dataset("amazon-beauty", data_dir=root, fmt="csv")


def test_train_test_share_maps_and_keep_test_rows(tmp_path):
    root = tmp_path
    (root / "gowalla").mkdir()
    (root / "gowalla" / "train.txt").write_text("0 10 11 10\n1 11\n")
    (root / "gowalla" / "test.txt").write_text("0 12 10\n2 13\n")
    train, test = load_dataset("gowalla", given_split=True, data_dir=root)
    assert train.user_ids is test.user_ids and train.item_ids is test.item_ids
    assert list(train.user_ids) == ["0", "1", "2"] and list(train.item_ids) == ["10", "11", "12", "13"]
    raw = lambda p: list(zip(p.user_ids[p.users], p.item_ids[p.items]))  # noqa: E731
    assert raw(train) == [("0", "10"), ("0", "11"), ("1", "11")]
    assert raw(test) == [("0", "12"), ("0", "10"), ("2", "13")]  # (0, 10) also in train: kept as given
    merged = load_dataset("gowalla", data_dir=root)
    assert raw(merged) == [("0", "10"), ("0", "11"), ("1", "11"), ("0", "12"), ("2", "13")]
    assert isinstance(load_named("gowalla", data_dir=root), tuple)


def test_a_fixed_split_pair_loads_as_written(gowalla_like):
    """Gowalla's loader on a synthetic pair in its format: both parts keep their rows and share the id maps."""
    train, test = load_named("gowalla", data_dir=gowalla_like)
    assert train.user_ids is test.user_ids and train.item_ids is test.item_ids
    raw = lambda p: list(zip(p.user_ids[p.users], p.item_ids[p.items]))  # noqa: E731
    for part, name in ((train, "train.txt"), (test, "test.txt")):
        f = gowalla_like / "gowalla" / name
        assert raw(part) == [(r[0], x) for r in (line.split() for line in f.read_text().splitlines()) for x in r[1:]]
    assert len(load_dataset("gowalla", data_dir=gowalla_like)) == len(train) + len(test)  # no pair in both


def test_real_files(shared_datasets):
    """The real files themselves: ../shared's Beauty is the bundled copy, Gowalla has LightGCN's counts."""
    shared = shared_datasets / "amazon-beauty" / "Beauty.txt"
    assert hashlib.sha256(shared.read_bytes()).hexdigest() == BEAUTY_SHA256
    train, test = load_named("gowalla", data_dir=shared_datasets)
    assert (len(train), len(test)) == (810128, 217242)
    assert (train.n_users, train.n_items) == (29858, 40981) and train.user_ids is test.user_ids
    assert len(read_lightgcn(shared_datasets / "gowalla" / "train.txt")) == 810128
    alone = read_lightgcn(shared_datasets / "gowalla" / "test.txt")
    assert np.array_equal(test.user_ids[test.users], alone.user_ids[alone.users])
    assert np.array_equal(test.item_ids[test.items], alone.item_ids[alone.items])
    merged = load_dataset("gowalla", data_dir=shared_datasets)
    assert len(merged) == 810128 + 217242
