"""Checkpoints and exact resume, with a real subprocess killed by SIGKILL in the middle of training."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from lightgode.cli import main

from conftest import beauty_slice_file

ARGS = [
    "--epochs",
    "14",
    "--patience",
    "14",
    "--lr",
    "0.01",
    "--t",
    "1.0",
    "--batch-size",
    "128",
    "--threads",
    "1",
    "--quiet",
]


@pytest.fixture(scope="module")
def slice_file(tmp_path_factory):
    return beauty_slice_file(tmp_path_factory, 2500)


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory, slice_file):
    out = tmp_path_factory.mktemp("ref") / "run"
    assert main(["train", "--data", str(slice_file), "--out", str(out), *ARGS]) == 0
    return out


def _ckpt_epoch(path) -> int:
    try:
        with safe_open(str(path), framework="pt") as fh:
            return json.loads(fh.metadata()["lightgode"])["epoch"]
    except Exception:
        return 0


def _kill_after_epoch(cmd, ckpt, epoch, timeout=120.0) -> None:
    env = dict(os.environ, PYTHONHASHSEED="0")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + timeout
    try:
        while _ckpt_epoch(ckpt) < epoch:
            assert proc.poll() is None, f"training ended before it could be killed: {proc.stderr.read()!r}"
            assert time.monotonic() < deadline, "no checkpoint appeared in time"
            time.sleep(0.005)
        time.sleep(0.05)  # land inside the next epoch (or its checkpoint write)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL


def test_sigkill_then_resume_matches_uninterrupted(tmp_path, slice_file, reference_run):
    out = tmp_path / "run"
    ckpt = tmp_path / "run.ckpt" / "state.safetensors"
    cmd = [sys.executable, "-m", "lightgode", "train", "--data", str(slice_file), "--out", str(out), *ARGS]
    _kill_after_epoch(cmd, ckpt, 2)
    assert not (out / "COMPLETE").exists(), "a killed run must not look complete"
    killed_at = _ckpt_epoch(ckpt)
    assert 2 <= killed_at < 14
    # kill the resumed process too, then resume again: repeated interruptions lose nothing
    _kill_after_epoch(
        [sys.executable, "-m", "lightgode", "train", "--resume", str(out), "--quiet"], ckpt, killed_at + 2
    )
    assert main(["train", "--resume", str(out), "--quiet"]) == 0
    assert (out / "COMPLETE").is_file() and not (tmp_path / "run.ckpt").exists()
    got = json.loads((out / "metrics.json").read_text())
    want = json.loads((reference_run / "metrics.json").read_text())
    assert got == want
    a, b = load_file(str(out / "weights.safetensors")), load_file(str(reference_run / "weights.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    hist_a = (out / "history.csv").read_text().splitlines()
    hist_b = (reference_run / "history.csv").read_text().splitlines()
    assert len(hist_a) == len(hist_b) == 15


def test_existing_checkpoint_needs_resume_or_overwrite(tmp_path, slice_file, capsys):
    out = tmp_path / "run"
    (tmp_path / "run.ckpt").mkdir()
    (tmp_path / "run.ckpt" / "config.json").write_text("{}")
    assert main(["train", "--data", str(slice_file), "--out", str(out), "--quiet", "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--resume" in err


def test_resume_without_checkpoint_is_one_line_error(tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no interrupted run" in err


def test_damaged_checkpoint_is_one_line_error(tmp_path, slice_file, capsys):
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--data",
                str(slice_file),
                "--out",
                str(out),
                "--quiet",
                "--epochs",
                "1",
                "--checkpoint-every",
                "1",
            ]
        )
        == 0
    )
    # fake an interruption with a damaged state file
    ckpt = tmp_path / "run.ckpt"
    ckpt.mkdir()
    cfg = json.loads((out / "config.json").read_text())
    cfg.pop("versions")
    (ckpt / "config.json").write_text(json.dumps(cfg))
    (ckpt / "state.safetensors").write_bytes(b"\x00garbage")
    assert main(["train", "--resume", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "checkpoint" in err
