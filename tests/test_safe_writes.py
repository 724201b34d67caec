"""Nothing lost, nothing left half-done (issue 22, items 1, 3, 4, 6): every writing command checks its target
before any work, turns OS errors into one line, serialises writers of one target, and repairs a run left between
the two renames of an in-place update.

Runs are tiny: a synthetic CSV of 60 users and 30 items, trained for two epochs at dimension 4.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lightgode.cli import main
from lightgode.errors import OutputError
from lightgode.locks import lock_path, target_lock
from lightgode.runs.store import check_complete, load_run

SRC = str(Path(__file__).resolve().parents[1] / "src")
TRAIN = ["--epochs", "2", "--dim", "4", "--kcore", "0", "--quiet", "--eval-batch-size", "64"]


def write_csv(path: Path, seed: int = 0, users: int = 60, items: int = 30, per_user: int = 8) -> Path:
    rng = np.random.default_rng(seed)
    lines = ["user,item"]
    for u in range(users):
        lines += [f"u{u},i{i}" for i in rng.choice(items, per_user, replace=False)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_csv(tmp_path_factory.mktemp("data") / "inter.csv")


@pytest.fixture(scope="module")
def base_run(tmp_path_factory, data) -> Path:
    out = tmp_path_factory.mktemp("runs") / "base"
    assert main(["train", "--data", str(data), *TRAIN, "--out", str(out)]) == 0
    return out


@pytest.fixture()
def run(base_run, tmp_path) -> Path:
    """A fresh copy of the trained run that a test may change."""
    dst = tmp_path / "work" / "run"
    shutil.copytree(base_run, dst)
    return dst


@pytest.fixture()
def new_pairs(tmp_path) -> Path:
    f = tmp_path / "new.csv"
    f.write_text("user,item\nzed,i1\nzed,i2\nu0,brand-new\n")
    return f


def snapshot(root: Path) -> dict[str, tuple[str, bytes | None, int]]:
    """Every path under ``root`` with its kind, content (files) and mode."""
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        kind = "dir" if p.is_dir() else "file"
        out[str(p.relative_to(root))] = (kind, p.read_bytes() if kind == "file" else None, st.st_mode)
    return out


def cli(argv: list[str], capsys) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    return code, err


def one_line_error(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("lightgode: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def cli_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}


def run_cli(argv: list[str], *, fsize: int | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """The CLI in a child process; ``fsize`` caps the size of any file it writes (disk full: EFBIG)."""

    def limit() -> None:
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the cap then fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    return subprocess.run(
        [sys.executable, "-m", "lightgode", *map(str, argv)],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=timeout,
        preexec_fn=limit if fsize is not None else None,
    )


# ---- item 1: update --out never deletes what is there -----------------------------------------------------------


def test_update_refuses_an_existing_folder_and_keeps_its_files(run, new_pairs, tmp_path, capsys):
    d = tmp_path / "d"
    d.mkdir()
    (d / "keep.txt").write_text("precious")
    code, err = cli(["update", run, "--interactions", new_pairs, "--out", d], capsys)
    assert code == 2 and "already exists" in one_line_error(err) and "--overwrite" in err
    assert (d / "keep.txt").read_text() == "precious" and sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["d", "new.csv", "work"]
    )
    code, err = cli(["update", run, "--interactions", new_pairs, "--out", d, "--overwrite"], capsys)
    assert code == 0
    check_complete(d)
    assert not (d / "keep.txt").exists()


def test_update_refuses_a_file_and_the_folder_holding_its_source(run, new_pairs, tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("precious")
    code, err = cli(["update", run, "--interactions", new_pairs, "--out", f, "--overwrite"], capsys)
    assert code == 2 and "not a directory" in one_line_error(err)
    assert f.read_text() == "precious"
    before = snapshot(tmp_path)
    for target in (run.parent, tmp_path):  # the source's parent, and above: replacing it deletes the source
        code, err = cli(["update", run, "--interactions", new_pairs, "--out", target, "--overwrite"], capsys)
        assert code == 2 and "contains the source run" in one_line_error(err)
    assert snapshot(tmp_path) == before
    load_run(run)


def test_update_in_place_stays_allowed(run, new_pairs, capsys):
    assert main(["update", str(run), "--interactions", str(new_pairs)]) == 0
    assert main(["update", str(run), "--interactions", str(new_pairs), "--out", str(run)]) == 0
    assert "zed" in set(load_run(run).split.train.user_ids)


# ---- item 3: a failed train leaves nothing, and the retry works -------------------------------------------------


def test_failed_train_leaves_no_checkpoint_and_the_retry_works(data, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("who,what\n1,2\n")
    out = tmp_path / "runs" / "r"
    code, err = cli(["train", "--data", bad, *TRAIN, "--out", out], capsys)
    assert code == 2
    one_line_error(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv"]  # no r, r.ckpt, r.partial, nor runs/
    assert main(["train", "--data", str(data), *TRAIN, "--out", str(out)]) == 0
    check_complete(out)
    assert not (tmp_path / "runs" / "r.ckpt").exists()


# ---- item 4: OS errors are one line, found before any work ------------------------------------------------------


def test_train_under_a_file_fails_before_reading_the_data(data, tmp_path, capsys, monkeypatch):
    import lightgode.runs.workflow as pipeline

    def no_data(*a, **k):
        raise AssertionError("the data was read before the target was checked")

    monkeypatch.setattr(pipeline, "prepare_split", no_data)
    f = tmp_path / "file"
    f.write_text("x")
    for every in ("0", "1"):
        code, err = cli(["train", "--data", data, *TRAIN, "--checkpoint-every", every, "--out", f / "run"], capsys)
        assert code == 2 and "is a regular file" in one_line_error(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_recommend_output_under_a_file_or_existing(run, tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("precious")
    code, err = cli(["recommend", run, "--all-users", "-k", "3", "--output", f / "recs.csv"], capsys)
    assert code == 2 and "is a regular file" in one_line_error(err)
    code, err = cli(["recommend", run, "--all-users", "-k", "3", "--output", f], capsys)
    assert code == 2 and "already exists" in one_line_error(err)
    assert f.read_text() == "precious"
    assert main(["recommend", str(run), "--all-users", "-k", "3", "--output", str(f), "--overwrite"]) == 0
    assert f.read_text().startswith("user,item,rank,score\n")


@pytest.mark.parametrize("fsize", [600, 2000])
def test_disk_full_during_update_is_one_line_and_leaves_nothing(run, new_pairs, tmp_path, fsize):
    out = tmp_path / "out" / "updated"
    before = snapshot(tmp_path)
    res = run_cli(["update", run, "--interactions", new_pairs, "--out", out], fsize=fsize)
    assert res.returncode == 2, res.stderr
    line = one_line_error(res.stderr)
    assert "cannot write" in line and ("File too large" in line or "too large" in line.lower()), line
    assert snapshot(tmp_path) == before


def test_disk_full_during_training_is_one_line_and_the_retry_works(data, tmp_path):
    out = tmp_path / "r"
    res = run_cli(["train", "--data", data, *TRAIN, "--out", out], fsize=1500)
    assert res.returncode == 2, res.stderr
    assert "cannot write" in one_line_error(res.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no run, no checkpoint, no staging
    res = run_cli(["train", "--data", data, *TRAIN, "--out", out])
    assert res.returncode == 0, res.stderr
    check_complete(out)


def test_safetensors_write_errors_become_one_line(run, tmp_path, monkeypatch, capsys):
    import lightgode.runs.store as artifacts

    class SafetensorError(Exception):  # safetensors' own error type does not derive from OSError
        pass

    def failing_save(*a, **k):
        raise SafetensorError("Error while serializing: IoError(No space left on device)")

    monkeypatch.setattr(artifacts, "save_file", failing_save)
    new = tmp_path / "new.csv"
    new.write_text("user,item\nzed,i1\n")
    code, err = cli(["update", run, "--interactions", new, "--out", tmp_path / "o"], capsys)
    assert code == 2 and "No space left on device" in one_line_error(err)
    assert not (tmp_path / "o").exists() and not (tmp_path / "o.partial").exists()


# ---- every writing command against every kind of bad target -----------------------------------------------------


def _make_read_only(path: Path) -> Path:
    """Make the folder ``path`` one no file can be created in, even by root (immutable attribute), or skip."""
    path.chmod(0o555)
    probe = path / "probe"
    try:
        probe.touch()
    except OSError:
        return path
    probe.unlink()
    if shutil.which("chattr") and subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode == 0:
        return path
    path.chmod(0o755)
    pytest.skip("no way to make a read-only folder here")


def _undo_read_only(path: Path) -> None:
    if shutil.which("chattr"):
        subprocess.run(["chattr", "-i", str(path)], capture_output=True)
    path.chmod(0o755)


def writing_commands(run: Path, data: Path, new_pairs: Path) -> dict[str, tuple[str, callable]]:
    """name -> (kind of target, argv for a target)."""
    emb = run.parent / "emb"
    return {
        "train": ("dir", lambda t: ["train", "--data", data, *TRAIN, "--out", t]),
        "update": ("dir", lambda t: ["update", run, "--interactions", new_pairs, "--out", t]),
        "export": ("dir", lambda t: ["export", run, "--out", t]),
        "propagate": (
            "dir",
            lambda t: [
                "propagate",
                "--split-dir",
                run / "split",
                "--user-emb",
                emb / "users.npy",
                "--item-emb",
                emb / "items.npy",
                "--out",
                t,
            ],
        ),
        "recommend": ("file", lambda t: ["recommend", run, "--all-users", "-k", "2", "--output", t]),
        "synth": ("file", lambda t: ["synth", "--users", "20", "--items", "10", "--edges", "50", "--out", t]),
        "benchmark": ("dir", lambda t: ["benchmark", "--report-only", "--docs-dir", t]),
    }


@pytest.mark.parametrize("case", ["existing-dir", "regular-file", "under-a-file", "read-only"])
def test_every_writing_command_refuses_a_bad_target_and_changes_nothing(run, data, new_pairs, tmp_path, capsys, case):
    from lightgode.cli import COMMANDS

    assert main(["export", str(run), "--which", "e0", "--out", str(run.parent / "emb")]) == 0
    (run.parent / "emb" / "user_ids.npy").unlink()  # rows follow the split's ids
    (run.parent / "emb" / "item_ids.npy").unlink()
    commands = writing_commands(run, data, new_pairs)
    area = tmp_path / "area"
    area.mkdir()
    if case == "existing-dir":
        target = area / "t"
        target.mkdir()
        (target / "keep.txt").write_text("precious")
    elif case == "regular-file":
        target = area / "t"
        target.write_text("precious")
    elif case == "under-a-file":
        (area / "f").write_text("precious")
        target = area / "f" / "t"
    else:
        (area / "ro").mkdir()
        target = _make_read_only(area / "ro") / "t"
    try:
        before, source_before = snapshot(tmp_path), snapshot(run)
        for name, (_kind, argv) in commands.items():
            if name == "benchmark" and case == "existing-dir":
                continue  # the benchmark adds to its folders by design (runs resume, the report is rewritten)
            code, err = cli(argv(target), capsys)
            assert code == 2, (name, err)
            one_line_error(err)
            assert snapshot(tmp_path) == before, name
        assert snapshot(run) == source_before
    finally:
        if case == "read-only":
            _undo_read_only(area / "ro")
    assert {"train", "update", "export", "propagate", "recommend", "synth", "benchmark"} <= set(COMMANDS)


def test_tune_in_place_refuses_a_read_only_folder(run, tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    shutil.copytree(run, ro / "run")
    before = snapshot(ro)
    _make_read_only(ro)  # the run is replaced through ro/run.partial: ro must be writable
    try:
        code, err = cli(["tune", ro / "run", "--grid", "3", "--refine", "0", "--extend", "0", "--quiet"], capsys)
        assert code == 2 and "not writable" in one_line_error(err)
    finally:
        _undo_read_only(ro)
    assert snapshot(ro) == before


# ---- item 6: concurrent writers and the crash between two renames -----------------------------------------------


def _many(argvs: list[list], timeout: int = 300) -> list[subprocess.CompletedProcess]:
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "lightgode", *map(str, a)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env(),
        )
        for a in argvs
    ]
    out = []
    for p in procs:
        so, se = p.communicate(timeout=timeout)
        out.append(subprocess.CompletedProcess(p.args, p.returncode, so, se))
    return out


def test_concurrent_in_place_updates_all_land(run, tmp_path):
    files = []
    for n in range(3):
        f = tmp_path / f"new{n}.csv"
        f.write_text("user,item\n" + "".join(f"p{n}-{k},i{k % 5}\n" for k in range(20)))
        files.append(f)
    results = _many([["update", run, "--interactions", f] for f in files])
    assert [r.returncode for r in results] == [0, 0, 0], [r.stderr for r in results]
    users = set(load_run(run).split.train.user_ids.tolist())
    assert all(f"p{n}-{k}" in users for n in range(3) for k in range(20))  # no update lost
    assert sorted(p.name for p in run.parent.iterdir()) == ["run"]  # no lock, staging or .old left


def test_concurrent_updates_of_one_target_queue_or_fail_in_one_line(run, new_pairs, tmp_path):
    out = tmp_path / "same"
    results = _many([["update", run, "--interactions", new_pairs, "--out", out]] * 2)
    assert sorted(r.returncode for r in results) == [0, 2], [r.stderr for r in results]
    failed = next(r for r in results if r.returncode == 2)
    assert "already exists" in one_line_error(failed.stderr)
    check_complete(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.csv", "same", "work"]


def test_a_busy_target_is_one_line(tmp_path):
    target = tmp_path / "t"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import sys, time; from pathlib import Path; from lightgode.locks import target_lock\n"
                f"with target_lock(Path({str(target)!r})):\n    print('held', flush=True); time.sleep(30)"
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(OutputError, match="busy"):
            with target_lock(target, wait_s=0.2):
                pass
    finally:
        holder.kill()
        holder.wait()
    with target_lock(target):  # released by the kernel when its holder died
        with target_lock(target):  # and re-entrant within one process
            assert lock_path(target).exists()
    assert not lock_path(target).exists()


def test_train_of_a_target_another_run_is_training_is_busy(data, tmp_path, capsys):
    out = tmp_path / "r"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import time; from pathlib import Path; from lightgode.locks import target_lock\n"
                f"with target_lock(Path({str(out)!r})):\n    print('held', flush=True); time.sleep(30)"
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        code, err = cli(["train", "--data", data, *TRAIN, "--out", out], capsys)
        assert code == 2 and "busy" in one_line_error(err)
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize("partial_complete", [True, False])
def test_a_run_left_between_two_renames_is_restored(run, new_pairs, tmp_path, capsys, partial_complete):
    # the state after `os.replace(RUN, RUN.old)` and before `os.replace(RUN.partial, RUN)` of an in-place update
    updated = tmp_path / "updated"
    assert main(["update", str(run), "--interactions", str(new_pairs), "--out", str(updated)]) == 0
    old, partial = run.with_name("run.old"), run.with_name("run.partial")
    os.replace(run, old)
    shutil.copytree(updated, partial)
    if not partial_complete:
        (partial / "COMPLETE").unlink()
    code, err = cli(["info", run], capsys)
    assert code == 0, err
    check_complete(run)
    assert not old.exists() and not partial.exists()
    users = set(load_run(run).split.train.user_ids.tolist())
    assert ("zed" in users) == partial_complete  # the finished update is kept; else the run as it was


def test_an_os_error_no_command_expected_is_still_one_line(monkeypatch, capsys, tmp_path):
    import lightgode.commands.info as info

    def fails(args):
        raise PermissionError(13, "Permission denied", str(tmp_path / "x"))

    monkeypatch.setattr(info, "run", fails)  # register() binds the command's run when the parser is built
    code, err = cli(["info", tmp_path], capsys)
    assert code == 2 and "Permission denied" in one_line_error(err) and str(tmp_path / "x") in err


def test_a_write_error_after_saved_epochs_keeps_the_checkpoint_for_resume(data, tmp_path, capsys, monkeypatch):
    import errno

    from lightgode.core.checkpoint import Checkpoint

    original = Checkpoint.save

    def full_after_first(self, state):
        if state.epoch >= 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(self.path))
        original(self, state)

    monkeypatch.setattr(Checkpoint, "save", full_after_first)
    out = tmp_path / "r"
    code, err = cli(["train", "--data", data, *TRAIN, "--out", out], capsys)
    line = one_line_error(err)
    assert code == 2 and "No space left on device" in line and f"--resume {out}" in line
    assert Checkpoint(tmp_path / "r.ckpt" / "state.safetensors").metadata()["epoch"] == 1
    assert not out.exists() and not (tmp_path / "r.partial").exists()
    monkeypatch.setattr(Checkpoint, "save", original)
    assert main(["train", "--resume", str(out), "--quiet"]) == 0
    check_complete(out)
    assert not (tmp_path / "r.ckpt").exists()
