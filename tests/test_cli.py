import csv
import json

import pytest

from lightgode.cli import main

from conftest import beauty_slice_file


@pytest.fixture(scope="module")
def slice_file(tmp_path_factory):
    # a slice of real Beauty: the first 1,500 users
    return beauty_slice_file(tmp_path_factory, 1500)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, slice_file):
    out = tmp_path_factory.mktemp("runs") / "r"
    assert (
        main(
            [
                "train",
                "--data",
                str(slice_file),
                "--epochs",
                "20",
                "--patience",
                "20",
                "--lr",
                "0.01",
                "--t",
                "1.0",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    return out


def test_train_writes_complete_run(run_dir):
    for name in (
        "config.json",
        "metrics.json",
        "history.csv",
        "weights.safetensors",
        "COMPLETE",
        "split/train.csv",
        "split/valid.csv",
        "split/test.csv",
    ):
        assert (run_dir / name).is_file(), name
    m = json.loads((run_dir / "metrics.json").read_text())
    assert set(m) == {"valid", "test"} and "ndcg@20" in m["test"]
    assert (run_dir / "split" / "train.csv").read_text().startswith("user,item\n")


def test_training_beats_popularity_on_validation(run_dir):
    import numpy as np
    import torch

    from lightgode.core.evaluate import EvalConfig, full_ranking
    from lightgode.runs.store import load_run

    r = load_run(run_dir)
    pop = torch.from_numpy(np.bincount(r.split.train.items, minlength=r.split.train.n_items).astype(np.float32))
    pop_metrics = full_ranking(
        lambda u: pop.expand(len(u), -1).clone(), r.split.valid.to_csr(), r.split.train.to_csr(), EvalConfig()
    )
    assert r.metrics["valid"]["ndcg@20"] > pop_metrics["ndcg@20"]


def test_evaluate_with_other_t_and_recommend(run_dir, tmp_path, capsys):
    assert main(["evaluate", str(run_dir), "--json"]) == 0
    same = json.loads(capsys.readouterr().out)
    stored = json.loads((run_dir / "metrics.json").read_text())
    assert same["test"]["ndcg@20"] == pytest.approx(stored["test"]["ndcg@20"], rel=1e-6)
    assert main(["evaluate", str(run_dir), "--t", "0", "--json"]) == 0
    other = json.loads(capsys.readouterr().out)
    assert other["test"]["ndcg@20"] != same["test"]["ndcg@20"]
    out = tmp_path / "recs.csv"
    assert main(["recommend", str(run_dir), "--all-users", "--split", "test", "-k", "5", "--output", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert rows and set(rows[0]) == {"user", "item", "rank", "score"}
    train = {(r["user"], r["item"]) for r in csv.DictReader((run_dir / "split" / "train.csv").open())}
    assert not any((r["user"], r["item"]) in train for r in rows)
    user = rows[0]["user"]
    assert main(["recommend", str(run_dir), "--user", user, "-k", "5"]) == 0
    single = list(csv.DictReader(capsys.readouterr().out.splitlines()))
    assert [r["item"] for r in single] == [r["item"] for r in rows if r["user"] == user]
    assert main(["info", str(run_dir)]) == 0


def test_a_runs_config_file_reproduces_the_run(run_dir, tmp_path, capsys):
    again = tmp_path / "again"
    assert main(["train", "--config", str(run_dir / "config.json"), "--out", str(again), "--quiet"]) == 0
    for name in ("config.json", "metrics.json"):
        assert json.loads((again / name).read_text()) == json.loads((run_dir / name).read_text()), name
    (tmp_path / "bad.json").write_text(json.dumps({"train": {"lr": 0.01, "colour": 1}}))
    assert main(["train", "--config", str(tmp_path / "bad.json"), "--out", str(tmp_path / "o")]) == 2
    assert "unknown setting train.colour" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--data", "/no/such/file.txt"],
        ["train", "--t", "-1"],
        ["train", "--solver", "magic"],
        ["train", "--ks", "0"],
        ["train", "--format", "xml"],
        ["train", "--valid-every", "0"],
    ],
)
def test_bad_train_input_exits_2_with_one_line(argv, capsys, tmp_path):
    with pytest.raises(SystemExit) as e:
        rc = main(argv + ["--out", str(tmp_path / "o")])
        raise SystemExit(rc)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "error" in err
    assert not (tmp_path / "o").exists()


def test_bad_run_inputs(run_dir, tmp_path, capsys):
    assert main(["recommend", str(run_dir), "--user", "no-such-user"]) == 2
    assert main(["recommend", str(run_dir), "--user", "1", "-k", "0"]) == 2
    assert main(["evaluate", str(tmp_path / "missing")]) == 2
    (tmp_path / "half").mkdir()
    assert main(["evaluate", str(tmp_path / "half")]) == 2
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert main(["train", "--data", str(empty)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err


def test_train_without_a_terminal_logs_one_line_per_epoch(slice_file, tmp_path):
    import subprocess
    import sys

    args = [
        sys.executable,
        "-m",
        "lightgode",
        "train",
        "--data",
        str(slice_file),
        "--epochs",
        "2",
        "--patience",
        "2",
        "--threads",
        "1",
        "--out",
    ]
    shown = subprocess.run([*args, str(tmp_path / "a")], capture_output=True, text=True, timeout=300)
    assert shown.returncode == 0, shown.stderr[-2000:]
    lines = [ln for ln in shown.stderr.splitlines() if "lightgode.core.train: epoch" in ln]
    assert [ln.split("epoch ")[1].split()[0] for ln in lines] == ["1", "2"] and "ndcg@20" in lines[-1]
    quiet = subprocess.run([*args, str(tmp_path / "b"), "--quiet"], capture_output=True, text=True, timeout=300)
    assert quiet.returncode == 0 and "epoch" not in quiet.stderr
