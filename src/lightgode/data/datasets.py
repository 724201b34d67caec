"""Named datasets: where their files are found and how they are loaded.

A name is looked up in order: the ``data_dir`` argument, ``env_data_dir`` (the CLI passes
``$LIGHTGODE_DATA``; library code never reads the environment), ``../shared/datasets`` from the working
directory, ``../shared/datasets`` beside the repository of this package, and finally the copy bundled with
the package (Amazon-Beauty only). In each folder the files are looked for at their paths in ``DATASETS``
(``amazon-beauty/Beauty.txt``) and, so that a dataset's own folder works too, by file name alone.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from lightgode.data.interactions import Interactions, as_ids
from lightgode.data.readers import first_rows, index_int_pairs, lightgcn_arrays, read_interactions, read_lightgcn
from lightgode.errors import ConfigError, DataError

log = logging.getLogger(__name__)

DATASETS: dict[str, str | tuple[str, str]] = {
    "amazon-beauty": "amazon-beauty/Beauty.txt",
    "amazon-toys-games": "amazon-toys-games/Toys_and_Games.txt",
    "gowalla": ("gowalla/train.txt", "gowalla/test.txt"),
}
BUNDLED = {"amazon-beauty": "amazon-beauty.txt.gz"}


def unknown_dataset(name: str) -> str | None:
    """Why ``name`` names no dataset (neither a known name nor an existing path), or None when it does."""
    if name in DATASETS or Path(name).exists():
        return None
    return f"unknown dataset {name!r}: neither a known name ({', '.join(DATASETS)}) nor an existing file"


def bundled_dir() -> Path:
    """The folder of the data files shipped inside the package."""
    return Path(__file__).resolve().parents[1] / "bundled"


def _relative_files(name: str) -> tuple[str, ...]:
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; known names: {', '.join(DATASETS)}")
    rel = DATASETS[name]
    return (rel,) if isinstance(rel, str) else tuple(rel)


def search_dirs(data_dir=None, env_data_dir=None) -> list[Path]:
    """The folders searched for named datasets, in order (the bundled copy comes after them)."""
    repo_root = Path(__file__).resolve().parents[3]
    dirs = [data_dir, env_data_dir, Path.cwd() / ".." / "shared" / "datasets", repo_root.parent / "shared" / "datasets"]
    return [Path(d) for d in dirs if d is not None and str(d) != ""]


def _locate(name: str, data_dir=None, env_data_dir=None) -> tuple[Path, tuple[Path, ...]] | None:
    rel = _relative_files(name)
    for d in search_dirs(data_dir, env_data_dir):
        for files in (tuple(d / r for r in rel), tuple(d / Path(r).name for r in rel)):
            if all(f.is_file() for f in files):
                return d, files
    if name in BUNDLED and (bundled_dir() / BUNDLED[name]).is_file():
        return bundled_dir(), (bundled_dir() / BUNDLED[name],)
    return None


def find_data_dir(name: str, data_dir=None, env_data_dir=None) -> Path | None:
    """The first folder (see the module docstring) that holds dataset ``name``, or None.

    The bundled copy's folder is returned last, for names that have one.

    Raises
    ------
    DataError
        ``name`` is not a known dataset.
    """
    found = _locate(name, data_dir, env_data_dir)
    return None if found is None else found[0]


def dataset_files(name: str, data_dir=None, env_data_dir=None) -> tuple[Path, ...]:
    """The files of dataset ``name``: one file, or (train, test) for a dataset with a fixed split."""
    found = _locate(name, data_dir, env_data_dir)
    if found is None:
        where = ", ".join(str(d) for d in search_dirs(data_dir, env_data_dir))
        raise DataError(
            f"dataset {name!r} not found (looked in {where}); pass data_dir (--data-dir) or set "
            f"$LIGHTGODE_DATA to the folder holding {', '.join(_relative_files(name))}"
        )
    if found[0] == bundled_dir():
        log.info("dataset %s: using the bundled copy %s", name, found[1][0])
    return found[1]


def _interactions(user_ids, item_ids, u: np.ndarray, i: np.ndarray) -> Interactions:
    keep = first_rows(u, i, len(item_ids))
    if len(keep) < len(u):
        log.info("dropped %d duplicate (user, item) rows", len(u) - len(keep))
    return Interactions(user_ids, item_ids, u[keep].astype(np.int32), i[keep].astype(np.int32))


def _load_train_test(files: tuple[Path, ...], given_split: bool):
    (u_tr, i_tr), (u_te, i_te) = (lightgcn_arrays(f) for f in files)
    user_ids, item_ids, u, i = index_int_pairs(np.concatenate([u_tr, u_te]), np.concatenate([i_tr, i_te]))
    if not given_split:
        return _interactions(user_ids, item_ids, u, i)
    n = len(u_tr)
    train = _interactions(user_ids, item_ids, u[:n], i[:n])
    test = _interactions(user_ids, item_ids, u[n:], i[n:])
    _warn_overlap(train, test, files)
    return train, test


def _warn_overlap(train: Interactions, test: Interactions, files) -> None:
    """Warn when (user, item) pairs of the test file are also in the train file (they stay, as given)."""
    n_items = max(train.n_items, 1)
    key_tr = train.users.astype(np.int64) * n_items + train.items
    overlap = int(np.isin(test.users.astype(np.int64) * n_items + test.items, key_tr).sum())
    if overlap:
        log.warning("%d (user, item) pairs of %s are also in %s; test is kept as given", overlap, files[1], files[0])


def _shared_map(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One id map over the raw ids ``a`` then those of ``b`` not in ``a`` (first-seen order), and the index of
    each id of ``a`` and of ``b`` in it."""
    vocab = pd.Index(as_ids(a)).append(pd.Index(as_ids(b))).unique()
    return as_ids(vocab), vocab.get_indexer(as_ids(a)), vocab.get_indexer(as_ids(b))


