"""lightgode: LightGODE (MF + DirectAU training, post-training graph ODE) for top-K recommendation.

The public API is loaded lazily (PEP 562), so that ``import lightgode`` and the command line's ``--help`` do not
pay for torch, scipy and pandas before they are used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from lightgode.errors import ConfigError, DataError, LightGODEError, RunDirError, UnknownIdError

__version__ = "0.1.0"

_LAZY = {
    "Interactions": "lightgode.data.interactions",
}

__all__ = ["ConfigError", "DataError", "LightGODEError", "RunDirError", "UnknownIdError", "__version__", *_LAZY]

if TYPE_CHECKING:
    from lightgode.data.interactions import Interactions


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'lightgode' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
