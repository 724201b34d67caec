"""Per-user splits into train / valid / test, and their persistence as CSV.

Ratio splits count each user's rows exactly as RecBole does (``_calcu_split_ids``), so that published
protocols reproduce: for a user with ``n`` rows, ``cnt = [int(r * n) for r in ratios]``,
``cnt[0] = n - sum(cnt[1:])``, then for ``i = 1 .. len(ratios) - 1`` (test first, then valid): stop when
``cnt[0] <= 1``; if ``0 < ratios[-i] * n < 1``, move one row from train to part ``-i``.
"""

from __future__ import annotations

import csv
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lightgode.atomic import atomic_path
from lightgode.data.filters import filter_kcore
from lightgode.data.interactions import Interactions, as_ids, show_id
from lightgode.errors import ConfigError, DataError

log = logging.getLogger(__name__)

PARTS = ("train", "valid", "test")


def _same_vocab(a: np.ndarray, b: np.ndarray) -> bool:
    return a is b or (len(a) == len(b) and bool(np.array_equal(a, b)))


@dataclass(frozen=True)
class Split:
    """Three disjoint parts of one dataset, sharing its user and item id maps.

    Attributes
    ----------
    train, valid, test : Interactions
        Each keeps the dataset's row order; ``users`` / ``items`` index the same ``user_ids`` / ``item_ids``.
    """

    train: Interactions
    valid: Interactions
    test: Interactions

    def __post_init__(self) -> None:
        for name in ("valid", "test"):
            part = getattr(self, name)
            if not (
                _same_vocab(part.user_ids, self.train.user_ids) and _same_vocab(part.item_ids, self.train.item_ids)
            ):
                raise DataError(f"the {name} part does not share the train part's user and item id maps")

    @property
    def user_ids(self) -> np.ndarray:
        return self.train.user_ids

    @property
    def item_ids(self) -> np.ndarray:
        return self.train.item_ids

    def summary(self) -> dict[str, int]:
        """Counts: users and items of the id maps, rows of each part, users with rows in each part."""
        out = {"users": self.train.n_users, "items": self.train.n_items}
        for name in PARTS:
            part: Interactions = getattr(self, name)
            out[name] = len(part)
            out[f"{name}_users"] = int(len(np.unique(part.users)))
        return out


def check_ratios(ratios, length: int = 3) -> tuple[float, ...]:
    """Ratios as floats after checking them: ``length`` finite shares >= 0, train > 0, summing to 1 (1e-6)."""
    try:
        r = tuple(float(x) for x in ratios)
    except (TypeError, ValueError):
        raise ConfigError(f"ratios must be {length} numbers, got {ratios!r}") from None
    if len(r) != length:
        raise ConfigError(f"ratios must have {length} shares ({'/'.join(PARTS[:length])}), got {list(r)}")
    if any(not math.isfinite(x) or x < 0 for x in r):
        raise ConfigError(f"ratios must be finite and >= 0, got {list(r)}")
    if abs(sum(r) - 1.0) > 1e-6:
        raise ConfigError(f"ratios must sum to 1 (within 1e-6), got {list(r)} summing to {sum(r):.9g}")
    if r[0] <= 0:
        raise ConfigError(f"the train share must be > 0, got {list(r)}")
    return r


def ratio_counts(n: np.ndarray, ratios) -> np.ndarray:
    """Rows per part for users with ``n`` rows each, rounded as RecBole does (see the module docstring).

    Parameters
    ----------
    n : np.ndarray of int, shape (n_users,)
    ratios : sequence of float, length p

    Returns
    -------
    np.ndarray of int64, shape (n_users, p); each row sums to its ``n``.
    """
    n = np.asarray(n, dtype=np.int64)
    ratios = [float(r) for r in ratios]
    cnt = np.stack([(r * n).astype(np.int64) for r in ratios], axis=1)  # r * n in float64, then int()
    cnt[:, 0] = n - cnt[:, 1:].sum(axis=1)
    for i in range(1, len(ratios)):
        # cnt[:, 0] only decreases, so a user that hit RecBole's break stays out of every later round
        share = ratios[-i] * n
        bump = (cnt[:, 0] > 1) & (share > 0) & (share < 1)
        cnt[bump, -i] += 1
        cnt[bump, 0] -= 1
    return cnt


def _cut(inter: Interactions, order: np.ndarray, ratios) -> list[Interactions]:
    """Parts of ``inter`` when each user's rows, visited in ``order``, are cut by ``ratio_counts``.

    ``order`` lists every row once, grouped by user in ascending user index.
    """
    n = np.bincount(inter.users, minlength=inter.n_users)
    cnt = ratio_counts(n, ratios)
    bounds = np.cumsum(cnt, axis=1)  # (n_users, p): end of each part within the user's rows
    users = inter.users[order]
    pos = np.arange(len(order)) - (np.cumsum(n) - n)[users]
    part = np.zeros(len(order), dtype=np.int64)
    for k in range(len(ratios) - 1):
        part += pos >= bounds[users, k]
    return [inter.select(np.sort(order[part == k])) for k in range(len(ratios))]


