"""The user-item bipartite graph and its symmetric normalisation Â = D^-1/2 A D^-1/2."""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
import torch


def normalized_adjacency(n_users: int, n_items: int, users: np.ndarray, items: np.ndarray) -> sp.csr_matrix:
    """Â of the bipartite graph, built straight from the edge arrays as CSR.

    Nodes are users ``0..n_users-1`` followed by items ``n_users..n_users+n_items-1``. Duplicate edges
    count once. Isolated nodes get an empty row and column (no division by zero).

    Parameters
    ----------
    users, items : int arrays, shape (n_edges,)

    Returns
    -------
    scipy.sparse.csr_matrix, float32, shape (n_users + n_items, n_users + n_items), symmetric.
    """
    n = n_users + n_items
    users = np.asarray(users, dtype=np.int64)
    items = np.asarray(items, dtype=np.int64)
    # Deduplicate through a user x item CSR, then mirror.
    r = sp.csr_matrix((np.ones(len(users), dtype=np.float32), (users, items)), shape=(n_users, n_items))
    r.sum_duplicates()
    r.data[:] = 1.0
    deg_u = np.asarray(r.sum(axis=1)).ravel()
    deg_i = np.asarray(r.sum(axis=0)).ravel()
    inv_u = np.zeros_like(deg_u)
    inv_i = np.zeros_like(deg_i)
    np.divide(1.0, np.sqrt(deg_u), out=inv_u, where=deg_u > 0)
    np.divide(1.0, np.sqrt(deg_i), out=inv_i, where=deg_i > 0)
    coo = r.tocoo()
    w = (inv_u[coo.row] * inv_i[coo.col]).astype(np.float32)
    rows = np.concatenate([coo.row, coo.col + n_users])
    cols = np.concatenate([coo.col + n_users, coo.row])
    a = sp.csr_matrix((np.concatenate([w, w]), (rows, cols)), shape=(n, n), dtype=np.float32)
    a.sort_indices()
    return a


def to_torch(a: sp.csr_matrix) -> torch.Tensor:
    """A scipy CSR matrix as a torch sparse CSR tensor (float32), sharing no memory with scipy."""
    a = a.tocsr()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(
            torch.from_numpy(a.indptr.astype(np.int64)),
            torch.from_numpy(a.indices.astype(np.int64)),
            torch.from_numpy(a.data.astype(np.float32)),
            size=a.shape,
            check_invariants=False,
        )
