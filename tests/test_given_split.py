"""`lightgode train --data TRAIN --test TEST`: a train/test pair of one's own, in any supported format."""

import json
import logging

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lightgode.cli import main
from lightgode.core.config import DataConfig
from lightgode.data.interactions import from_pairs
from lightgode.data.split import load_split, ratio_counts, restrict_given
from lightgode.errors import ConfigError, DataError
from lightgode.runs.workflow import prepare_split, train_run

QUICK = ["--epochs", "2", "--dim", "8", "--threads", "1", "--quiet"]


def make_pairs(seed: int = 0, n_users: int = 40, n_items: int = 70) -> tuple[list, list]:
    """Train and test (user, item) pairs as ints: 8 train and 3 test items per user, no pair in both; then a
    test row of a user and one of an item that train never has."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for u in range(n_users):
        items = rng.choice(n_items, 11, replace=False).tolist()
        train += [(u, i) for i in items[:8]]
        test += [(u, i) for i in items[8:]]
    test += [(n_users + 5, 0), (0, n_items + 5)]
    return train, test


def write_lightgcn(path, pairs) -> None:
    lines: dict[int, list[int]] = {}
    for u, i in pairs:
        lines.setdefault(u, []).append(i)
    path.write_text("".join(f"{u} {' '.join(map(str, items))}\n" for u, items in lines.items()))


def write_csv(path, pairs) -> None:
    path.write_text("who,what,score\n" + "".join(f"u{u},i{i},1\n" for u, i in pairs))


def raw_pairs(part) -> list[tuple[str, str]]:
    return list(zip(part.user_ids[part.users].tolist(), part.item_ids[part.items].tolist()))


@pytest.fixture(scope="module")
def pairs():
    return make_pairs()


@pytest.fixture(scope="module")
def lightgcn_files(tmp_path_factory, pairs):
    d = tmp_path_factory.mktemp("lightgcn")
    write_lightgcn(d / "train.txt", pairs[0])
    write_lightgcn(d / "test.txt", pairs[1])
    return d / "train.txt", d / "test.txt"


@pytest.fixture(scope="module")
def csv_files(tmp_path_factory, pairs):
    d = tmp_path_factory.mktemp("csv")
    write_csv(d / "train.csv", pairs[0])
    write_csv(d / "test.csv", pairs[1])
    return d / "train.csv", d / "test.csv"


def check_given_run(out, train_pairs, test_pairs, test_file) -> None:
    """The run's stored split: test is the test file's rows (minus the two unseen ones), in file order; train and
    valid partition the train file, valid carved per user with the share 0.1; no test pair in either."""
    split = load_split(out / "split")
    assert raw_pairs(split.test) == test_pairs[:-2]
    fit, valid = raw_pairs(split.train), raw_pairs(split.valid)
    assert sorted(fit + valid) == sorted(train_pairs) and not set(fit) & set(valid)
    assert not set(raw_pairs(split.test)) & (set(fit) | set(valid))
    n = np.bincount(np.concatenate([split.train.users, split.valid.users]), minlength=split.train.n_users)
    assert np.array_equal(
        np.bincount(split.valid.users, minlength=split.train.n_users), ratio_counts(n, (0.9, 0.1))[:, 1]
    )
    cfg = json.loads((out / "config.json").read_text())["data"]
    assert cfg["split"] == "given" and cfg["test"] == str(test_file)
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"valid", "test"}


def test_lightgcn_pair_trains_with_test_rows_as_given(tmp_path, lightgcn_files, pairs, caplog):
    train, test = lightgcn_files
    out = tmp_path / "run"
    with caplog.at_level(logging.WARNING, logger="lightgode.data"):
        assert (
            main(["train", "--data", str(train), "--test", str(test), "--kcore", "0", "--out", str(out), *QUICK]) == 0
        )
    as_str = lambda ps: [(str(u), str(i)) for u, i in ps]  # noqa: E731
    check_given_run(out, as_str(pairs[0]), as_str(pairs[1]), test)
    assert "dropped 2 of 122 test rows" in caplog.text


def test_csv_pair_trains_with_shared_ids(tmp_path, csv_files, pairs, capsys):
    train, test = csv_files
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--data",
                str(train),
                "--test",
                str(test),
                "--split",
                "given",
                "--user-col",
                "who",
                "--item-col",
                "what",
                "--kcore",
                "0",
                "--out",
                str(out),
                *QUICK,
            ]
        )
        == 0
    )
    as_str = lambda ps: [(f"u{u}", f"i{i}") for u, i in ps]  # noqa: E731
    check_given_run(out, as_str(pairs[0]), as_str(pairs[1]), test)
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    assert f"test={test}" in capsys.readouterr().out


def test_a_lightgcn_pair_by_path_splits_as_gowalla_by_name(tmp_path, pairs):
    (tmp_path / "gowalla").mkdir()
    train, test = tmp_path / "gowalla" / "train.txt", tmp_path / "gowalla" / "test.txt"
    write_lightgcn(train, pairs[0])
    write_lightgcn(test, pairs[1])
    for kcore in (0, 3):
        named = prepare_split(DataConfig(data="gowalla", data_dir=str(tmp_path), split="given", kcore=kcore), 7)
        own = prepare_split(DataConfig(data=str(train), test=str(test), split="given", kcore=kcore), 7)
        for part in ("train", "valid", "test"):
            a, b = getattr(named, part), getattr(own, part)
            assert list(a.user_ids) == list(b.user_ids) and list(a.item_ids) == list(b.item_ids)
            assert np.array_equal(a.users, b.users) and np.array_equal(a.items, b.items)


def test_kcore_filters_train_only_and_says_what_test_lost(tmp_path, caplog):
    # user 9 has 2 train rows, item 50 one: a 3-core of train removes them, and their test rows go with a warning
    train_pairs = [(u, i) for u in range(9) for i in range(7) if i != u % 7] + [(9, 0), (9, 1), (0, 50)]
    test_pairs = [(9, 3), (1, 50), (2, 2), (3, 3)]
    write_lightgcn(tmp_path / "train.txt", train_pairs)
    write_lightgcn(tmp_path / "test.txt", test_pairs)
    cfg = DataConfig(data=str(tmp_path / "train.txt"), test=str(tmp_path / "test.txt"), split="given", kcore=3)
    with caplog.at_level(logging.WARNING, logger="lightgode.data"):
        split = prepare_split(cfg, 1)
    assert raw_pairs(split.test) == [("2", "2"), ("3", "3")]
    assert "9" not in set(split.user_ids) and "50" not in set(split.item_ids)
    assert "dropped 2 of 4 test rows" in caplog.text and "3-core" in caplog.text


@given(
    train=st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), min_size=1, max_size=30),
    test=st.lists(st.tuples(st.integers(0, 8), st.integers(0, 8)), min_size=1, max_size=30),
)
@settings(max_examples=60, deadline=None)
def test_restrict_given_keeps_exactly_the_test_rows_train_covers(train, test):
    both = from_pairs([str(u) for u, _ in train + test], [str(i) for _, i in train + test])
    n_train = len(from_pairs([str(u) for u, _ in train], [str(i) for _, i in train]))
    tr, te = both.select(np.arange(n_train)), both.select(np.arange(n_train, len(both)))
    users, items = {u for u, _ in train}, {i for _, i in train}
    want = [(str(u), str(i)) for u, i in dict.fromkeys(test) if u in users and i in items and (u, i) not in set(train)]
    # from_pairs keeps one row of a pair in both files (the train one): test here holds the rest
    if not want:
        with pytest.raises(DataError, match="no test row"):
            restrict_given(tr, te)
        return
    tr2, te2 = restrict_given(tr, te)
    assert raw_pairs(te2) == want and raw_pairs(tr2) == raw_pairs(tr)
    assert tr2.user_ids is te2.user_ids and set(tr2.user_ids) == {str(u) for u in users}
    assert set(tr2.item_ids) == {str(i) for i in items}


def test_a_config_file_can_name_the_test_file(tmp_path, lightgcn_files):
    train, test = lightgcn_files
    conf = tmp_path / "c.json"
    conf.write_text(json.dumps({"data": {"data": str(train), "test": str(test), "kcore": 0}}))
    out = tmp_path / "run"
    assert main(["train", "--config", str(conf), "--out", str(out), *QUICK]) == 0
    stored = json.loads((out / "config.json").read_text())["data"]
    assert stored["split"] == "given" and stored["test"] == str(test)


def test_resume_reads_the_test_file_again(tmp_path, lightgcn_files):
    train, test = lightgcn_files
    args = [
        "--data",
        str(train),
        "--test",
        str(test),
        "--kcore",
        "0",
        "--epochs",
        "3",
        "--patience",
        "3",
        "--dim",
        "8",
        "--threads",
        "1",
        "--quiet",
    ]
    ref = tmp_path / "ref"
    assert main(["train", *args, "--out", str(ref)]) == 0
    from lightgode.cli import build_parser
    from lightgode.commands.common import config_from_args

    cfg = config_from_args(build_parser().parse_args(["train", *args]))

    def stop(row):
        if row["epoch"] == 2:
            raise RuntimeError("stopped")

    out = tmp_path / "run"
    with pytest.raises(RuntimeError):
        train_run(cfg, out, on_epoch=stop)
    assert (tmp_path / "run.ckpt" / "state.safetensors").is_file()
    assert main(["train", "--resume", str(out), "--quiet"]) == 0
    assert json.loads((out / "metrics.json").read_text()) == json.loads((ref / "metrics.json").read_text())
    assert json.loads((out / "config.json").read_text())["data"]["test"] == str(test)


def one_line_error(capsys, *words) -> None:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("lightgode: error:"), err
    for w in words:
        assert w in err, err


def test_missing_test_file(tmp_path, lightgcn_files, capsys):
    assert main(["train", "--data", str(lightgcn_files[0]), "--test", str(tmp_path / "no.txt"), *QUICK]) == 2
    one_line_error(capsys, "test file not found", "no.txt")


def test_another_split_with_test_is_refused(lightgcn_files, capsys):
    train, test = lightgcn_files
    assert main(["train", "--data", str(train), "--test", str(test), "--split", "random", *QUICK]) == 2
    one_line_error(capsys, "--split given")
    with pytest.raises(ConfigError, match="given"):
        DataConfig(data=str(train), test=str(test), split="temporal")


def test_a_config_file_split_other_than_given_with_test_is_refused(tmp_path, lightgcn_files, capsys):
    conf = tmp_path / "c.json"
    conf.write_text(json.dumps({"data": {"split": "random"}}))
    assert (
        main(
            ["train", "--config", str(conf), "--data", str(lightgcn_files[0]), "--test", str(lightgcn_files[1]), *QUICK]
        )
        == 2
    )
    one_line_error(capsys, "given")


def test_given_on_one_file_without_test_is_refused(lightgcn_files, capsys):
    assert main(["train", "--data", str(lightgcn_files[0]), "--split", "given", *QUICK]) == 2
    one_line_error(capsys, "--test")


def test_test_file_beside_a_named_dataset_is_refused(lightgcn_files, capsys):
    assert main(["train", "--data", "amazon-beauty", "--test", str(lightgcn_files[1]), *QUICK]) == 2
    one_line_error(capsys, "named dataset")


def test_unreadable_test_file(tmp_path, csv_files, capsys):
    train = csv_files[0]
    odd = tmp_path / "test.dat"
    odd.write_text("who,what\nu1,i1\n")
    assert (
        main(["train", "--data", str(train), "--test", str(odd), "--user-col", "who", "--item-col", "what", *QUICK])
        == 2
    )
    one_line_error(capsys, "cannot tell the format")
    wrong = tmp_path / "test.csv"
    wrong.write_text("user,item\nu1,i1\n")  # not the columns named for both files
    assert (
        main(["train", "--data", str(train), "--test", str(wrong), "--user-col", "who", "--item-col", "what", *QUICK])
        == 2
    )
    one_line_error(capsys, "who")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert (
        main(["train", "--data", str(train), "--test", str(empty), "--user-col", "who", "--item-col", "what", *QUICK])
        == 2
    )
    one_line_error(capsys, "empty")


def test_no_overlap_between_the_files(tmp_path, csv_files, capsys):
    strangers = tmp_path / "test.csv"
    strangers.write_text("who,what\nx1,i1\nx2,i2\n")
    assert (
        main(
            [
                "train",
                "--data",
                str(csv_files[0]),
                "--test",
                str(strangers),
                "--user-col",
                "who",
                "--item-col",
                "what",
                "--kcore",
                "0",
                *QUICK,
            ]
        )
        == 2
    )
    one_line_error(capsys, "no test row")
