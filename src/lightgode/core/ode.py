"""The post-training graph ODE dE/dt = Â E(t) + E(0), integrated from 0 to T.

It has no parameters: it acts on trained embeddings E0 = [users; items]. One Euler step gives the
reference code's E(T) = (1 + T) E0 + T Â E0. Fixed-step and adaptive solvers come from torchdiffeq; the
exact solution of the linear system comes from ``scipy.sparse.linalg.expm_multiply`` on the augmented
matrix [[Â, I], [0, 0]] acting on [E0; E0].
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch
from torchdiffeq import odeint

from lightgode.core.graph import to_torch
from lightgode.errors import ConfigError
from lightgode.fieldtypes import check_fields
from lightgode.names import ADAPTIVE_SOLVERS, FIXED_SOLVERS, SOLVERS  # noqa: F401 (re-exported)

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class ODEConfig:
    """The post-training graph ODE dE/dt = Â E(t) + E0, integrated from 0 to ``t``.

    Parameters
    ----------
    t : float
        Horizon T >= 0; 0 means E(T) = E0 (no propagation).
    solver : str
        Fixed-step euler, midpoint, rk4; adaptive dopri5, dopri8, bosh3, adaptive_heun, fehlberg2; or exact.
    steps : int
        Equal steps of a fixed-step solver.
    rtol, atol : float
        Tolerances of the adaptive solvers.

    Raises
    ------
    ConfigError
        A negative or infinite T, an unknown solver, steps < 1, tolerances <= 0.
    """

    t: float = 1.0  # integration horizon T (>= 0); 0 means E(T) = E0
    solver: str = "euler"  # one of SOLVERS
    steps: int = 1  # equal steps for fixed-step solvers
    rtol: float = 1e-7  # relative tolerance of adaptive solvers
    atol: float = 1e-9  # absolute tolerance of adaptive solvers

    def __post_init__(self) -> None:
        check_fields(self, "ode")
        if not np.isfinite(self.t) or self.t < 0:
            raise ConfigError(f"T must be a finite number >= 0, got {self.t}")
        if self.solver not in SOLVERS:
            raise ConfigError(f"unknown solver {self.solver!r}; choose one of {', '.join(SOLVERS)}")
        if int(self.steps) != self.steps or self.steps < 1:
            raise ConfigError(f"steps must be an integer >= 1, got {self.steps}")
        if self.rtol <= 0 or self.atol <= 0:
            raise ConfigError(f"rtol and atol must be > 0, got {self.rtol}, {self.atol}")


class GraphVectorField(torch.nn.Module):
    """f(t, E) = Â E + E0."""

    def __init__(self, A_hat: torch.Tensor, E0: torch.Tensor) -> None:
        super().__init__()
        self.A_hat = A_hat
        self.E0 = E0
        self.nfe = 0  # number of function evaluations, for the solver study

    def forward(self, t: torch.Tensor, E: torch.Tensor) -> torch.Tensor:
        self.nfe += 1
        return self.A_hat @ E + self.E0


def euler_one_step(A_hat: torch.Tensor, E0: torch.Tensor, T: float) -> torch.Tensor:
    """Closed form of a single Euler step: (1 + T) E0 + T Â E0."""
    return (1.0 + T) * E0 + T * (A_hat @ E0)


def propagate(A_hat: sp.csr_matrix | torch.Tensor, E0: torch.Tensor, config: ODEConfig) -> torch.Tensor:
    """Integrate the graph ODE from E(0) = E0 to E(T).

    Parameters
    ----------
    A_hat : scipy CSR or torch sparse CSR, shape (N, N)
        Normalised adjacency (``graph.normalized_adjacency``).
    E0 : torch.Tensor, float32, shape (N, d)
        Stacked user and item embeddings.
    config : ODEConfig

    Returns
    -------
    torch.Tensor, float32, shape (N, d): E(T).
    """
    if E0.ndim != 2 or E0.shape[0] != A_hat.shape[0]:
        raise ConfigError(f"embeddings have shape {tuple(E0.shape)} but the graph has {A_hat.shape[0]} nodes")
    E0 = E0.detach().to(torch.float32)
    if config.t == 0:
        return E0.clone()
    if config.solver == "exact":
        return _exact(A_hat, E0, config.t)
    A = to_torch(A_hat).to(E0.device) if sp.issparse(A_hat) else A_hat
    if config.solver == "euler" and config.steps == 1:
        return euler_one_step(A, E0, config.t)
    field = GraphVectorField(A, E0)
    t = torch.tensor([0.0, config.t], dtype=torch.float64, device=E0.device)
    with torch.no_grad():
        if config.solver in FIXED_SOLVERS:
            grid = torch.linspace(0.0, config.t, config.steps + 1, dtype=torch.float64, device=E0.device)
            out = odeint(field, E0, t, method=config.solver, options={"grid_constructor": lambda *_: grid})
        else:
            out = odeint(field, E0, t, method=config.solver, rtol=config.rtol, atol=config.atol)
    log.debug("solver %s used %d function evaluations", config.solver, field.nfe)
    return out[-1]


def _exact(A_hat, E0: torch.Tensor, T: float) -> torch.Tensor:
    """E(T) = exp(TÂ) E0 + (int_0^T exp(sÂ) ds) E0 via the augmented linear system, no dense matrices.

    scipy computes it on the CPU; the result goes back to E0's device."""
    if not sp.issparse(A_hat):
        crow, col, val = (x.cpu().numpy() for x in (A_hat.crow_indices(), A_hat.col_indices(), A_hat.values()))
        A_hat = sp.csr_matrix((val, col, crow), shape=tuple(A_hat.shape))
    n = A_hat.shape[0]
    eye = sp.identity(n, dtype=np.float64, format="csr")
    M = sp.bmat([[A_hat.astype(np.float64), eye], [None, sp.csr_matrix((n, n))]], format="csr")
    x0 = np.vstack([E0.cpu().numpy().astype(np.float64)] * 2)
    out = spla.expm_multiply(M * T, x0)
    return torch.from_numpy(out[:n].astype(np.float32)).to(E0.device)