def _grouped(inter: Interactions, rng: np.random.Generator | None) -> np.ndarray:
    """Row numbers grouped by user; within a user in row order, or shuffled when ``rng`` is given."""
    if rng is None:
        return np.argsort(inter.users, kind="stable")
    perm = rng.permutation(len(inter))
    return perm[np.argsort(inter.users[perm], kind="stable")]


def _non_empty(inter: Interactions) -> None:
    if len(inter) == 0:
        raise DataError("there are no interactions to split")


def _make(train: Interactions, valid: Interactions, test: Interactions) -> Split:
    if len(train) == 0:
        raise DataError("the split left no training interactions")
    split = Split(train, valid, test)
    log.info("split: %s", split.summary())
    return split


def split_random(inter: Interactions, ratios=(0.8, 0.1, 0.1), seed: int = 2020) -> Split:
    """Per-user random split: each user's rows shuffled (seeded), then cut by RecBole's counts.

    Parameters
    ----------
    inter : Interactions
    ratios : (train, valid, test) shares, >= 0, summing to 1
    seed : int
        Seed of the ``numpy.random.Generator``; the same seed gives the same split.
    """
    r = check_ratios(ratios)
    _non_empty(inter)
    return _make(*_cut(inter, _grouped(inter, np.random.default_rng(seed)), r))


def split_temporal(inter: Interactions, ratios=(0.8, 0.1, 0.1), seed: int | None = None) -> Split:
    """Per-user temporal split: RecBole's counts, earliest rows to train, latest to test.

    Row order is time order (timestamps when the reader had them, else file order). ``seed`` is unused; it is
    accepted so that every entry of ``SPLITS`` can be called alike.
    """
    r = check_ratios(ratios)
    _non_empty(inter)
    return _make(*_cut(inter, _grouped(inter, None), r))


def split_leave_one_out(inter: Interactions, seed: int | None = None) -> Split:
    """Each user's last row to test and the one before to valid; users with < 3 rows keep all in train.

    ``seed`` is unused (see ``split_temporal``).
    """
    _non_empty(inter)
    order = _grouped(inter, None)
    n = np.bincount(inter.users, minlength=inter.n_users)
    users = inter.users[order]
    from_end = np.cumsum(n)[users] - np.arange(len(order))  # 1 for a user's last row
    big = n[users] >= 3
    part = np.where(big & (from_end == 1), 2, np.where(big & (from_end == 2), 1, 0))
    return _make(*[inter.select(np.sort(order[part == k])) for k in range(3)])


def split_given(train: Interactions, test: Interactions, valid_ratio: float = 0.1, seed: int = 2020) -> Split:
    """A fixed train/test split (sharing id maps); valid carved per user from train, test left untouched.

    Each user's train rows are shuffled (seeded) and cut with RecBole's counts for the ratios
    ``(1 - valid_ratio, valid_ratio)``.
    """
    try:
        v = float(valid_ratio)
    except (TypeError, ValueError):
        raise ConfigError(f"valid_ratio must be a number in [0, 1), got {valid_ratio!r}") from None
    if not 0 <= v < 1:
        raise ConfigError(f"valid_ratio must be in [0, 1), got {valid_ratio!r}")
    if not (_same_vocab(train.user_ids, test.user_ids) and _same_vocab(train.item_ids, test.item_ids)):
        raise DataError(
            "the given train and test parts must share id maps "
            "(load them together, e.g. load_dataset(name, given_split=True))"
        )
    _non_empty(train)
    fit, valid = _cut(train, _grouped(train, np.random.default_rng(seed)), (1.0 - v, v))
    return _make(fit, valid, test)


