"""benchmarks/checkpoint_eval.py: the metrics of a run still training, read from its last checkpoint."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lightgode.cli import main
from lightgode.config import RunConfig
from lightgode.pipeline import train_run

from conftest import beauty_slice_file, stop_at

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "checkpoint_eval.py"


@pytest.fixture(scope="module")
def data(tmp_path_factory, shared_datasets):
    return beauty_slice_file(tmp_path_factory, shared_datasets, 1500)


def test_an_interrupted_runs_checkpoint_scores_as_the_run_at_that_epoch(tmp_path, data):
    args = ["--model", "mf-bpr", "--epochs", "2", "--patience", "5", "--lr", "0.01", "--batch-size", "256",
            "--threads", "1", "--quiet"]
    whole = tmp_path / "whole"
    assert main(["train", "--data", str(data), *args, "--out", str(whole)]) == 0
    assert json.loads((whole / "train.json").read_text())["best_epoch"] == 2  # its weights are epoch 2's
    config = json.loads((whole / "config.json").read_text())
    cfg = RunConfig.from_dict({k: v for k, v in config.items() if k != "versions"})
    cfg = cfg.override({"train": {"epochs": 5}})
    cut = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):  # as epoch 3 ends, before its checkpoint: the checkpoint holds epoch 2
        train_run(cfg, cut, on_epoch=stop_at(3))
    table = tmp_path / "progress.md"
    proc = subprocess.run([sys.executable, str(SCRIPT), str(cut), "--append", str(table)], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    row = table.read_text().splitlines()[-1].split("|")
    assert row[3].strip() == "2"
    test = json.loads((whole / "metrics.json").read_text())["test"]
    assert row[6].strip() == f"{test['recall@20']:.4f} / {test['ndcg@20']:.4f}"
    assert len(table.read_text().splitlines()) == 3  # header, rule, one row; a second reading adds a row
    subprocess.run([sys.executable, str(SCRIPT), str(cut), "--append", str(table)], check=True, capture_output=True,
                   timeout=300)
    assert len(table.read_text().splitlines()) == 4
