"""lightgode: LightGODE (MF + DirectAU training, post-training graph ODE) for top-K recommendation.

The public API, from a file of interactions to recommendations (``docs/python-api.md`` walks through it)::

    import lightgode as lg

    cfg = lg.RunConfig(data=lg.DataConfig(data="interactions.csv"), train=lg.TrainConfig(epochs=20))
    summary = lg.train_run(cfg, "runs/mine")          # read, split, train, evaluate, write the run
    rec = lg.Recommender.load("runs/mine")            # serve it: raw ids in and out
    rec.recommend("some-user", k=10)

- Data: :class:`Interactions`, :func:`read_interactions` (a file), :func:`load_dataset` (a named dataset or a
  file), :func:`prepare_split` (read, k-core filter and split as a :class:`DataConfig` says).
- Settings: :class:`RunConfig` with its sections :class:`DataConfig`, :class:`TrainConfig`, :class:`ODEConfig`.
- Models: :class:`LightGODE`, the estimator (``fit(train, valid)``, ``evaluate``, ``with_ode``).
- Runs: :func:`train_run` (train and write a run directory), :func:`load_run` and :func:`load_model` (read one
  back), :class:`Recommender` (top-K for known and new users, similar items, fold-in of new interactions).
- Errors: every error a user can cause is a :class:`LightGODEError` with a one-line message.

Names are loaded lazily (PEP 562): ``import lightgode`` and the command line's ``--help`` do not pay for torch,
scipy and pandas before they are used. Everything else is reached by its module path (``lightgode.serving.http``,
``lightgode.data.split``, ...).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from lightgode.errors import ConfigError, DataError, LightGODEError, RunDirError, UnknownIdError

__version__ = "0.1.0"

# Public name -> the module that defines it (imported on first use).
_LAZY = {
    "Interactions": "lightgode.data.interactions",
    "read_interactions": "lightgode.data.readers",
    "load_dataset": "lightgode.data.datasets",
    "prepare_split": "lightgode.runs.workflow",
    "RunConfig": "lightgode.core.config",
    "DataConfig": "lightgode.core.config",
    "TrainConfig": "lightgode.core.config",
    "ODEConfig": "lightgode.core.ode",
    "LightGODE": "lightgode.models.lightgode",
    "train_run": "lightgode.runs.workflow",
    "load_run": "lightgode.runs.store",
    "load_model": "lightgode.runs.store",
    "Recommender": "lightgode.serving.recommender",
}

# Written out (not built from _LAZY) so that linters and IDEs read it; tests/test_public_api.py checks both agree.
__all__ = [
    "Interactions",
    "read_interactions",
    "load_dataset",
    "prepare_split",
    "RunConfig",
    "DataConfig",
    "TrainConfig",
    "ODEConfig",
    "LightGODE",
    "train_run",
    "load_run",
    "load_model",
    "Recommender",
    "LightGODEError",
    "ConfigError",
    "DataError",
    "RunDirError",
    "UnknownIdError",
    "__version__",
]

if TYPE_CHECKING:  # what IDEs and type checkers see; at run time __getattr__ imports on first use
    from lightgode.core.config import DataConfig, RunConfig, TrainConfig
    from lightgode.core.ode import ODEConfig
    from lightgode.data.datasets import load_dataset
    from lightgode.data.interactions import Interactions
    from lightgode.data.readers import read_interactions
    from lightgode.models.lightgode import LightGODE
    from lightgode.runs.store import load_model, load_run
    from lightgode.runs.workflow import prepare_split, train_run
    from lightgode.serving.recommender import Recommender


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'lightgode' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
