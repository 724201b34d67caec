"""Losses: DirectAU alignment and uniformity, BPR. One definition each."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def alignment(u: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
    """Mean squared distance between paired rows: mean_b ||u_b - i_b||^2 (rows L2-normalised)."""
    return (u - i).pow(2).sum(dim=1).mean()


def uniformity(x: torch.Tensor, t: float = 2.0) -> torch.Tensor:
    """log mean_{i<j} exp(-t ||x_i - x_j||^2) over the batch's rows as they come (duplicates count).

    Computed from the Gram matrix for unit-norm rows: ||x_i - x_j||^2 = 2 - 2 x_i . x_j, which avoids
    ``pdist``'s square roots; summing the full matrix and removing the diagonal gives twice the i<j sum.
    """
    n = x.shape[0]
    if n < 2:
        return x.new_zeros(())
    sq = (x.pow(2).sum(dim=1, keepdim=True) + x.pow(2).sum(dim=1) - 2.0 * (x @ x.T)).clamp_min(0.0)
    k = torch.exp(-t * sq)
    off_diag = k.sum() - k.diagonal().sum()
    return torch.log(off_diag / (n * (n - 1)))


def directau(u: torch.Tensor, i: torch.Tensor, gamma: float) -> torch.Tensor:
    """DirectAU loss on raw embeddings: alignment + gamma * (uniformity(u) + uniformity(i)) / 2."""
    u = F.normalize(u, dim=-1)
    i = F.normalize(i, dim=-1)
    return alignment(u, i) + gamma * (uniformity(u) + uniformity(i)) / 2


def bpr(pos_scores: torch.Tensor, neg_scores: torch.Tensor) -> torch.Tensor:
    """Bayesian personalised ranking: mean -log sigmoid(s_pos - s_neg)."""
    return -F.logsigmoid(pos_scores - neg_scores).mean()


def _uniformity_and_grad(x: torch.Tensor, t: float) -> tuple[torch.Tensor, torch.Tensor]:
    """uniformity(x) and its gradient w.r.t. x (rows unit-norm), in a handful of large tensor ops."""
    n = x.shape[0]
    if n < 2:
        return x.new_zeros(()), torch.zeros_like(x)
    # unit rows: ||x_i - x_j||^2 = 2 - 2 x_i.x_j, so K = exp(2t (x_i.x_j - 1)), built in place from the Gram matrix
    K = (x @ x.T).sub_(1.0).mul_(2.0 * t).exp_()
    K.fill_diagonal_(0.0)
    row = K.sum(dim=1, keepdim=True)
    total = row.sum()
    pairs = n * (n - 1)
    # d/dx_i log(mean_{i!=j} K_ij) = -4t / (pairs * S) * sum_j K_ij (x_i - x_j), S = total / pairs
    grad = torch.addmm(x * row, K, x, alpha=-1.0).mul_(-4.0 * t / total)
    return torch.log(total / pairs), grad


def normalize_backward(x_hat: torch.Tensor, norm: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Gradient through x_hat = x / ||x||: (g - x_hat (x_hat . g)) / ||x||."""
    return (g - x_hat * (x_hat * g).sum(dim=1, keepdim=True)) / norm


def directau_with_grad(u: torch.Tensor, i: torch.Tensor, gamma: float, t: float = 2.0
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``directau(u, i, gamma)`` and its exact gradients w.r.t. the raw rows ``u`` and ``i``.

    The same objective as :func:`directau`, differentiated by hand: it replaces some thirty small autograd
    nodes per step by about a dozen large ops, which halves the cost of a training step on a CPU.
    Tested against autograd.
    """
    with torch.no_grad():
        u_norm = u.norm(dim=1, keepdim=True).clamp_min(1e-12)
        i_norm = i.norm(dim=1, keepdim=True).clamp_min(1e-12)
        uh, ih = u / u_norm, i / i_norm
        b = u.shape[0]
        diff = uh - ih
        align = diff.pow(2).sum(dim=1).mean()
        unif_u, g_uu = _uniformity_and_grad(uh, t)
        unif_i, g_ii = _uniformity_and_grad(ih, t)
        loss = align + gamma * (unif_u + unif_i) / 2
        g_uh = (2.0 / b) * diff + (gamma / 2) * g_uu
        g_ih = (-2.0 / b) * diff + (gamma / 2) * g_ii
        return loss, normalize_backward(uh, u_norm, g_uh), normalize_backward(ih, i_norm, g_ih)
