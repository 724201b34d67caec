"""Named datasets and where they are found."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError
from .interactions import Interactions, from_pairs
from .readers import read_interactions, read_lightgcn

DATASETS = {
    "amazon-beauty": ("amazon-beauty/Beauty.txt",),
    "amazon-toys-games": ("amazon-toys-games/Toys_and_Games.txt",),
    "gowalla": ("gowalla/train.txt", "gowalla/test.txt"),
}
BUNDLED = Path(__file__).resolve().parents[1] / "bundled"


def candidate_dirs(data_dir=None, env_data_dir=None) -> list[Path]:
    repo_shared = Path(__file__).resolve().parents[3].parent / "shared" / "datasets"
    dirs = [data_dir, env_data_dir, Path.cwd().parent / "shared" / "datasets", repo_shared]
    return [Path(d) for d in dirs if d]


def find_files(name: str, data_dir=None, env_data_dir=None) -> list[Path]:
    for d in candidate_dirs(data_dir, env_data_dir):
        files = [d / f for f in DATASETS[name]]
        if all(f.is_file() for f in files):
            return files
    if name == "amazon-beauty" and (BUNDLED / "amazon-beauty.txt.gz").is_file():
        return [BUNDLED / "amazon-beauty.txt.gz"]
    raise DataError(f"dataset {name} not found; put it under --data-dir or $LIGHTGODE_DATA")


def load_dataset(name_or_path: str, *, given_split: bool = False, data_dir=None, env_data_dir=None,
                 fmt: str = "auto", **options):
    """Interactions of a named dataset or a file; gowalla with ``given_split`` gives (train, test)."""
    if name_or_path not in DATASETS:
        if not Path(name_or_path).exists():
            raise DataError(f"unknown dataset {name_or_path!r}: not a file; known names: {', '.join(DATASETS)}")
        return read_interactions(name_or_path, fmt, **options)
    files = find_files(name_or_path, data_dir, env_data_dir)
    if len(files) == 1:
        return read_lightgcn(files[0])
    parts = [read_lightgcn(f) for f in files]
    users = np.concatenate([p.user_ids[p.users] for p in parts])
    items = np.concatenate([p.item_ids[p.items] for p in parts])
    both = from_pairs(users, items)
    if not given_split:
        return both
    n_train = len(parts[0])
    # from_pairs keeps first occurrences in order, so the first n_train rows are the train file's
    train = both.select(np.arange(n_train))
    test = both.select(np.arange(n_train, len(both)))
    return train, test
