"""File locks that serialise the writers of one target (a run directory, an output folder or file).

The lock of a target ``X`` is the file ``X.lock`` beside it: an exclusive ``flock`` that the kernel releases when
its holder dies, so a stale file never blocks anyone. The file names the holder's process id; the holder removes
it on release (while still holding it, and a taker checks that the file it locked is still the one at the path),
so nothing is left behind once the write is done.

A process that already holds a target's lock may take it again (a benchmark run holds its run's lock while the
training workflow it calls writes that run): the nested taker sees its own process id in the file and goes on.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lightgode.errors import OutputError

POLL_S = 0.05
"""How often a waiting writer tries the lock again."""

WAIT_S = 300.0
"""How long a command that queues (update, tune, export, propagate) waits for another writer of its target."""


def lock_path(target: str | os.PathLike) -> Path:
    target = Path(target)
    return target.with_name(target.name + ".lock")


def _pid_in(lock: Path) -> int | None:
    try:
        return int(lock.read_text().strip())
    except (OSError, ValueError):
        return None


def pid_holder(lock: Path) -> bool:
    """Whether the process named in ``lock`` is alive, is not this one, and is a lightgode process (a command or
    a run process the benchmark spawned), for lock files written by versions that did not use ``flock``."""
    pid = _pid_in(lock)
    if pid is None or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc to tell a reused process id from the holder: assume the holder
    return b"lightgode" in cmdline or b"multiprocessing.spawn" in cmdline


def try_acquire(lock: Path) -> int | None:
    """Take ``lock``: an exclusive ``flock``; returns the open descriptor, or None when another process holds it."""
    import fcntl

    if pid_holder(lock):
        return None
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            current = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            current = False
        if current:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return fd
        os.close(fd)  # its holder removed the file between our open and flock: take the new one


def release(lock: Path, fd: int) -> None:
    lock.unlink(missing_ok=True)  # removed while still held, so no process can lock the old file after us
    os.close(fd)


def held_elsewhere(lock: Path) -> bool:
    """Whether another live process holds ``lock``."""
    fd = try_acquire(lock)
    if fd is None:
        return _pid_in(lock) != os.getpid()
    release(lock, fd)
    return False


@contextmanager
def target_lock(target: str | os.PathLike, *, wait_s: float = 0.0) -> Iterator[None]:
    """Hold the lock of ``target`` for the block: wait up to ``wait_s`` seconds for another writer, then a
    one-line "busy" :class:`OutputError`. The target's parent folder must exist. Re-entrant within a process."""
    lock = lock_path(target)
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fd = try_acquire(lock)
        except OSError as exc:
            raise OutputError(f"cannot lock {target}: {exc.strerror or exc}") from None
        if fd is not None:
            break
        if _pid_in(lock) == os.getpid():  # this process holds it already (an outer block)
            yield
            return
        if time.monotonic() >= deadline:
            holder = _pid_in(lock)
            raise OutputError(
                f"{target} is busy: another lightgode command"
                f"{f' (process {holder})' if holder else ''} is writing it; try again when it is done"
            )
        time.sleep(POLL_S)
    try:
        yield
    finally:
        release(lock, fd)
