"""Model registry: every model hands user and item embeddings (or a score function) to the rest."""

from __future__ import annotations

from dataclasses import replace

from ..config import RunConfig
from ..errors import ConfigError
from ..ode import ODEConfig
from .lightgode import LightGODE


def _lightgode(cfg: RunConfig) -> LightGODE:
    return LightGODE(cfg.train, cfg.ode, cfg.eval, seed=cfg.seed)


def _directau(cfg: RunConfig) -> LightGODE:
    # LightGODE's training alone: the ODE horizon is 0, so scores come from E0.
    return LightGODE(cfg.train, replace(cfg.ode, t=0.0), cfg.eval, seed=cfg.seed)


MODELS = {"lightgode": _lightgode, "directau": _directau}


def build_model(cfg: RunConfig):
    if cfg.model not in MODELS:
        raise ConfigError(f"unknown model {cfg.model!r}; choose one of {', '.join(MODELS)}")
    return MODELS[cfg.model](cfg)


__all__ = ["MODELS", "build_model", "LightGODE", "ODEConfig"]
