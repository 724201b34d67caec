"""Matrix factorisation embeddings and the DirectAU objective (LightGODE's training, no graph)."""

from __future__ import annotations

import weakref
from collections.abc import Callable

import torch
from torch import nn

from lightgode.core.losses import directau, directau_with_grad


class RowGrads:
    """Writes row-sparse gradients into dense ``.grad`` tensors, zeroing only the rows written the step before.

    A dense ``.grad`` is what Adam needs, but clearing all of it every step costs as much as the DirectAU gradient
    itself (the tables are large, a batch touches a few hundred rows). The result equals ``grad.zero_()`` followed
    by ``index_add_``; when ``.grad`` is not the tensor written last time (first step, resumed, replaced), it is
    cleared whole.
    """

    def __init__(self) -> None:
        self._last: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def set(self, p: nn.Parameter, idx: torch.Tensor, g: torch.Tensor) -> None:
        last = self._last.get(id(p))
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        elif last is not None and last[0] is p.grad:
            p.grad.index_fill_(0, last[1], 0.0)
        else:
            p.grad.zero_()
        p.grad.index_add_(0, idx, g)
        self._last[id(p)] = (p.grad, idx)


class MFEmbeddings(nn.Module):
    """User and item embedding tables, Xavier-normal initialised (or N(0, ``init_std``) when it is > 0).

    ``E0()`` stacks them as [users; items], shape (n_users + n_items, dim), the node order of the graph.
    Subclasses define ``batch_loss(users, items)``; ``compute_grads`` runs autograd on it unless a
    subclass supplies exact gradients more cheaply.
    """

    def __init__(
        self, n_users: int, n_items: int, dim: int, *, generator: torch.Generator | None = None, init_std: float = 0.0
    ) -> None:
        super().__init__()
        self.n_users, self.n_items = n_users, n_items
        self.user = nn.Parameter(torch.empty(n_users, dim))
        self.item = nn.Parameter(torch.empty(n_items, dim))
        for w in (self.user, self.item):
            # Xavier normal for an embedding table (fan_in = rows, fan_out = dim), as torch's xavier_normal_.
            std = init_std if init_std > 0 else (2.0 / (w.shape[0] + w.shape[1])) ** 0.5
            with torch.no_grad():
                w.normal_(0.0, std, generator=generator)

    def E0(self) -> torch.Tensor:
        return torch.cat([self.user, self.item], dim=0).detach()

    def on_device(self, *idx: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Index tensors (made on the CPU) moved to the tables' device; the same tensors on the CPU."""
        device = self.user.device
        return tuple(t.to(device, non_blocking=True) for t in idx)

    def batch_loss(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def compute_grads(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Set every parameter's ``.grad`` for this batch and return the (detached) loss."""
        self.zero_grad(set_to_none=True)
        loss = self.batch_loss(users, items)
        loss.backward()
        return loss.detach()


class DirectAUMF(MFEmbeddings):
    """MF trained with alignment + gamma * uniformity on L2-normalised embeddings; no negative sampling."""

    def __init__(
        self, n_users: int, n_items: int, dim: int, gamma: float, *, generator: torch.Generator | None = None
    ) -> None:
        super().__init__(n_users, n_items, dim, generator=generator)
        self.gamma = gamma
        self.sparse_grads = False  # set by use_sparse_grads: gradients as sparse COO rows (row-sparse optimisers)
        self.row_grads = RowGrads()
        self._before_read: weakref.WeakMethod | None = None  # see use_sparse_grads

    def use_sparse_grads(self, before_read: Callable[[nn.Parameter, torch.Tensor], None] | None = None) -> None:
        """Give each step's gradient as the batch's rows only (a sparse COO tensor), for a row-sparse optimiser.

        ``before_read(param, rows)``, a bound method, is called before a batch's rows are read
        (``lightgode.core.optim.RowAdam.catch_up``); it is held weakly, so the model does not keep a finished
        training's optimiser state alive.
        """
        self.sparse_grads = True
        self._before_read = weakref.WeakMethod(before_read) if before_read is not None else None

    def batch_loss(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        users, items = self.on_device(users, items)
        return directau(self.user[users], self.item[items], self.gamma)

    def compute_grads(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        # Same gradient as autograd on batch_loss, without allocating a fresh dense gradient each step.
        users, items = self.on_device(users, items)
        self.before_reading(users, items)
        # index_select: a few times cheaper than advanced indexing for a batch of rows on a CPU
        loss, g_u, g_i = directau_with_grad(
            self.user.detach().index_select(0, users), self.item.detach().index_select(0, items), self.gamma
        )
        self.set_row_grads(users, items, g_u, g_i)
        return loss

    def before_reading(self, users: torch.Tensor, items: torch.Tensor) -> None:
        """Call before reading a batch's rows to compute its gradient (lets a row-sparse optimiser catch up)."""
        before_read = self._before_read() if self._before_read is not None else None
        if before_read is not None:
            before_read(self.user, users)
            before_read(self.item, items)

    def set_row_grads(self, users: torch.Tensor, items: torch.Tensor, g_u: torch.Tensor, g_i: torch.Tensor) -> None:
        """Set ``.grad`` from the gradients of the batch's rows (repeated rows add up)."""
        for p, idx, g in ((self.user, users, g_u), (self.item, items, g_i)):
            if self.sparse_grads:  # repeated rows are summed when the optimiser coalesces
                p.grad = torch.sparse_coo_tensor(idx.unsqueeze(0), g, p.shape, check_invariants=False)
            else:
                self.row_grads.set(p, idx, g)
