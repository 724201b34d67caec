"""The one canonical container of implicit feedback: id maps plus index arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from lightgode.errors import UnknownIdError


@dataclass(frozen=True)
class Interactions:
    """Deduplicated (user, item) pairs with the maps between raw ids and contiguous indices.

    Raw ids are strings (the boundary to the outside world); inside, indices are int32.
    Row order is meaningful: it is the time order (timestamps when present, else file order).

    Attributes
    ----------
    user_ids, item_ids : np.ndarray of object (Python str), shape (n_users,), (n_items,)
        Raw id of each index (``as_ids``: each id costs its own length, not the longest one's).
    users, items : np.ndarray of int32, shape (n,)
        Index of the user and the item of each interaction.
    timestamps : np.ndarray of float64, shape (n,), or None

    Readers (:func:`lightgode.read_interactions`) and ``from_pairs(users_raw, items_raw)`` build one; the three
    parts of a split share one pair of id maps.
    """

    user_ids: np.ndarray
    item_ids: np.ndarray
    users: np.ndarray
    items: np.ndarray
    timestamps: np.ndarray | None = None

    @property
    def n_users(self) -> int:
        """Number of users of the id map (some may have no interaction in this set)."""
        return int(len(self.user_ids))

    @property
    def n_items(self) -> int:
        """Number of items of the id map (some may have no interaction in this set)."""
        return int(len(self.item_ids))

    def __len__(self) -> int:
        return int(len(self.users))

    def to_csr(self) -> sp.csr_matrix:
        """The interactions as a binary user x item matrix.

        Returns
        -------
        scipy.sparse.csr_matrix, float32, shape (n_users, n_items)
            1 where the user interacted with the item.
        """
        data = np.ones(len(self.users), dtype=np.float32)
        m = sp.csr_matrix((data, (self.users, self.items)), shape=(self.n_users, self.n_items))
        m.sum_duplicates()
        m.data[:] = 1.0
        return m

    def select(self, mask_or_index: np.ndarray) -> Interactions:
        """Rows selected by a boolean mask or an index array, keeping the same id maps.

        Parameters
        ----------
        mask_or_index : np.ndarray
            bool of shape (n,), or integer row positions.

        Returns
        -------
        Interactions
        """
        ts = None if self.timestamps is None else self.timestamps[mask_or_index]
        return Interactions(self.user_ids, self.item_ids, self.users[mask_or_index], self.items[mask_or_index], ts)

    def compact(self) -> Interactions:
        """Drop users and items that have no interaction and re-index contiguously (order kept).

        Returns
        -------
        Interactions
            New id maps holding only the users and items that occur.
        """
        u_keep = np.unique(self.users)
        i_keep = np.unique(self.items)
        u_new = np.full(self.n_users, -1, dtype=np.int64)
        u_new[u_keep] = np.arange(len(u_keep))
        i_new = np.full(self.n_items, -1, dtype=np.int64)
        i_new[i_keep] = np.arange(len(i_keep))
        return Interactions(
            self.user_ids[u_keep],
            self.item_ids[i_keep],
            u_new[self.users].astype(np.int32),
            i_new[self.items].astype(np.int32),
            self.timestamps,
        )

    def user_index(self, raw_ids) -> np.ndarray:
        """Indices of raw user ids.

        Parameters
        ----------
        raw_ids : sequence of str or int, or a single id

        Returns
        -------
        np.ndarray, int64, shape (len(raw_ids),)

        Raises
        ------
        UnknownIdError
            Naming the first unknown id.
        """
        return _lookup(self.user_ids, raw_ids, "user")

    def item_index(self, raw_ids) -> np.ndarray:
        """Indices of raw item ids.

        Parameters
        ----------
        raw_ids : sequence of str or int, or a single id

        Returns
        -------
        np.ndarray, int64, shape (len(raw_ids),)

        Raises
        ------
        UnknownIdError
            Naming the first unknown id.
        """
        return _lookup(self.item_ids, raw_ids, "item")


def as_ids(values) -> np.ndarray:
    """Raw ids as a 1-D numpy object array of Python ``str``.

    Ids are kept as objects, not as a fixed-width numpy unicode array (``'<U...'``), which costs every id as
    much as the longest: with objects, memory grows with the total length of the ids. Non-str values become
    their ``str``; a single str is one id.
    """
    if isinstance(values, (pd.Series, pd.Index, pd.api.extensions.ExtensionArray)):
        arr = np.asarray(values.to_numpy(dtype=object), dtype=object)
    else:
        arr = np.asarray(values, dtype=object)
    arr = arr.reshape(-1)
    items = arr.tolist()
    if not all(type(x) is str for x in items):
        arr = np.empty(len(items), dtype=object)
        arr[:] = [str(x) for x in items]
    return arr


def show_id(raw, limit: int = 60) -> str:
    """An id quoted for a one-line message, as a plain string (never ``np.str_('...')``); a long id is cut to
    ``limit`` characters and its length given."""
    text = str(raw)
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text)} characters)"


def _lookup(vocab: np.ndarray, raw_ids, kind: str) -> np.ndarray:
    raw = as_ids(raw_ids)
    pos = pd.Index(as_ids(vocab)).get_indexer(raw) if len(vocab) else np.full(len(raw), -1)
    if (pos < 0).any():
        bad = raw[int(np.flatnonzero(pos < 0)[0])]
        raise UnknownIdError(f"unknown {kind} id {show_id(bad)}")
    return pos.astype(np.int64)


def _codes(values) -> tuple[np.ndarray, np.ndarray]:
    """(index of each value among the distinct values, the distinct values as ``as_ids``), first-seen order."""
    if isinstance(values, pd.Series) and pd.api.types.is_string_dtype(values.dtype) and not values.isna().any():
        codes, uniques = pd.factorize(values, sort=False)  # hashes the strings where they are (no copy per row)
    else:
        codes, uniques = pd.factorize(as_ids(values), sort=False)
    return codes.astype(np.int64), as_ids(uniques)


def from_pairs(users_raw, items_raw, timestamps=None) -> Interactions:
    """Build Interactions from raw id sequences, keeping first occurrences and their order.

    Ids are indexed in order of first appearance. Duplicate (user, item) pairs keep their first row.
    When timestamps are given, rows are stably sorted by time first. The ids may be any sequence (a pandas
    string Series is factorised where it is); no array of every row at the longest id's width is made.
    """
    u = users_raw if isinstance(users_raw, pd.Series) else pd.Series(as_ids(users_raw), dtype=object)
    i = items_raw if isinstance(items_raw, pd.Series) else pd.Series(as_ids(items_raw), dtype=object)
    if len(u) != len(i):
        raise ValueError(f"{len(u)} user ids but {len(i)} item ids")
    ts = None if timestamps is None else np.asarray(timestamps, dtype=np.float64)
    if ts is not None:
        order = np.argsort(ts, kind="stable")
        u, i, ts = u.iloc[order], i.iloc[order], ts[order]
    users, user_ids = _codes(u.reset_index(drop=True))
    items, item_ids = _codes(i.reset_index(drop=True))
    key = users * max(len(item_ids), 1) + items
    _, first = np.unique(key, return_index=True)
    keep = np.sort(first)
    return Interactions(
        user_ids, item_ids, users[keep].astype(np.int32), items[keep].astype(np.int32), None if ts is None else ts[keep]
    )
