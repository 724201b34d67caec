"""Iterative k-core filtering."""

from __future__ import annotations

import numpy as np

from ..errors import DataError
from .interactions import Interactions


def filter_kcore(inter: Interactions, k_user: int = 5, k_item: int = 5) -> Interactions:
    """Remove users with < k_user and items with < k_item interactions until nothing changes."""
    keep = np.ones(len(inter), dtype=bool)
    while True:
        u_cnt = np.bincount(inter.users[keep], minlength=inter.n_users)
        i_cnt = np.bincount(inter.items[keep], minlength=inter.n_items)
        ok = keep & (u_cnt[inter.users] >= k_user) & (i_cnt[inter.items] >= k_item)
        if ok.sum() == keep.sum():
            break
        keep = ok
    if not keep.any():
        raise DataError(f"the {k_user}-core filter left no interactions")
    return inter.select(keep).compact()
