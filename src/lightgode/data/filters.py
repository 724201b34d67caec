"""Iterative k-core filtering."""

from __future__ import annotations

import logging
import numbers

import numpy as np

from lightgode.data.interactions import Interactions
from lightgode.errors import ConfigError, DataError

log = logging.getLogger(__name__)


def filter_kcore(inter: Interactions, k_user: int = 5, k_item: int = 5) -> Interactions:
    """Keep the largest sub-dataset where every user has >= ``k_user`` and every item >= ``k_item`` rows.

    Users and items below their threshold are removed repeatedly until nothing changes (a fixpoint), since
    removing one side can push the other below its threshold. ``k <= 0`` disables that side.

    Parameters
    ----------
    inter : Interactions
    k_user, k_item : int

    Returns
    -------
    Interactions
        The remaining rows in their original order, re-indexed contiguously (``compact``).

    Raises
    ------
    ConfigError
        A threshold that is not an integer.
    DataError
        Nothing remains.
    """
    for name, k in (("k_user", k_user), ("k_item", k_item)):
        if isinstance(k, bool) or not isinstance(k, numbers.Integral):
            raise ConfigError(f"{name} must be an integer, got {k!r}")
    keep = np.ones(len(inter), dtype=bool)
    rounds = 0
    while True:
        u_cnt = np.bincount(inter.users[keep], minlength=inter.n_users)
        i_cnt = np.bincount(inter.items[keep], minlength=inter.n_items)
        ok = keep & (u_cnt[inter.users] >= k_user) & (i_cnt[inter.items] >= k_item)
        rounds += 1
        if np.array_equal(ok, keep):
            break
        keep = ok
    if not keep.any():
        raise DataError(
            f"the k-core filter (k_user={k_user}, k_item={k_item}) left no interactions of {len(inter)}; lower k"
        )
    out = inter.select(keep).compact()
    log.info(
        "k-core (k_user=%d, k_item=%d): %d rounds; kept %d of %d rows, %d of %d users, %d of %d items",
        k_user,
        k_item,
        rounds,
        len(out),
        len(inter),
        out.n_users,
        inter.n_users,
        out.n_items,
        inter.n_items,
    )
    return out
