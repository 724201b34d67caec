"""Atomic file writes: write to a temporary name in the same folder, fsync, then rename."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is fsynced and renamed onto ``path``.

    On any exception the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_png(path: str | os.PathLike, fig, dpi: int = 110) -> None:
    """Save a matplotlib figure as PNG atomically, then close it (a pyplot figure stays open until closed)."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    import matplotlib.pyplot as plt

    plt.close(fig)


def os_error_message(exc: BaseException, path: str | os.PathLike) -> str:
    """One line naming the file and the cause of a failed write (``OSError`` or safetensors' error)."""
    if isinstance(exc, OSError):
        where = exc.filename if exc.filename is not None else path
        cause = exc.strerror or str(exc) or type(exc).__name__
    else:
        where, cause = path, (str(exc).splitlines() or [type(exc).__name__])[0]
    return f"cannot write {where}: {cause}"


def is_write_error(exc: BaseException) -> bool:
    """An ``OSError``, or safetensors' own error for a failed write (it does not derive from ``OSError``)."""
    return isinstance(exc, OSError) or type(exc).__name__ == "SafetensorError"


def check_target(
    out: str | os.PathLike,
    *,
    overwrite: bool,
    kind: str = "dir",
    source: str | os.PathLike | None = None,
    same_ok: bool = False,
) -> Path:
    """Check that ``out`` can be written before any work is done; raise a one-line ``OutputError`` otherwise.

    Parameters
    ----------
    out : the folder (``kind="dir"``) or file (``kind="file"``) a command is about to write
    overwrite : whether an existing ``out`` may be replaced
    source : the run the command reads; ``out`` may not contain it, nor be it unless ``same_ok``
    same_ok : ``out`` may be ``source`` (an in-place update, replaced atomically)

    Returns ``out`` as a Path. Refused: an existing ``out`` without ``overwrite``; an ``out`` of the other kind;
    a path under a regular file; a folder this process cannot create files in; ``out`` holding ``source``.
    """
    from lightgode.errors import OutputError

    out = Path(out)
    target = out.resolve()
    if source is not None:
        src = Path(source).resolve()
        if target == src and not same_ok:
            raise OutputError(f"output {out} is the source run itself; choose another path")
        if target in src.parents:
            raise OutputError(
                f"output {out} contains the source run {source}; replacing it would delete the "
                f"source: choose another path"
            )
    in_place = source is not None and same_ok and target == Path(source).resolve()
    if out.exists() or out.is_symlink():
        if not overwrite and not in_place:
            raise OutputError(f"output {out} already exists; pass --overwrite to replace it")
        if kind == "dir" and not out.is_dir():
            raise OutputError(f"output {out} exists and is not a directory")
        if kind == "file" and out.is_dir():
            raise OutputError(f"output {out} is a directory, not a file")
    parent = out.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(f"cannot write {out}: {parent} is a regular file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".lightgode-probe.", dir=parent)
    except OSError as exc:
        raise OutputError(f"cannot write {out}: {parent} is not writable ({exc.strerror or exc})") from None
    os.close(fd)
    os.unlink(probe)
    return out


def make_parents(path: str | os.PathLike) -> list[Path]:
    """Create the missing folders above ``path``; returns those created (outermost first) for ``remove_dirs``."""
    missing = []
    parent = Path(path).absolute().parent
    while not parent.exists():
        missing.append(parent)
        parent = parent.parent
    for d in reversed(missing):
        d.mkdir(exist_ok=True)
    return list(reversed(missing))


def remove_dirs(created: list[Path]) -> None:
    """Remove the folders ``make_parents`` created, innermost first, where they are still empty."""
    for d in reversed(created):
        try:
            d.rmdir()
        except OSError:
            return


@contextmanager
def staged_file(path: str | os.PathLike, *, overwrite: bool, wait_s: float = 0.0) -> Iterator[Path]:
    """Write one output file: checked first (``check_target``), locked, written to a temporary name and renamed
    onto ``path`` when the block ends; a failed write is a one-line ``OutputError`` and leaves nothing."""
    from lightgode.errors import OutputError
    from lightgode.locks import target_lock

    path = check_target(path, overwrite=overwrite, kind="file")
    created: list[Path] = []
    done = False
    try:
        created = make_parents(path)
        with target_lock(path, wait_s=wait_s):
            check_target(path, overwrite=overwrite, kind="file")  # again, now that no other writer runs
            with atomic_path(path) as tmp:
                yield tmp
        done = True
    except BaseException as exc:
        if is_write_error(exc):
            raise OutputError(os_error_message(exc, path)) from None
        raise
    finally:
        if not done:
            remove_dirs(created)
