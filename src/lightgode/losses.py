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
