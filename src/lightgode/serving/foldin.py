"""New users, new items and new edges without retraining: the graph ODE with one side frozen.

The ODE dE/dt = Â E(t) + E0 is bipartite: a user's row of Â reads only item rows. A new user u with items
N(u) (degree d_u = |N(u)|) therefore follows, with the item trajectories E_i(t) frozen,

    de_u/dt = sum_{i in N(u)} Â_ui E_i(t) + e_u0,       Â_ui = 1 / sqrt(d_u * d_i)

so that, for every solver,

    E_u(T) = (1 + T) e_u0 + sum_{i in N(u)} Â_ui F_i,    F = int_0^T E(t) dt  (as the solver integrates it).

One Euler step (the paper's rule) has F = T E0, hence E_u(T) = (1 + T) e_u0 + T sum_i Â_ui e_i0. With n
Euler steps h = T / n, F = h sum_{k<n} E(t_k); for rk4 and the adaptive and exact solvers F is the same
solver's integral of the item trajectory. ``trajectory_integral`` gets F for any solver by solving the
augmented system d/dt [E; F] = [Â E + E0; E] with F(0) = 0, which reproduces a fixed-step solver's E_u(T)
exactly. The same holds for a new item with users and items swapped.

The initial value e_u0 of a node that was never trained (``FOLDIN_INITS``): ``zero``; ``mean``, the mean E0
of its neighbours; ``norm_mean``, that mean rescaled to the median E0 norm of the node's own side (trained
users for a new user). For one user, any e_u0 parallel to the propagated term leaves the ranking unchanged,
so the choice matters through the mean's direction (every neighbour weighted alike, where the propagated
term weights neighbour i by 1/sqrt(d_i)) and its size relative to that term.

``add_edges`` grows the graph itself (new users, items, edges), recomputes degrees and Â and re-propagates:
for one Euler step only the rows whose Â row changed (the touched nodes and their neighbours), else fully.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from lightgode.core.graph import normalized_adjacency
from lightgode.core.ode import ODEConfig, propagate
from lightgode.errors import ConfigError

log = logging.getLogger(__name__)

FOLDIN_INITS = ("zero", "mean", "norm_mean")
ITEM_DEGREES = ("with_user", "frozen")


@dataclass(frozen=True, kw_only=True)
class FoldInConfig:
    init: str = "norm_mean"  # initial value e_u0 of a new user (FOLDIN_INITS)
    item_degree: str = "with_user"  # d_i in Â_ui: "with_user" counts the new user (d_i + 1), "frozen" does not

    def __post_init__(self) -> None:
        check_init(self.init)
        if self.item_degree not in ITEM_DEGREES:
            raise ConfigError(f"unknown item_degree {self.item_degree!r}; choose one of {', '.join(ITEM_DEGREES)}")


def check_init(init: str) -> str:
    if init not in FOLDIN_INITS:
        raise ConfigError(f"unknown fold-in initial value {init!r}; choose one of {', '.join(FOLDIN_INITS)}")
    return init


def one_step_euler(ode: ODEConfig) -> bool:
    return ode.t == 0 or (ode.solver == "euler" and ode.steps == 1)


def trajectory_integral(A_hat: sp.csr_matrix, E0: torch.Tensor, ode: ODEConfig) -> torch.Tensor:
    """F = int_0^T E(t) dt of the graph ODE, as ``ode``'s solver integrates it.

    Parameters
    ----------
    A_hat : scipy CSR (N, N); E0 : float32 tensor (N, d)

    Returns
    -------
    torch.Tensor, float32, shape (N, d)
    """
    E0 = E0.detach().to(torch.float32)
    if one_step_euler(ode):
        return ode.t * E0
    n = A_hat.shape[0]
    # X = [E; F]: dX/dt = A' X + X(0) with A' = [[Â, 0], [I, 0]] and X(0) = [E0; 0].
    aug = sp.bmat(
        [[A_hat, sp.csr_matrix((n, n), dtype=np.float32)], [sp.identity(n, dtype=np.float32, format="csr"), None]],
        format="csr",
        dtype=np.float32,
    )
    X0 = torch.cat([E0, torch.zeros_like(E0)], dim=0)
    return propagate(aug, X0, ode)[n:]


def initial_values(neighbours: sp.csr_matrix, E0_other: torch.Tensor, init: str, ref_norm: float) -> torch.Tensor:
    """e0 of never-trained nodes from their neighbours' E0.

    Parameters
    ----------
    neighbours : binary CSR (b, n_other); row j lists the neighbours of new node j
    E0_other : float32 tensor (n_other, d), E0 of the other side
    init : one of FOLDIN_INITS
    ref_norm : float, the norm ``norm_mean`` rescales to

    Returns
    -------
    torch.Tensor, float32, shape (b, d); zero rows for nodes without neighbours.
    """
    check_init(init)
    b, d = neighbours.shape[0], E0_other.shape[1]
    if init == "zero" or b == 0:
        return torch.zeros(b, d, dtype=torch.float32)
    deg = np.asarray(neighbours.sum(axis=1), dtype=np.float32).ravel()
    total = torch.from_numpy(np.asarray(neighbours.astype(np.float32) @ E0_other.numpy(), dtype=np.float32))
    mean = total / torch.from_numpy(np.maximum(deg, 1.0))[:, None]
    if init == "mean":
        return mean
    norm = mean.norm(dim=1, keepdim=True)
    return torch.where(norm > 0, mean / norm.clamp_min(1e-12) * ref_norm, mean)


def fold_in(
    neighbours: sp.csr_matrix, F_other: torch.Tensor, deg_other: np.ndarray, e0: torch.Tensor, T: float
) -> torch.Tensor:
    """E(T) of new nodes with the other side frozen: (1 + T) e0 + Â_new F_other.

    Parameters
    ----------
    neighbours : binary CSR (b, n_other)
    F_other : float32 tensor (n_other, d), the frozen side's ``trajectory_integral`` rows
    deg_other : (n_other,) degrees of the other side used in Â_new[j, i] = 1 / sqrt(d_j * deg_other[i])
    e0 : float32 tensor (b, d), initial values (``initial_values``)
    T : horizon

    Returns
    -------
    torch.Tensor, float32, shape (b, d)
    """
    nb = neighbours.tocsr().astype(np.float32)
    nb.data[:] = 1.0
    d_new = np.asarray(nb.sum(axis=1), dtype=np.float64).ravel()
    inv_new = np.divide(1.0, np.sqrt(d_new), out=np.zeros_like(d_new), where=d_new > 0)
    deg_other = np.asarray(deg_other, dtype=np.float64)
    inv_other = np.divide(1.0, np.sqrt(deg_other), out=np.zeros_like(deg_other), where=deg_other > 0)
    rows = np.repeat(np.arange(nb.shape[0]), np.diff(nb.indptr))
    a = sp.csr_matrix(
        ((inv_new[rows] * inv_other[nb.indices]).astype(np.float32), nb.indices, nb.indptr), shape=nb.shape
    )
    prop = torch.from_numpy(np.asarray(a @ F_other.numpy(), dtype=np.float32))
    return (1.0 + T) * e0.to(torch.float32) + prop


def fold_in_one(
    items: np.ndarray,
    F_other: torch.Tensor,
    deg_other: np.ndarray,
    E0_other: torch.Tensor,
    init: str,
    ref_norm: float,
    T: float,
) -> torch.Tensor:
    """``fold_in`` with ``initial_values`` for one new node with distinct neighbours ``items`` (the
    serving path: no sparse matrices). Returns a float32 tensor (d,)."""
    idx = torch.from_numpy(np.asarray(items, dtype=np.int64))
    deg = np.asarray(deg_other, dtype=np.float64)[items]
    w = np.divide(1.0, np.sqrt(len(items) * deg), out=np.zeros_like(deg), where=deg > 0)
    prop = torch.from_numpy(w.astype(np.float32)) @ F_other[idx]
    if check_init(init) == "zero" or len(items) == 0:
        return prop
    e0 = E0_other[idx].mean(dim=0)
    if init == "norm_mean":
        norm = float(e0.norm())
        e0 = e0 / norm * ref_norm if norm > 0 else e0
    return (1.0 + T) * e0 + prop


@dataclass
class PropagatedGraph:
    """A bipartite graph with its embeddings before (E0) and after (E) the ODE.

    Attributes
    ----------
    R : binary CSR (n_users, n_items), float32
    E0, E : float32 tensors (n_users + n_items, d), users first
    ode : ODEConfig used for E
    """

    R: sp.csr_matrix
    E0: torch.Tensor
    E: torch.Tensor
    ode: ODEConfig
    Rt: sp.csr_matrix | None = None  # R transposed (items x users), kept for updates; built on first use

    def transposed(self) -> sp.csr_matrix:
        if self.Rt is None:
            self.Rt = self.R.T.tocsr()
        return self.Rt

    @property
    def n_users(self) -> int:
        return self.R.shape[0]

    @property
    def n_items(self) -> int:
        return self.R.shape[1]

    @classmethod
    def build(
        cls, R: sp.csr_matrix, E0: torch.Tensor, ode: ODEConfig, E: torch.Tensor | None = None
    ) -> PropagatedGraph:
        R = _binary(R)
        if E0.shape[0] != R.shape[0] + R.shape[1]:
            raise ConfigError(f"E0 has {E0.shape[0]} rows but the graph has {R.shape[0] + R.shape[1]} nodes")
        if E is None:
            E = propagate(adjacency(R), E0, ode)
        return cls(R, E0.detach().to(torch.float32), E, ode)

    def degrees(self) -> tuple[np.ndarray, np.ndarray]:
        return (
            np.diff(self.R.indptr).astype(np.float64),
            np.bincount(self.R.indices, minlength=self.n_items).astype(np.float64),
        )

    def median_norms(self) -> tuple[float, float]:
        """Median E0 norm of users and of items (the ``norm_mean`` scale)."""
        norms = self.E0.norm(dim=1)
        u, i = norms[: self.n_users], norms[self.n_users :]
        return (float(u.median()) if len(u) else 1.0, float(i.median()) if len(i) else 1.0)


def adjacency(R: sp.csr_matrix) -> sp.csr_matrix:
    coo = R.tocoo()
    return normalized_adjacency(R.shape[0], R.shape[1], coo.row, coo.col)


def _binary(R: sp.spmatrix) -> sp.csr_matrix:
    R = sp.csr_matrix(R, dtype=np.float32)
    R.sum_duplicates()
    R.data[:] = 1.0
    R.sort_indices()
    return R


@dataclass(frozen=True)
class UpdateStats:
    new_users: int
    new_items: int
    new_edges: int  # edges not already in the graph
    recomputed_rows: int  # rows of E(T) recomputed
    mode: str  # "local" or "full"


def add_edges(
    g: PropagatedGraph,
    users: np.ndarray,
    items: np.ndarray,
    n_users: int,
    n_items: int,
    init: str = "norm_mean",
    local_fraction: float = 0.5,
) -> tuple[PropagatedGraph, UpdateStats]:
    """The graph with edges (users[j], items[j]) added and E(T) re-propagated (E0 of old nodes unchanged).

    Parameters
    ----------
    users, items : int arrays (n,), indices in the grown id space (new users are ``g.n_users .. n_users-1``,
        new items ``g.n_items .. n_items-1``)
    n_users, n_items : sizes after growing (>= the current ones)
    init : initial value of new nodes (FOLDIN_INITS), from their already-known neighbours
    local_fraction : recompute only the changed rows (one Euler step only) when they are at most this share
        of all nodes; otherwise propagate the whole graph again
    """
    check_init(init)
    users = np.asarray(users, dtype=np.int64)
    items = np.asarray(items, dtype=np.int64)
    U0, I0 = g.n_users, g.n_items
    if n_users < U0 or n_items < I0:
        raise ConfigError("a graph can only grow")
    if len(users) != len(items) or (
        len(users) and (users.min() < 0 or users.max() >= n_users or items.min() < 0 or items.max() >= n_items)
    ):
        raise ConfigError("edge indices out of range")
    R_old = g.R
    if (n_users, n_items) != R_old.shape:
        R_old = sp.csr_matrix(
            (R_old.data, R_old.indices, np.concatenate([R_old.indptr, np.full(n_users - U0, R_old.indptr[-1])])),
            shape=(n_users, n_items),
        )
    delta = _binary(sp.csr_matrix((np.ones(len(users), np.float32), (users, items)), shape=(n_users, n_items)))
    fresh = delta - delta.multiply(R_old)  # edges not already present
    fresh.eliminate_zeros()
    R = (R_old + fresh).tocsr()  # disjoint binary patterns: the sum is binary and canonical
    Rt = _grow(g.transposed(), n_items, n_users) + fresh.T.tocsr()
    d = g.E0.shape[1]
    u_norm, i_norm = g.median_norms()
    new_u = initial_values(R[U0:][:, :I0], g.E0[U0:], init, u_norm)
    new_i = initial_values(Rt[I0:][:, :U0], g.E0[:U0], init, i_norm)
    grown = n_users > U0 or n_items > I0
    E0 = torch.cat([g.E0[:U0], new_u.reshape(-1, d), g.E0[U0:], new_i.reshape(-1, d)], dim=0) if grown else g.E0
    n = n_users + n_items
    fu, fi = fresh.nonzero()
    touched_u = np.union1d(np.unique(fu), np.arange(U0, n_users))
    touched_i = np.union1d(np.unique(fi), np.arange(I0, n_items))
    aff_u = np.union1d(touched_u, Rt[touched_i].indices) if len(touched_i) else touched_u
    aff_i = np.union1d(touched_i, R[touched_u].indices) if len(touched_u) else touched_i
    n_aff = len(aff_u) + len(aff_i)
    base = dict(new_users=n_users - U0, new_items=n_items - I0, new_edges=int(fresh.nnz))
    if not one_step_euler(g.ode) or n_aff > local_fraction * n:
        E = propagate(adjacency(R), E0, g.ode)
        return PropagatedGraph(R, E0, E, g.ode, Rt), UpdateStats(**base, recomputed_rows=n, mode="full")
    T = g.ode.t
    E_old = g.E
    E = (
        torch.cat([E_old[:U0], torch.zeros(n_users - U0, d), E_old[U0:], torch.zeros(n_items - I0, d)], dim=0)
        if grown
        else E_old.clone()
    )
    if n_aff:
        deg_u = np.diff(R.indptr).astype(np.float64)
        deg_i = np.bincount(R.indices, minlength=n_items).astype(np.float64)
        inv_u = np.divide(1.0, np.sqrt(deg_u), out=np.zeros_like(deg_u), where=deg_u > 0).astype(np.float32)
        inv_i = np.divide(1.0, np.sqrt(deg_i), out=np.zeros_like(deg_i), where=deg_i > 0).astype(np.float32)
        E0u, E0i = E0[:n_users].numpy(), E0[n_users:].numpy()
        if len(aff_u):
            rows = R[aff_u] @ (E0i * inv_i[:, None])
            E[aff_u] = (1 + T) * E0[aff_u] + T * torch.from_numpy((rows * inv_u[aff_u, None]).astype(np.float32))
        if len(aff_i):
            rows = Rt[aff_i] @ (E0u * inv_u[:, None])
            idx = torch.from_numpy(aff_i + n_users)
            E[idx] = (1 + T) * E0[idx] + T * torch.from_numpy((rows * inv_i[aff_i, None]).astype(np.float32))
    return PropagatedGraph(R, E0, E, g.ode, Rt), UpdateStats(**base, recomputed_rows=n_aff, mode="local")


def _grow(m: sp.csr_matrix, n_rows: int, n_cols: int) -> sp.csr_matrix:
    """m padded with empty rows and columns to (n_rows, n_cols)."""
    if m.shape == (n_rows, n_cols):
        return m
    indptr = np.concatenate([m.indptr, np.full(n_rows - m.shape[0], m.indptr[-1])])
    return sp.csr_matrix((m.data, m.indices, indptr), shape=(n_rows, n_cols))
