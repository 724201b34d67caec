"""The one canonical container of implicit feedback: id maps plus index arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from lightgode.errors import UnknownIdError


@dataclass(frozen=True)
class Interactions:
    """Deduplicated (user, item) pairs with the maps between raw ids and contiguous indices.

    Raw ids are strings (the boundary to the outside world); inside, indices are int32.
    Row order is meaningful: it is the time order (timestamps when present, else file order).

    Attributes
    ----------
    user_ids, item_ids : np.ndarray of str, shape (n_users,), (n_items,)
        Raw id of each index.
    users, items : np.ndarray of int32, shape (n,)
        Index of the user and the item of each interaction.
    timestamps : np.ndarray of float64, shape (n,), or None
    """

    user_ids: np.ndarray
    item_ids: np.ndarray
    users: np.ndarray
    items: np.ndarray
    timestamps: np.ndarray | None = None

    @property
    def n_users(self) -> int:
        return int(len(self.user_ids))

    @property
    def n_items(self) -> int:
        return int(len(self.item_ids))

    def __len__(self) -> int:
        return int(len(self.users))

    def to_csr(self) -> sp.csr_matrix:
        """Binary user x item matrix (float32, CSR)."""
        data = np.ones(len(self.users), dtype=np.float32)
        m = sp.csr_matrix((data, (self.users, self.items)), shape=(self.n_users, self.n_items))
        m.sum_duplicates()
        m.data[:] = 1.0
        return m

    def select(self, mask_or_index: np.ndarray) -> "Interactions":
        """Rows selected by a boolean mask or an index array, keeping the same id maps."""
        ts = None if self.timestamps is None else self.timestamps[mask_or_index]
        return Interactions(self.user_ids, self.item_ids, self.users[mask_or_index],
                            self.items[mask_or_index], ts)

    def compact(self) -> "Interactions":
        """Drop users and items that have no interaction and re-index contiguously (order kept)."""
        u_keep = np.unique(self.users)
        i_keep = np.unique(self.items)
        u_new = np.full(self.n_users, -1, dtype=np.int64)
        u_new[u_keep] = np.arange(len(u_keep))
        i_new = np.full(self.n_items, -1, dtype=np.int64)
        i_new[i_keep] = np.arange(len(i_keep))
        return Interactions(self.user_ids[u_keep], self.item_ids[i_keep],
                            u_new[self.users].astype(np.int32), i_new[self.items].astype(np.int32),
                            self.timestamps)

    def user_index(self, raw_ids) -> np.ndarray:
        """Indices of raw user ids; raises UnknownIdError naming the first unknown one."""
        return _lookup(self.user_ids, raw_ids, "user")

    def item_index(self, raw_ids) -> np.ndarray:
        """Indices of raw item ids; raises UnknownIdError naming the first unknown one."""
        return _lookup(self.item_ids, raw_ids, "item")


def _lookup(vocab: np.ndarray, raw_ids, kind: str) -> np.ndarray:
    raw = np.asarray([str(r) for r in np.atleast_1d(np.asarray(raw_ids, dtype=object))], dtype=str)
    order = np.argsort(vocab, kind="stable")
    sorted_vocab = vocab[order]
    pos = np.searchsorted(sorted_vocab, raw)
    pos_c = np.minimum(pos, max(len(vocab) - 1, 0))
    found = (len(vocab) > 0) & (sorted_vocab[pos_c] == raw) if len(vocab) else np.zeros(len(raw), bool)
    if not np.all(found):
        bad = raw[~found][0]
        raise UnknownIdError(f"unknown {kind} id {str(bad)!r}")
    return order[pos_c].astype(np.int64)


def from_pairs(users_raw, items_raw, timestamps=None) -> Interactions:
    """Build Interactions from raw id sequences, keeping first occurrences and their order.

    Ids are indexed in order of first appearance. Duplicate (user, item) pairs keep their first row.
    When timestamps are given, rows are stably sorted by time first.
    """
    u = np.asarray(users_raw).astype(str)
    i = np.asarray(items_raw).astype(str)
    ts = None if timestamps is None else np.asarray(timestamps, dtype=np.float64)
    if ts is not None:
        order = np.argsort(ts, kind="stable")
        u, i, ts = u[order], i[order], ts[order]
    user_ids, u_first, u_idx = np.unique(u, return_index=True, return_inverse=True)
    item_ids, i_first, i_idx = np.unique(i, return_index=True, return_inverse=True)
    # Re-rank ids by first appearance so indices follow the file.
    u_rank = np.empty(len(user_ids), dtype=np.int64)
    u_rank[np.argsort(u_first, kind="stable")] = np.arange(len(user_ids))
    i_rank = np.empty(len(item_ids), dtype=np.int64)
    i_rank[np.argsort(i_first, kind="stable")] = np.arange(len(item_ids))
    users = u_rank[u_idx.ravel()]
    items = i_rank[i_idx.ravel()]
    user_ids = user_ids[np.argsort(u_rank)]
    item_ids = item_ids[np.argsort(i_rank)]
    key = users * max(len(item_ids), 1) + items
    _, first = np.unique(key, return_index=True)
    keep = np.sort(first)
    return Interactions(user_ids, item_ids, users[keep].astype(np.int32), items[keep].astype(np.int32),
                        None if ts is None else ts[keep])
