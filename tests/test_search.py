"""`lightgode search`: trials on validation only, the best trial as a run, resume after SIGKILL, a seeded search."""

from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("optuna")  # the search extra (make setup installs it)

from lightgode.cli import main  # noqa: E402
from lightgode.core.config import RunConfig  # noqa: E402
from lightgode.errors import ConfigError  # noqa: E402
from lightgode.runs.search import SearchConfig, build_space, parse_param, search  # noqa: E402
from lightgode.runs.store import load_run  # noqa: E402

from conftest import beauty_slice_file  # noqa: E402

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(scope="module")
def slice_file(tmp_path_factory) -> Path:
    return beauty_slice_file(tmp_path_factory, 2000)


def base(data: Path, model: str = "lightgode") -> RunConfig:
    return RunConfig().override(
        {"data": {"data": str(data), "kcore": 0}, "train": {"epochs": 1}, "threads": 1, "model": model}
    )


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def two_searches(slice_file, tmp_path_factory):
    """The same two-trial search run twice, same seed, one worker."""
    root = tmp_path_factory.mktemp("searches")
    return [
        search(base(slice_file), root / f"s{i}", config=SearchConfig(trials=2, seed=3), quiet=True) for i in range(2)
    ]


def test_search_writes_trials_plots_and_a_loadable_best_run(two_searches):
    s = two_searches[0]
    table = rows(s.out / "trials.csv")
    assert [r["number"] for r in table] == ["0", "1"]
    assert all(r["state"] == "complete" and r["epochs"] == "1" and float(r["seconds"]) > 0 for r in table)
    assert all(float(r["t"]) >= 0 for r in table)  # every lightgode trial chose its T on validation
    assert set(build_space("lightgode")) <= set(table[0])
    for name in ("value_vs_time.png", "settings.png", "study.db", "search.json"):
        assert (s.out / name).stat().st_size > 0
    run = load_run(s.best_dir)
    assert s.best_dir == s.out / "best"
    best_row = table[s.best_number]
    assert float(best_row["value"]) == pytest.approx(s.best_value)
    assert max(float(r["value"]) for r in table) == pytest.approx(s.best_value)
    # the run keeps the best trial's settings and chosen T; its validation metric is the trial's value
    assert run.config["ode"]["t"] == pytest.approx(float(best_row["t"]))
    assert run.config["train"]["lr"] == pytest.approx(s.best_params["train.lr"])
    assert run.config["train"]["dim"] == s.best_params["train.dim"]
    assert run.metrics["valid"]["ndcg@20"] == pytest.approx(s.best_value, rel=1e-5)
    assert "test" in run.metrics and run.info["search"]["trial"] == s.best_number
    assert [d.name for d in (s.out / "trials").iterdir() if d.is_dir()] == [str(s.best_number)]


def test_the_same_seed_picks_the_same_best_trial(two_searches):
    a, b = two_searches
    assert (a.best_number, a.best_params) == (b.best_number, b.best_params)
    assert a.best_value == pytest.approx(b.best_value, rel=1e-6)
    assert [r["train.lr"] for r in rows(a.out / "trials.csv")] == [r["train.lr"] for r in rows(b.out / "trials.csv")]


def test_a_baseline_is_searched_through_the_same_code(slice_file, tmp_path):
    space = build_space("mf-bpr", {"train.dim": {"choices": [16]}, "train.batch_size": {"choices": [1024]}})
    s = search(
        base(slice_file, "mf-bpr"), tmp_path / "s", space=space, config=SearchConfig(trials=1, seed=1), quiet=True
    )
    row = rows(s.out / "trials.csv")[0]
    assert "baseline.reg" in row and row["t"] == ""
    assert load_run(s.best_dir).config["baseline"]["reg"] == pytest.approx(s.best_params["baseline.reg"])


def run_cli(*argv: str, **kw) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(SRC))
    return subprocess.run([sys.executable, "-m", "lightgode", *argv], capture_output=True, text=True, env=env, **kw)


def count(db: Path, state: str) -> int:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            return con.execute("select count(*) from trials where state = ?", (state,)).fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0