def restrict_given(train: Interactions, test: Interactions, kcore: int = 0) -> tuple[Interactions, Interactions]:
    """A fixed train/test pair made ready for ``split_given``: train k-core filtered, test on train's users and items.

    Train keeps only the users and items it has rows of (after the k-core filter when ``kcore > 0``; test plays
    no part in it) and is re-indexed on them, order kept. A test row whose user or item is not in that train is
    dropped: first those absent from the train file, then those the k-core filter removed; each count is logged
    as a warning. Nothing else of test changes (its row order, its pairs also in train).

    Parameters
    ----------
    train, test : Interactions
        Sharing their id maps (``load_train_test``, ``load_dataset(name, given_split=True)``).
    kcore : int
        k of the k-core filter on users and items of train; 0 disables it.

    Returns
    -------
    (train, test) : tuple of Interactions
        Sharing the (new) id maps of train.

    Raises
    ------
    DataError
        Id maps not shared, or no test row left (no overlap of users and items between the files).
    """
    if not (_same_vocab(train.user_ids, test.user_ids) and _same_vocab(train.item_ids, test.item_ids)):
        raise DataError("the given train and test parts must share id maps")
    _non_empty(train)
    seen_u = np.zeros(train.n_users, dtype=bool)
    seen_u[train.users] = True
    seen_i = np.zeros(train.n_items, dtype=bool)
    seen_i[train.items] = True
    kept = train.compact() if kcore <= 0 else filter_kcore(train, kcore, kcore)
    u_pos = pd.Index(kept.user_ids).get_indexer(train.user_ids)
    i_pos = pd.Index(kept.item_ids).get_indexer(train.item_ids)
    unseen = ~(seen_u[test.users] & seen_i[test.items])
    filtered = ~unseen & ((u_pos[test.users] < 0) | (i_pos[test.items] < 0))
    if unseen.any():
        log.warning(
            "dropped %d of %d test rows whose user or item is not in the training data", int(unseen.sum()), len(test)
        )
    if filtered.any():
        log.warning(
            "dropped %d of %d test rows whose user or item the %d-core filter of the training data removed "
            "(--kcore 0 keeps the files as given)",
            int(filtered.sum()),
            len(test),
            kcore,
        )
    keep = ~(unseen | filtered)
    if not keep.any():
        raise DataError(
            f"no test row has both its user and its item in the training data (of {len(test)} test rows, "
            f"{int(unseen.sum())} are not in the training file, {int(filtered.sum())} were removed "
            f"by the k-core filter); are the ids of the two files the same?"
        )
    ts = None if test.timestamps is None else test.timestamps[keep]
    test = Interactions(
        kept.user_ids,
        kept.item_ids,
        u_pos[test.users[keep]].astype(np.int32),
        i_pos[test.items[keep]].astype(np.int32),
        ts,
    )
    return kept, test


SPLITS = {"random": split_random, "temporal": split_temporal, "loo": split_leave_one_out, "given": split_given}


# ---------------------------------------------------------------------------------------------------------------
# Persistence


def _write_vocab(path: Path, ids: np.ndarray) -> None:
    text = "".join(f"{x}\n" for x in ids.tolist())
    if text.count("\n") != len(ids):
        raise DataError(f"cannot save {path.name}: an id holds a line break")
    with atomic_path(path) as tmp:
        tmp.write_bytes(text.encode("utf-8"))


def save_split(split: Split, directory) -> None:
    """Write ``train.csv``, ``valid.csv``, ``test.csv`` (header ``user,item``, raw ids, row order) and the
    ordered id maps ``users.txt`` / ``items.txt`` (one id per line) into ``directory``, each file atomically.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    for name in PARTS:
        part: Interactions = getattr(split, name)
        with atomic_path(d / f"{name}.csv") as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(["user", "item"])
            w.writerows(zip(part.user_ids[part.users].tolist(), part.item_ids[part.items].tolist()))
    _write_vocab(d / "users.txt", split.user_ids)
    _write_vocab(d / "items.txt", split.item_ids)


def _read_vocab(path: Path) -> np.ndarray:
    try:
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read the split's id map {path}: {exc}") from None
    if text and not text.endswith("\n"):
        raise DataError(f"the split's id map {path} is truncated (no final line break)")
    ids = as_ids(text.split("\n")[:-1])
    if not pd.Index(ids).is_unique:
        raise DataError(f"the split's id map {path} lists an id twice")
    return ids


def _indices(vocab: np.ndarray, raw: pd.Series, what: str, path: Path) -> np.ndarray:
    pos = pd.Index(vocab).get_indexer(raw) if len(vocab) else np.full(len(raw), -1)
    if (pos < 0).any():
        bad = int(np.flatnonzero(pos < 0)[0])
        raise DataError(f"{path}, data row {bad + 1}: {what} {show_id(raw.iloc[bad])} is not in {what}s.txt")
    return pos.astype(np.int32)


def load_split(directory) -> Split:
    """Read a split written by ``save_split``; indices come out exactly as they were saved.

    Raises
    ------
    DataError
        A missing, truncated or inconsistent file.
    """
    d = Path(directory)
    if not d.is_dir():
        raise DataError(f"split directory not found: {d}")
    user_ids, item_ids = _read_vocab(d / "users.txt"), _read_vocab(d / "items.txt")
    parts = []
    for name in PARTS:
        path = d / f"{name}.csv"
        try:
            df = pd.read_csv(path, dtype=str, na_filter=False, keep_default_na=False, encoding="utf-8")
        except Exception as exc:  # pandas raises many unrelated kinds for a damaged file
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DataError(f"cannot read {path}: {msg}") from None
        if list(df.columns) != ["user", "item"]:
            raise DataError(f"{path} must have the header 'user,item', got {','.join(map(str, df.columns))!r}")
        users = _indices(user_ids, df["user"], "user", path)
        items = _indices(item_ids, df["item"], "item", path)
        parts.append(Interactions(user_ids, item_ids, users, items))
    return Split(*parts)
