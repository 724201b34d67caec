"""Training-free graph filters over the user's interaction row r (1 x n_items): GF-CF and BSPM.

Both use the normalised rating matrix R̃ = D_U^-1/2 R D_I^-1/2 and its item-item filter P̃ = R̃ᵀ R̃, applied as
(r R̃ᵀ) R̃ — two sparse products per batch of users, never the n_items x n_items matrix — and an ideal low-pass
filter P_idl = D_I^-1/2 V Vᵀ D_I^1/2 from the top ``rank`` right singular vectors V of R̃ (scipy ``svds``).

- GF-CF (Shen et al., CIKM 2021): s = r P̃ + alpha r P_idl.
- BSPM (Choi et al., SIGIR 2023), with final sharpening: blur dx/dt = x P̃ - x from r over [0, T_b];
  x0 = blurred + beta r P_idl (the ideal ODE dx/dt = x P_idl - x, one Euler step of length 1 from r);
  sharpen dx/dt = -x P̃ over [0, T_s] (Euler or RK4 fixed steps); s = x(T_s).

Nothing is trained: ``fit`` builds the operators (the SVD dominates) and picks the grid settings on validation.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

from lightgode.core.config import BaselineConfig, RunConfig
from lightgode.core.evaluate import EvalConfig, ScoreFn
from lightgode.core.graph import to_torch
from lightgode.data.interactions import Interactions
from lightgode.errors import ConfigError
from lightgode.models.base import ScoringModel, no_training_result, select_on_valid


class FilterOperators:
    """R (binary), R̃ and R̃ᵀ as torch sparse CSR, and the ideal low-pass factors (left (I, k), right (k, I))."""

    def __init__(self, train: Interactions, rank: int, seed: int) -> None:
        R = train.to_csr().astype(np.float32)
        deg_u = np.asarray(R.sum(axis=1)).ravel()
        deg_i = np.asarray(R.sum(axis=0)).ravel()
        inv_u = np.divide(1.0, np.sqrt(deg_u), out=np.zeros_like(deg_u), where=deg_u > 0)
        inv_i = np.divide(1.0, np.sqrt(deg_i), out=np.zeros_like(deg_i), where=deg_i > 0)
        Rn = (sp.diags(inv_u) @ R @ sp.diags(inv_i)).tocsr().astype(np.float32)
        self.R = R
        self.Rn = to_torch(Rn)
        self.RnT = to_torch(Rn.T.tocsr())
        k = min(int(rank), min(Rn.shape) - 1)
        if k < 1:
            raise ConfigError(f"the ideal low-pass filter needs at least 2 users and 2 items, got {Rn.shape}")
        self.rank = k
        v0 = np.random.default_rng(seed).standard_normal(min(Rn.shape))
        _, _, vt = spla.svds(Rn.astype(np.float64), k=k, v0=v0)
        self.left_np = (inv_i[:, None] * vt.T).astype(np.float32)  # D_I^-1/2 V, (n_items, k)
        self.left = torch.from_numpy(self.left_np)
        self.right = torch.from_numpy((vt * np.sqrt(deg_i)[None, :]).astype(np.float32))  # Vᵀ D_I^1/2

    def rows(self, users: torch.Tensor) -> torch.Tensor:
        """Dense training rows r of the users: (b, n_items) float32."""
        return torch.from_numpy(self.R[users.numpy()].toarray())

    def linear(self, x: torch.Tensor) -> torch.Tensor:
        """x P̃ = (x R̃ᵀ) R̃ for a dense batch x (b, n_items)."""
        return (self.RnT @ (self.Rn @ x.T.contiguous())).T

    def ideal(self, x: torch.Tensor) -> torch.Tensor:
        """x P_idl = ((x D_I^-1/2 V) Vᵀ D_I^1/2)."""
        return (x @ self.left) @ self.right

    def ideal_rows(self, users: torch.Tensor) -> torch.Tensor:
        """r P_idl for the users' own training rows r, the first product taken on the sparse rows."""
        return torch.from_numpy(np.asarray(self.R[users.numpy()] @ self.left_np)) @ self.right


