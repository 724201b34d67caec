"""A run still training, scored from its last checkpoint: `lightgode evaluate --checkpoint` and
benchmarks/long_runs/checkpoint_eval.py (the same, plus a row of a markdown table)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lightgode.cli import main
from lightgode.core.config import RunConfig
from lightgode.runs.workflow import train_run

from conftest import beauty_slice_file, stop_at

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "long_runs" / "checkpoint_eval.py"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(a complete 2-epoch mf-bpr run, the same run with 5 epochs interrupted as epoch 3 ended)."""
    data = beauty_slice_file(tmp_path_factory, 1500)
    root = tmp_path_factory.mktemp("runs")
    whole, cut = root / "whole", root / "cut"
    assert (
        main(
            [
                "train",
                "--data",
                str(data),
                "--model",
                "mf-bpr",
                "--epochs",
                "2",
                "--patience",
                "5",
                "--lr",
                "0.01",
                "--batch-size",
                "256",
                "--threads",
                "1",
                "--quiet",
                "--out",
                str(whole),
            ]
        )
        == 0
    )
    assert json.loads((whole / "train.json").read_text())["best_epoch"] == 2  # its weights are epoch 2's
    config = json.loads((whole / "config.json").read_text())
    cfg = RunConfig.from_stored(config).override({"train": {"epochs": 5}})
    with pytest.raises(KeyboardInterrupt):  # as epoch 3 ends, before its checkpoint: the checkpoint holds epoch 2
        train_run(cfg, cut, on_epoch=stop_at(3))
    return whole, cut


def test_evaluate_checkpoint_scores_a_running_run_as_the_run_at_that_epoch(runs, capsys):
    whole, cut = runs
    capsys.readouterr()
    assert main(["evaluate", str(cut), "--checkpoint", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["checkpoint_epoch"] == 2
    assert got["test"] == pytest.approx(json.loads((whole / "metrics.json").read_text())["test"], abs=1e-9)
    assert main(["evaluate", str(cut)]) == 2  # not complete: only --checkpoint reads it
    assert main(["evaluate", str(whole), "--checkpoint"]) == 2  # complete: no checkpoint left
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("lightgode: error:") for line in err)
    assert "has not finished" in err[0] and "--checkpoint" in err[0]  # the way to read it is named


def test_checkpoint_eval_script_appends_one_row_per_reading(runs, tmp_path):
    whole, cut = runs
    table = tmp_path / "progress.md"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), str(cut), "--append", str(table)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    row = table.read_text().splitlines()[-1].split("|")
    assert row[3].strip() == "2"
    test = json.loads((whole / "metrics.json").read_text())["test"]
    assert row[6].strip() == f"{test['recall@20']:.4f} / {test['ndcg@20']:.4f}"
    assert len(table.read_text().splitlines()) == 3  # header, rule, one row; a second reading adds a row
    subprocess.run(
        [sys.executable, str(SCRIPT), str(cut), "--append", str(table)], check=True, capture_output=True, timeout=300
    )
    assert len(table.read_text().splitlines()) == 4
    intro = tmp_path / "intro.md"  # a page that so far has only its introduction gets the table header first
    intro.write_text("# Progress\n\nWhat the table shows.\n")
    subprocess.run(
        [sys.executable, str(SCRIPT), str(cut), "--append", str(intro)], check=True, capture_output=True, timeout=300
    )
    lines = intro.read_text().splitlines()
    assert lines[:3] == ["# Progress", "", "What the table shows."] and lines[3].startswith("| date |")
    assert lines[4].startswith("|---") and len(lines) == 6


def test_checkpoint_eval_watch_reads_each_multiple_of_every_until_the_run_completes(runs, tmp_path):
    import shutil
    import time

    _, cut = runs
    run = tmp_path / "cut"
    shutil.copytree(cut.with_name(cut.name + ".ckpt"), run.with_name(run.name + ".ckpt"))
    table = tmp_path / "curve.md"
    watcher = subprocess.Popen(
        [sys.executable, str(SCRIPT), str(run), "--every", "2", "--append", str(table)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 240
        while not table.is_file() and time.monotonic() < deadline and watcher.poll() is None:
            time.sleep(0.5)
        assert table.is_file(), watcher.stderr.read() if watcher.poll() is not None else "no reading in 240 s"
        assert table.read_text().splitlines()[2].split("|")[3].strip() == "2"  # the saved epoch, read at once
        assert main(["train", "--resume", str(run), "--quiet"]) == 0  # epochs 3 to 5, then the run completes
        assert watcher.wait(timeout=120) == 0  # ... and the watcher stops by itself
    finally:
        watcher.kill()
    epochs = [int(line.split("|")[3]) for line in table.read_text().splitlines()[2:]]
    assert epochs[0] == 2 and all(e % 2 == 0 for e in epochs) and len(epochs) == len(set(epochs))
