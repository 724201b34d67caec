"""lightgode: LightGODE (MF + DirectAU training, post-training graph ODE) for top-K recommendation."""

from lightgode.data.interactions import Interactions
from lightgode.errors import ConfigError, DataError, LightGODEError, UnknownIdError

__version__ = "0.1.0"
__all__ = ["Interactions", "LightGODEError", "ConfigError", "DataError", "UnknownIdError", "__version__"]
