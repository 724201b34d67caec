"""LightGCN (He et al., SIGIR 2020): BPR with L propagation layers inside every training step.

E(l+1) = Â E(l) over the normalised user-item graph, final embeddings the layer mean (E(0) + ... + E(L)) / (L + 1),
BPR on the final embeddings plus L2 on the batch's layer-0 rows. The sparse product's backward pass uses Â's
symmetry (the gradient of Â X is Â G), one sparse CSR product per layer each way.

A training step needs the final embeddings of the batch's rows only, and its gradient starts on those rows: the
last forward product and the first backward product use Â's batch rows alone (about a sixth of Â's non-zeros
for a 2,048-pair batch on Gowalla), so a step costs about 2L - 2 full products instead of 2L. That restriction
goes through scipy on the CPU; on another device (a GPU) a step is autograd over the full products, the same
gradient.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from lightgode.core.graph import normalized_adjacency, to_torch
from lightgode.core.losses import bpr
from lightgode.data.interactions import Interactions
from lightgode.models.bpr import BPRMF, MFBPR, NegativeSampler, bpr_reg_loss


class _SymmetricSpMM(torch.autograd.Function):
    """Y = A X for a symmetric sparse A; dL/dX = A dL/dY."""

    @staticmethod
    def forward(ctx, A: torch.Tensor, X: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.A = A
        return A @ X

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        return None, ctx.A @ grad


def layer_mean(A_hat: torch.Tensor, E0: torch.Tensor, layers: int) -> torch.Tensor:
    """(E0 + Â E0 + ... + Â^L E0) / (L + 1), differentiable in E0. Shapes: A_hat (N, N) sparse, E0 (N, d)."""
    total, E = E0, E0
    for _ in range(layers):
        E = _SymmetricSpMM.apply(A_hat, E)
        total = total + E
    return total / (layers + 1)


class LightGCNModule(BPRMF):
    """Embedding tables trained through ``layers`` rounds of propagation on ``A_hat`` (torch sparse CSR)."""

    def __init__(
        self,
        n_users: int,
        n_items: int,
        dim: int,
        reg: float,
        sampler: NegativeSampler,
        A_hat: torch.Tensor,
        layers: int,
        *,
        generator: torch.Generator,
        init_std: float = 0.0,
    ) -> None:
        super().__init__(n_users, n_items, dim, reg, sampler, generator=generator, init_std=init_std)
        self.A_hat, self.layers = A_hat, layers
        # The same matrix as scipy CSR (shared memory) for the batch-row products of compute_grads (CPU only).
        self._A_sp = (
            sp.csr_matrix(
                (A_hat.values().numpy(), A_hat.col_indices().numpy(), A_hat.crow_indices().numpy()),
                shape=tuple(A_hat.shape),
            )
            if A_hat.device.type == "cpu"
            else None
        )

    def batch_loss(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        neg = self.sampler.sample(users, self.generator)  # on the CPU, from the CPU's generator
        users, items, neg = self.on_device(users, items, neg)
        E = layer_mean(self.A_hat, torch.cat([self.user, self.item], dim=0), self.layers)
        nu = self.n_users
        u, p, n = E[users], E[nu + items], E[nu + neg]
        return bpr((u * p).sum(1), (u * n).sum(1)) + bpr_reg_loss(
            self.user[users], self.item[items], self.item[neg], self.reg
        )

    def compute_grads(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """The gradient of ``batch_loss`` by hand. Tested against autograd.

        Forward: layers 1..L-1 in full, layer L on the batch's rows S only (Â[S] E(L-1)). The BPR terms' row
        gradients G live on S; the pull-back (G + Â G + ... + Â^L G) / (L + 1) by Horner's rule starts with
        Â G = Â[S]^T G[S] (Â symmetric), then L - 1 full products.
        """
        if self._A_sp is None:  # Â (and so the tables) on another device than the CPU
            return super().compute_grads(users, items)  # autograd through batch_loss: the same gradient
        neg = self.sampler.sample(users, self.generator)
        nu, L = self.n_users, self.layers
        with torch.no_grad():
            E0 = torch.cat([self.user, self.item], dim=0)
            pi, ni = nu + items, nu + neg
            S, inv = torch.unique(torch.cat([users, pi, ni]), return_inverse=True)
            b = users.shape[0]
            iu, ip, ineg = inv[:b], inv[b : 2 * b], inv[2 * b :]
            A_S = self._A_sp[S.numpy()] if L > 0 else None
            E, total = E0, E0[S]
            for layer in range(1, L + 1):
                if layer < L:
                    E = self.A_hat @ E
                    total = total + E[S]
                else:
                    total = total + torch.from_numpy(np.asarray(A_S @ E.numpy()))
            E_S = total / (L + 1)
            u, p, n = E_S[iu], E_S[ip], E_S[ineg]
            x = (u * (p - n)).sum(1)
            c = (-torch.sigmoid(-x) / b)[:, None]
            G_S = torch.zeros_like(E_S)
            G_S.index_add_(0, iu, c * (p - n))
            G_S.index_add_(0, ip, c * u)
            G_S.index_add_(0, ineg, -c * u)
            if L > 0:
                acc = torch.from_numpy(np.asarray(A_S.T @ G_S.numpy()))
                acc[S] += G_S
                for _ in range(L - 1):
                    acc = self.A_hat @ acc
                    acc[S] += G_S
            else:
                acc = torch.zeros_like(E0)
                acc[S] = G_S
            grad = acc.div_(L + 1)
            u0, p0, n0 = E0[users], E0[pi], E0[ni]
            k = self.reg / b
            grad.index_add_(0, users, k * u0)
            grad.index_add_(0, pi, k * p0)
            grad.index_add_(0, ni, k * n0)
            loss = -torch.nn.functional.logsigmoid(x).mean() + 0.5 * k * (
                u0.pow(2).sum() + p0.pow(2).sum() + n0.pow(2).sum()
            )
            for param, g in ((self.user, grad[:nu]), (self.item, grad[nu:])):
                if param.grad is None:
                    param.grad = g.clone()
                else:
                    param.grad.copy_(g)
        return loss


class LightGCN(MFBPR):
    """Estimator ``lightgcn``: E0 trained with propagation in training; scores from the layer mean.

    ``baseline.layers[0]`` is L. Attributes after fit as :class:`MFBPR`, plus ``A_hat_`` (torch sparse CSR).
    ``conv_at_test=False`` scores with E0 alone (the paper's "LightGCN without convolution at test").
    """

    conv_at_test: bool = True

    @property
    def layers(self) -> int:
        return int(self.baseline.layers[0])

    def prepare_graph(self, train: Interactions) -> None:
        """Build ``A_hat_``, the normalised training graph (torch sparse CSR), for training and scoring."""
        self.A_hat_ = to_torch(normalized_adjacency(train.n_users, train.n_items, train.users, train.items))

    def _graph_to(self, device: torch.device) -> None:
        self.A_hat_ = self.A_hat_.to(device)

    def training_module(self, train: Interactions, device: torch.device = torch.device("cpu")) -> torch.nn.Module:
        """The trainable tables with the propagation layers on ``device`` (call :meth:`prepare_graph` first)."""
        gen = torch.Generator().manual_seed(self.seed)
        return LightGCNModule(
            train.n_users,
            train.n_items,
            self.train_config.dim,
            self.baseline.reg,
            NegativeSampler(train),
            self.A_hat_.to(device),
            self.layers,
            generator=gen,
            init_std=self.baseline.init_std,
        ).to(device)

    def _final_embeddings(self) -> torch.Tensor:
        if not self.conv_at_test:
            return self.E0_
        with torch.no_grad():
            return layer_mean(self.A_hat_, self.E0_, self.layers)