def _on_map(inter: Interactions, user_ids, item_ids, u_pos: np.ndarray, i_pos: np.ndarray) -> Interactions:
    return Interactions(
        user_ids, item_ids, u_pos[inter.users].astype(np.int32), i_pos[inter.items].astype(np.int32), inter.timestamps
    )


def load_train_test(train_path, test_path, *, fmt: str = "auto", **reader_options) -> tuple[Interactions, Interactions]:
    """A training file and a test file of one's own, read alike and sharing their ids.

    Both files are read by ``read_interactions`` with the same ``fmt`` and ``reader_options`` (``"auto"``
    tells each file's format from its own name). The same raw id in both files is the same user (item). The
    two parts share one id map: the train file's ids in first-seen order, then the ids found only in the test
    file, as ``load_dataset(name, given_split=True)`` indexes gowalla's pair (for a LightGCN-format pair the
    result is the same). Each file keeps its rows (duplicates within a file dropped); a test pair that is also
    in train is kept, with a warning.

    Parameters
    ----------
    train_path, test_path : str or path
    fmt : str
        ``"auto"`` or one of ``lightgode.names.FORMATS``.
    **reader_options
        Options of the format's reader (``user_col``, ``item_col``, ``max_id_length``, ...), for both files.

    Returns
    -------
    (train, test) : tuple of Interactions
        Sharing ``user_ids`` and ``item_ids`` (the same arrays).

    Raises
    ------
    DataError
        A missing file (the message says which role it has), or any error of reading either file.
    ConfigError
        An unknown format, or an option its reader does not take.
    """
    for role, path in (("training", train_path), ("test", test_path)):
        if not Path(path).exists():
            raise DataError(f"{role} file not found: {path}")
    train = read_interactions(train_path, fmt, **reader_options)
    test = read_interactions(test_path, fmt, **reader_options)
    user_ids, u_tr, u_te = _shared_map(train.user_ids, test.user_ids)
    item_ids, i_tr, i_te = _shared_map(train.item_ids, test.item_ids)
    train = _on_map(train, user_ids, item_ids, u_tr, i_tr)
    test = _on_map(test, user_ids, item_ids, u_te, i_te)
    _warn_overlap(train, test, (train_path, test_path))
    return train, test


def load_dataset(
    name_or_path, *, given_split: bool = False, data_dir=None, env_data_dir=None, fmt: str = "auto", **reader_options
) -> Interactions | tuple[Interactions, Interactions]:
    """Interactions of a named dataset (``DATASETS``) or of a file (through ``read_interactions``).

    Parameters
    ----------
    name_or_path : str or path
        A name in ``DATASETS`` or the path of an interaction file.
    given_split : bool
        For a dataset with fixed train/test files (gowalla): return ``(train, test)`` sharing one id map
        (indexed over train then test), test exactly as in its file. Otherwise such a dataset comes merged
        (train rows, then test rows; a pair in both kept once).
    data_dir, env_data_dir : path, optional
        Folders searched first for named datasets (see the module docstring).
    fmt, **reader_options
        Format and options of ``read_interactions``; only for paths (named datasets are LightGCN files).

    Returns
    -------
    Interactions, or (Interactions, Interactions)
        The interactions; ``(train, test)`` with ``given_split``.

    Raises
    ------
    DataError
        An unknown name that is no existing path (the message lists the names), a dataset not found,
        ``given_split`` for data without fixed train/test files, or any error of the file itself.
    ConfigError
        Reader options or a format other than auto/lightgcn given with a dataset name.
    """
    name = str(name_or_path)
    if name not in DATASETS:
        if (problem := unknown_dataset(name)) is not None:
            raise DataError(problem)
        if given_split:
            raise DataError(
                f"given_split needs a dataset with fixed train/test files "
                f"({', '.join(n for n in DATASETS if not isinstance(DATASETS[n], str))}); "
                f"{name} is one file"
            )
        return read_interactions(name, fmt, **reader_options)
    if fmt not in ("auto", "lightgcn") or reader_options:
        given = [f"fmt={fmt!r}"] if fmt not in ("auto", "lightgcn") else []
        raise ConfigError(
            f"dataset {name} is a LightGCN file; reader settings do not apply to it: "
            f"{', '.join(given + sorted(reader_options))}"
        )
    files = dataset_files(name, data_dir, env_data_dir)
    if len(files) == 2:
        return _load_train_test(files, given_split)
    if given_split:
        raise DataError(
            f"dataset {name} has no fixed train/test files; given_split needs one of "
            f"{', '.join(n for n in DATASETS if not isinstance(DATASETS[n], str))}"
        )
    return read_lightgcn(files[0])


def load_named(
    name_or_path, *, data_dir=None, env_data_dir=None, fmt: str = "auto", **reader_options
) -> Interactions | tuple[Interactions, Interactions]:
    """``load_dataset`` with the dataset's natural shape: ``(train, test)`` for a dataset with fixed
    train/test files (gowalla), one ``Interactions`` otherwise."""
    fixed = str(name_or_path) in DATASETS and not isinstance(DATASETS[str(name_or_path)], str)
    return load_dataset(
        name_or_path, given_split=fixed, data_dir=data_dir, env_data_dir=env_data_dir, fmt=fmt, **reader_options
    )
