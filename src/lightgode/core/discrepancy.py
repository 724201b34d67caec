"""How far the post-training ODE moved the embeddings: E(T) against E(0), as numbers.

The paper calls the loss of quality when the ODE runs too long *embedding discrepancy*: propagated
embeddings drift from the trained ones towards the graph's smooth components. Two measures, both free of
the overall scale of E(T) (which grows roughly like 1 + T):

``cosine_distance``
    Mean over nodes of ``1 - cos(E(T)_v, E(0)_v)``, reported for users and items separately and over all
    nodes. 0 means every embedding still points where training left it; 1 means orthogonal on average.
    Nodes whose E(0) or E(T) row is zero are left out.

``uniformity``
    DirectAU's uniformity ``log mean_{i != j} exp(-2 ||x_i - x_j||^2)`` of the L2-normalised user (and,
    separately, item) embeddings, the same definition as ``losses.uniformity``. It lies in [-4, 0]; lower
    is more uniform on the sphere. The reported ``delta`` is uniformity(E(T)) - uniformity(E(0)): a
    positive delta means propagation pulled embeddings together (over-smoothing). For large tables it is
    estimated on a fixed random sample of rows (``sample`` rows, seeded), the same rows at every T.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from lightgode.core.losses import uniformity
from lightgode.errors import ConfigError


@dataclass(frozen=True, kw_only=True)
class DiscrepancyConfig:
    sample: int = 1024  # rows per side used to estimate uniformity (all rows when fewer)
    seed: int = 0  # seeds the row sample, so every T is measured on the same rows

    def __post_init__(self) -> None:
        if int(self.sample) != self.sample or self.sample < 2:
            raise ConfigError(f"sample must be an integer >= 2, got {self.sample}")


def _row_cosine(E0: torch.Tensor, E: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row ``1 - cos`` and the mask of rows where both rows are non-zero (float32 rows, float64 result)."""
    E0 = E0.to(torch.float32)
    E = E.to(torch.float32)
    n0, n1 = E0.norm(dim=1), E.norm(dim=1)
    keep = (n0 > 0) & (n1 > 0)
    cos = (E0 * E).sum(dim=1) / torch.where(keep, n0 * n1, torch.ones_like(n0))
    return (1.0 - cos.double()).clamp(0.0, 2.0), keep


def _masked_mean(x: torch.Tensor, keep: torch.Tensor) -> float:
    return float(x[keep].mean()) if bool(keep.any()) else 0.0


def cosine_distance(E0: torch.Tensor, E: torch.Tensor) -> float:
    """Mean ``1 - cos(E_v, E0_v)`` over rows where both are non-zero (0.0 when there is none).

    Parameters
    ----------
    E0, E : torch.Tensor, float, shape (N, d)
    """
    if E0.shape != E.shape:
        raise ConfigError(f"E0 has shape {tuple(E0.shape)} but E(T) has {tuple(E.shape)}")
    return _masked_mean(*_row_cosine(E0, E))


def normalized_uniformity(x: torch.Tensor) -> float:
    """``losses.uniformity`` of the L2-normalised rows of ``x`` (zero rows dropped)."""
    x = x.to(torch.float32)
    x = x[x.norm(dim=1) > 0]
    return float(uniformity(F.normalize(x, dim=1)))


@dataclass(frozen=True)
class Reference:
    """What the measures need from E(0), computed once and reused at every T."""

    n_users: int
    rows: tuple[torch.Tensor, torch.Tensor]  # sampled user rows, sampled item rows (indices into E0)
    uniformity_0: tuple[float, float]  # uniformity of the sampled users and items of E0


def reference(E0: torch.Tensor, n_users: int, config: DiscrepancyConfig = DiscrepancyConfig()) -> Reference:
    """The row samples and E(0)'s uniformity for ``discrepancy``."""
    if not 0 <= n_users <= E0.shape[0]:
        raise ConfigError(f"n_users must be in [0, {E0.shape[0]}], got {n_users}")
    sizes = (n_users, E0.shape[0] - n_users)
    rows = []
    for side, n in enumerate(sizes):
        if n <= config.sample:
            idx = torch.arange(n)
        else:
            idx = torch.randperm(n, generator=torch.Generator().manual_seed(config.seed + side))[: config.sample]
        rows.append(idx + (0 if side == 0 else n_users))
    u0 = tuple(normalized_uniformity(E0[r]) for r in rows)
    return Reference(n_users, (rows[0], rows[1]), (u0[0], u0[1]))


def discrepancy(
    E0: torch.Tensor,
    E: torch.Tensor,
    n_users: int,
    config: DiscrepancyConfig = DiscrepancyConfig(),
    ref: Reference | None = None,
) -> dict[str, float]:
    """Both measures for stacked ``[users; items]`` embeddings before (E0) and after (E) propagation.

    ``ref`` (from ``reference(E0, n_users, config)``) saves recomputing E(0)'s part when many E(T) are
    compared with the same E0.

    Returns
    -------
    dict with ``cosine_distance`` (all nodes), ``cosine_distance_users``, ``cosine_distance_items``,
    ``uniformity_users_0`` / ``uniformity_users_T`` / ``uniformity_items_0`` / ``uniformity_items_T``,
    and ``uniformity_delta`` (mean over users and items of T minus 0).
    """
    if E0.shape != E.shape or not 0 <= n_users <= E0.shape[0]:
        raise ConfigError(f"E0 {tuple(E0.shape)} and E(T) {tuple(E.shape)} must match and hold the {n_users} users")
    if ref is None or ref.n_users != n_users:
        ref = reference(E0, n_users, config)
    dist, keep = _row_cosine(E0, E)
    out = {
        "cosine_distance": _masked_mean(dist, keep),
        "cosine_distance_users": _masked_mean(dist[:n_users], keep[:n_users]),
        "cosine_distance_items": _masked_mean(dist[n_users:], keep[n_users:]),
    }
    deltas = []
    for side, name in enumerate(("users", "items")):
        uT = normalized_uniformity(E[ref.rows[side]])
        out[f"uniformity_{name}_0"], out[f"uniformity_{name}_T"] = ref.uniformity_0[side], uT
        deltas.append(uT - ref.uniformity_0[side])
    out["uniformity_delta"] = float(sum(deltas) / len(deltas))
    return out
