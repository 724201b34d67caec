"""Seeded per-user splits into train / valid / test, persisted as CSV."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..errors import ConfigError, DataError
from .interactions import Interactions


@dataclass(frozen=True)
class Split:
    """Three disjoint parts sharing one id map."""

    train: Interactions
    valid: Interactions
    test: Interactions

    def summary(self) -> dict[str, int]:
        return {"users": self.train.n_users, "items": self.train.n_items, "train": len(self.train),
                "valid": len(self.valid), "test": len(self.test)}


def _counts(n: np.ndarray, ratios) -> np.ndarray:
    """Per-user (train, valid, test) counts with RecBole's rounding (see the README)."""
    ratios = [float(r) for r in ratios]
    cnt = np.stack([(r * n).astype(np.int64) for r in ratios], axis=1)
    cnt[:, 0] = n - cnt[:, 1:].sum(axis=1)
    for i in range(1, len(ratios)):
        active = cnt[:, 0] > 1  # once a user's train count is 1 it stays there (RecBole's break)
        raise_ = active & (ratios[-i] * n > 0) & (ratios[-i] * n < 1)
        cnt[raise_, -i] += 1
        cnt[raise_, 0] -= 1
    return cnt


def _assign(inter: Interactions, order: np.ndarray, ratios) -> Split:
    """Split rows visited in ``order`` (grouped by user, in-user order meaningful) by per-user counts."""
    users = inter.users[order]
    n = np.bincount(inter.users, minlength=inter.n_users)
    cnt = _counts(n, ratios)
    starts = np.concatenate([[0], np.cumsum(n)[:-1]])
    pos = np.arange(len(order)) - starts[users]
    part = np.where(pos < cnt[users, 0], 0, np.where(pos < cnt[users, 0] + cnt[users, 1], 1, 2))
    parts = [inter.select(np.sort(order[part == k])) for k in range(3)]
    if len(parts[0]) == 0:
        raise DataError("the split left no training interactions")
    return Split(*parts)


def check_ratios(ratios) -> tuple[float, ...]:
    r = tuple(float(x) for x in ratios)
    if len(r) != 3 or any(x < 0 for x in r) or abs(sum(r) - 1) > 1e-6 or r[0] <= 0:
        raise ConfigError(f"ratios must be three shares >= 0 summing to 1 with train > 0, got {list(ratios)}")
    return r


def split_random(inter: Interactions, ratios=(0.8, 0.1, 0.1), seed: int = 2020) -> Split:
    """Per-user random split: each user's rows shuffled (seeded), then cut by RecBole's rounding."""
    ratios = check_ratios(ratios)
    rng = np.random.default_rng(seed)
    key = rng.random(len(inter))
    order = np.lexsort((key, inter.users))
    return _assign(inter, order, ratios)


def split_temporal(inter: Interactions, ratios=(0.8, 0.1, 0.1)) -> Split:
    """Per-user temporal split: earliest rows to train, latest to test (row order = time order)."""
    ratios = check_ratios(ratios)
    order = np.lexsort((np.arange(len(inter)), inter.users))
    return _assign(inter, order, ratios)


def split_leave_one_out(inter: Interactions) -> Split:
    """Last row of each user to test, the one before to valid; users with < 3 rows keep all in train."""
    order = np.lexsort((np.arange(len(inter)), inter.users))
    users = inter.users[order]
    n = np.bincount(inter.users, minlength=inter.n_users)
    starts = np.concatenate([[0], np.cumsum(n)[:-1]])
    from_end = n[users] - (np.arange(len(order)) - starts[users])  # 1 for the last row
    big = n[users] >= 3
    part = np.where(big & (from_end == 1), 2, np.where(big & (from_end == 2), 1, 0))
    return Split(*[inter.select(np.sort(order[part == k])) for k in range(3)])


def split_given(train: Interactions, test: Interactions, valid_ratio: float = 0.1, seed: int = 2020) -> Split:
    """Fixed train/test (same id maps); validation carved per user from train with the same rounding."""
    s = split_random(train, (1 - valid_ratio, valid_ratio, 0.0), seed=seed)
    return Split(s.train, Interactions(s.train.user_ids, s.train.item_ids, *(_cat(s.valid, s.test)), None), test)


def _cat(a: Interactions, b: Interactions):
    return np.concatenate([a.users, b.users]), np.concatenate([a.items, b.items])


def save_split(split: Split, directory) -> None:
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    for name, ids in (("users.txt", split.train.user_ids), ("items.txt", split.train.item_ids)):
        with atomic_path(d / name) as tmp:
            tmp.write_text("".join(f"{x}\n" for x in ids), encoding="utf-8")
    for name in ("train", "valid", "test"):
        part: Interactions = getattr(split, name)
        with atomic_path(d / f"{name}.csv") as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["user", "item"])
            w.writerows(zip(part.user_ids[part.users], part.item_ids[part.items]))


def load_split(directory) -> Split:
    d = Path(directory)
    try:
        user_ids = np.array((d / "users.txt").read_text(encoding="utf-8").splitlines(), dtype=str)
        item_ids = np.array((d / "items.txt").read_text(encoding="utf-8").splitlines(), dtype=str)
        vocab = Interactions(user_ids, item_ids, np.zeros(0, np.int32), np.zeros(0, np.int32))
        parts = []
        for name in ("train", "valid", "test"):
            with open(d / f"{name}.csv", newline="", encoding="utf-8") as fh:
                rows = list(csv.reader(fh))
            if not rows or rows[0] != ["user", "item"]:
                raise DataError(f"{d / name}.csv has no 'user,item' header")
            body = rows[1:]
            u = vocab.user_index([r[0] for r in body]) if body else np.zeros(0, np.int64)
            i = vocab.item_index([r[1] for r in body]) if body else np.zeros(0, np.int64)
            parts.append(Interactions(user_ids, item_ids, u.astype(np.int32), i.astype(np.int32)))
    except (OSError, IndexError, KeyError) as exc:
        raise DataError(f"cannot read the split in {d}: {exc}") from None
    return Split(*parts)
