"""Model registry: every model hands user and item embeddings (or a score function) to the rest.

Each model has ``fit(train, valid=None, *, show_progress, on_epoch, checkpoint) -> self``, ``score_fn()``,
``evaluate(relevant, exclude)`` and ``result_`` (a TrainResult; no epochs for training-free models).
Baselines also have ``stored_weights()`` / ``from_stored(user, item, train, cfg)`` for the run directory and,
when they pick settings on validation, ``selected_`` (a config override recording the choice).
"""

from __future__ import annotations

from dataclasses import replace

from lightgode.core.config import RunConfig
from lightgode.errors import ConfigError
from lightgode.core.ode import ODEConfig
from lightgode.models.bpr import MFBPR
from lightgode.models.conv import MFConv
from lightgode.models.filters import BSPM, GFCF
from lightgode.models.lightgcn import LightGCN
from lightgode.models.lightgode import LightGODE
from lightgode.models.pop import Pop
from lightgode.names import MODEL_NAMES, TRAINING_FREE  # noqa: F401 (re-exported)


def _lightgode(cfg: RunConfig) -> LightGODE:
    return LightGODE(cfg.train, cfg.ode, cfg.eval, seed=cfg.seed)


def _directau(cfg: RunConfig) -> LightGODE:
    # LightGODE's training alone: the ODE horizon is 0, so scores come from E0.
    return LightGODE(cfg.train, replace(cfg.ode, t=0.0), cfg.eval, seed=cfg.seed)


MODELS = {
    "lightgode": _lightgode,
    "directau": _directau,
    "pop": Pop.from_config,
    "mf-bpr": MFBPR.from_config,
    "lightgcn": LightGCN.from_config,
    "mf-conv": MFConv.from_config,
    "gf-cf": GFCF.from_config,
    "bspm": BSPM.from_config,
}

BASELINES = {"pop": Pop, "mf-bpr": MFBPR, "lightgcn": LightGCN, "mf-conv": MFConv, "gf-cf": GFCF, "bspm": BSPM}
"""Models whose run directory is read back through ``from_stored`` (LightGODE and DirectAU have their own)."""



def build_model(cfg: RunConfig):
    if cfg.model not in MODELS:
        raise ConfigError(f"unknown model {cfg.model!r}; choose one of {', '.join(MODELS)}")
    return MODELS[cfg.model](cfg)


__all__ = ["MODELS", "BASELINES", "TRAINING_FREE", "build_model", "LightGODE", "ODEConfig"]
