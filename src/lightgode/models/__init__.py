"""Model registry: every model hands user and item embeddings (or a score function) to the rest.

Each model has ``fit(train, valid=None, *, show_progress, on_epoch, checkpoint) -> self``, ``score_fn()``,
``evaluate(relevant, exclude)`` and ``result_`` (a TrainResult; no epochs for training-free models).
Every model also has ``stored_weights()`` / ``from_stored(user, item, train, cfg, ode=None)`` for the run
directory (``ode`` applies to the ODE models; the others ignore it) and, when it picks settings on validation,
``selected_`` (a config override recording the choice).
"""

from __future__ import annotations

from lightgode.core.config import RunConfig
from lightgode.core.ode import ODEConfig
from lightgode.errors import ConfigError
from lightgode.models.bpr import MFBPR
from lightgode.models.conv import MFConv
from lightgode.models.filters import BSPM, GFCF
from lightgode.models.lightgcn import LightGCN
from lightgode.models.lightgode import DirectAU, LightGODE
from lightgode.models.pop import Pop
from lightgode.names import MODEL_NAMES, TRAINING_FREE  # noqa: F401 (re-exported)

MODELS = {
    "lightgode": LightGODE,
    "directau": DirectAU,
    "pop": Pop,
    "mf-bpr": MFBPR,
    "lightgcn": LightGCN,
    "mf-conv": MFConv,
    "gf-cf": GFCF,
    "bspm": BSPM,
}
"""Every model by name. Each class has ``from_config(cfg)`` (unfitted), ``fit(...)``, ``stored_weights()`` (what the
run directory keeps) and ``from_stored(user, item, train, cfg, ode=None)`` (a fitted model read back; ``ode``
applies to the ODE models only)."""


def model_class(name: str) -> type:
    """The registry's class of model ``name``; a one-line ConfigError for an unknown name."""
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    return MODELS[name]


def build_model(cfg: RunConfig):
    """An unfitted model of ``cfg.model`` with the run's settings."""
    return model_class(cfg.model).from_config(cfg)


def model_from_weights(cfg: RunConfig, user, item, train, ode: ODEConfig | None = None):
    """A fitted model of ``cfg.model`` from its stored weights (E0 for the embedding models; zero-width for the
    training-free filters, which rebuild their operators from ``train``) and training split."""
    return model_class(cfg.model).from_stored(user, item, train, cfg, ode)


__all__ = [
    "MODELS",
    "TRAINING_FREE",
    "build_model",
    "model_class",
    "model_from_weights",
    "LightGODE",
    "DirectAU",
    "ODEConfig",
]