class _Filter(ScoringModel):
    """Shared fit/load for the training-free filters; subclasses define the grid and the score."""

    def __init__(
        self, baseline: BaselineConfig = BaselineConfig(), eval: EvalConfig = EvalConfig(), *, seed: int = 2020
    ) -> None:
        self.baseline, self.eval_config, self.seed = baseline, eval, seed

    @classmethod
    def from_config(cls, cfg: RunConfig):
        return cls(cfg.baseline, cfg.eval, seed=cfg.seed)

    def _grid(self) -> list[dict]:
        raise NotImplementedError

    def _scores(self, users: torch.Tensor, setting: dict) -> torch.Tensor:
        raise NotImplementedError

    def fit(
        self,
        train: Interactions,
        valid: Interactions | None = None,
        *,
        show_progress: bool = False,
        on_epoch=None,
        checkpoint=None,
    ):
        """Build the operators and pick the grid setting on validation (``checkpoint`` is unused: no epochs)."""
        t0 = time.perf_counter()
        self.ops_ = FilterOperators(train, self.baseline.rank, self.seed)
        self.fit_seconds_ = time.perf_counter() - t0
        grid = self._grid()
        cands = {i: (lambda s=s: lambda users: self._scores(users, s)) for i, s in enumerate(grid)}
        self.result_ = no_training_result()
        t1 = time.perf_counter()
        best, metrics, table = select_on_valid(cands, valid, train, self.eval_config)
        self.select_seconds_ = time.perf_counter() - t1
        self.setting_ = grid[best]
        self.valid_by_setting_ = [dict(grid[i], value=v) for i, v in table.items()]
        self.selected_ = {"baseline": {k: [v] for k, v in self.setting_.items()}}
        self.result_ = no_training_result(metrics)
        return self

    def score_fn(self) -> ScoreFn:
        self._check()
        return lambda users: self._scores(users, self.setting_)

    def stored_weights(self) -> tuple[torch.Tensor, torch.Tensor, dict[str, str]]:
        """Nothing learned to keep: zero-width embeddings; loading rebuilds the operators from the split."""
        n_users, n_items = self.ops_.R.shape
        return torch.zeros(n_users, 0), torch.zeros(n_items, 0), {"format": "lightgode-training-free"}

    @classmethod
    def from_stored(cls, user: torch.Tensor, item: torch.Tensor, train: Interactions, cfg: RunConfig, ode=None):
        m = cls.from_config(cfg)
        m.ops_ = FilterOperators(train, m.baseline.rank, m.seed)
        m.setting_ = m._grid()[0]
        m.result_ = no_training_result()
        return m


class GFCF(_Filter):
    """Estimator ``gf-cf``: s = r P̃ + alpha r P_idl, alpha chosen from ``baseline.alpha`` on validation."""

    def _grid(self) -> list[dict]:
        return [{"alpha": float(a)} for a in self.baseline.alpha]

    def _scores(self, users: torch.Tensor, setting: dict) -> torch.Tensor:
        r = self.ops_.rows(users)
        out = self.ops_.linear(r)
        if setting["alpha"]:
            out = out + setting["alpha"] * self.ops_.ideal_rows(users)
        return out


def _fixed_steps(x: torch.Tensor, f, T: float, steps: int, solver: str) -> torch.Tensor:
    """Integrate dx/dt = f(x) (autonomous) from 0 to T with equal Euler or RK4 steps."""
    if T == 0:
        return x
    h = T / steps
    for _ in range(steps):
        if solver == "euler":
            x = x + h * f(x)
        else:
            k1 = f(x)
            k2 = f(x + 0.5 * h * k1)
            k3 = f(x + 0.5 * h * k2)
            k4 = f(x + h * k3)
            x = x + (h / 6.0) * (k1 + 2 * k2 + 2 * k3 + k4)
    return x


class BSPM(_Filter):
    """Estimator ``bspm``: blurring then sharpening ODEs with an ideal low-pass term (final sharpening).

    The grid is ``baseline.idl_beta`` x ``baseline.t_sharp``, chosen on validation.
    """

    def _grid(self) -> list[dict]:
        return [
            {"idl_beta": float(b), "t_sharp": float(t)} for b in self.baseline.idl_beta for t in self.baseline.t_sharp
        ]

    def _scores(self, users: torch.Tensor, setting: dict) -> torch.Tensor:
        b = self.baseline
        r = self.ops_.rows(users)
        blurred = _fixed_steps(r, lambda x: self.ops_.linear(x) - x, b.t_blur, b.steps_blur, "euler")
        x0 = blurred + setting["idl_beta"] * self.ops_.ideal_rows(users) if setting["idl_beta"] else blurred
        return _fixed_steps(x0, lambda x: -self.ops_.linear(x), setting["t_sharp"], b.steps_sharp, b.sharp_solver)


def with_setting(model: _Filter, setting: dict) -> _Filter:
    """A copy of a fitted filter scoring with another grid setting (shares the operators)."""
    over = {k: (v,) for k, v in setting.items()}
    m = type(model)(replace(model.baseline, **over), model.eval_config, seed=model.seed)
    m.ops_, m.setting_, m.result_ = model.ops_, dict(setting), model.result_
    return m