@pytest.mark.slow
def test_resume_after_sigkill_keeps_every_finished_trial(slice_file, tmp_path):
    out = tmp_path / "s"
    args = [
        "search",
        "--data",
        str(slice_file),
        "--kcore",
        "0",
        "--epochs",
        "2",
        "--trials",
        "3",
        "--threads",
        "1",
        "--seed",
        "5",
        "--out",
        str(out),
        "--quiet",
    ]
    env = dict(os.environ, PYTHONPATH=str(SRC))
    proc = subprocess.Popen(
        [sys.executable, "-m", "lightgode", *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    db = out / "study.db"
    try:
        deadline = time.monotonic() + 300
        # kill once the first trial is recorded and the second is running
        while not (count(db, "COMPLETE") >= 1 and count(db, "RUNNING") >= 1):
            assert proc.poll() is None, "the search ended before it could be killed"
            assert time.monotonic() < deadline, "no trial finished in time"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    con = sqlite3.connect(db)
    first = con.execute(
        "select number, value from trials join trial_values using (trial_id) where state = 'COMPLETE'"
    ).fetchall()
    con.close()
    assert not (out / "best").exists()
    done = run_cli("search", "--resume", str(out), "--quiet")
    assert done.returncode == 0, done.stderr
    table = rows(out / "trials.csv")
    states = [r["state"] for r in table]
    assert states.count("complete") + states.count("pruned") == 3  # the budget, the killed trial not counted
    assert states.count("fail") == 1  # the trial cut short by the kill, run again
    for number, value in first:
        assert table[number]["state"] == "complete" and float(table[number]["value"]) == pytest.approx(value)
    load_run(out / "best")


@pytest.mark.parametrize(
    "space, message",
    [
        ({"train.lr": {"low": 0.1, "high": 0.01}}, "need low < high"),
        ({"train.nope": {"low": 1, "high": 2}}, "unknown setting 'train.nope'"),
        ({"trainlr": {"low": 1, "high": 2}}, "unknown setting 'trainlr'"),
        ({"train.lr": {"low": 0, "high": 0.1, "log": True}}, "a log range needs low > 0"),
        ({"train.dim": {"choices": []}}, "non-empty list"),
        ({"train.dim": {"low": 8.5, "high": 64}}, "takes integers"),
        ({"train.lr": {"low": 1e-3, "high": 1e-2, "step": 2}}, "unknown field 'step'"),
        ({"train.lr": [1e-3, 1e-2]}, "expected"),
        ({"train.optimizer": {"choices": ["adam"]}}, "not a numeric setting"),
        ({"train.dim": {"choices": [0, 64]}}, "train.dim=0 is not a possible setting"),
    ],
)
def test_a_bad_space_file_is_one_line_and_exit_2(slice_file, tmp_path, capsys, space, message):
    path = tmp_path / "space.json"
    path.write_text(json.dumps(space))
    assert main(["search", "--data", str(slice_file), "--out", str(tmp_path / "s"), "--space", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("lightgode: error: search space") and message in err, err
    assert not (tmp_path / "s").exists()


def test_an_unreadable_space_file_is_one_line(slice_file, tmp_path, capsys):
    path = tmp_path / "space.json"
    path.write_text("{not json")
    assert main(["search", "--data", str(slice_file), "--out", str(tmp_path / "s"), "--space", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "cannot parse search space file" in err


def test_space_entries_parse_ranges_and_choices():
    assert parse_param("train.dim", {"choices": [32, 64]}).choices == (32, 64)
    p = parse_param("train.lr", {"low": 1e-4, "high": 1e-2, "log": True})
    assert (p.low, p.high, p.log) == (1e-4, 1e-2, True)
    assert "train.weight_decay" not in build_space("lightgode", {"train.weight_decay": None})
    with pytest.raises(ConfigError, match="no training to search"):
        build_space("gf-cf")


def test_an_existing_search_needs_resume_or_overwrite(two_searches, slice_file, capsys):
    out = two_searches[1].out
    assert main(["search", "--data", str(slice_file), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"--resume {out}" in err and "--overwrite" in err
    assert load_run(out / "best")  # untouched


def test_resuming_nothing_is_one_line(tmp_path, capsys):
    assert main(["search", "--resume", str(tmp_path / "none")]) == 2
    assert "no search to resume" in capsys.readouterr().err


def test_train_search_writes_the_best_trial_to_out(slice_file, tmp_path, capsys):
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--data",
                str(slice_file),
                "--kcore",
                "0",
                "--epochs",
                "1",
                "--threads",
                "1",
                "--search",
                "0.1",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    run = load_run(out)
    assert run.info["search"]["trials"] == 1  # a budget of seconds: the first trial runs, then time is up
    assert len(rows(tmp_path / "run.search" / "trials.csv")) == 1
    assert "best run in" in capsys.readouterr().out


@pytest.mark.slow
def test_two_workers_share_one_study(slice_file, tmp_path):
    s = search(base(slice_file), tmp_path / "s", config=SearchConfig(trials=2, seed=2, workers=2), quiet=True)
    table = rows(s.out / "trials.csv")
    done = [r for r in table if r["state"] in ("complete", "pruned")]
    assert 2 <= len(done) <= 3  # a worker starts a trial only while finished + running trials are under the budget
    assert len({r["train.lr"] for r in table}) == len(table)  # the workers draw different settings
    assert load_run(s.best_dir).info["search"]["trial"] == s.best_number
