"""Typed errors. The CLI turns each into one line on stderr and exit code 2."""

from __future__ import annotations


class LightGODEError(Exception):
    """Base class of every error a user can cause."""


class ConfigError(LightGODEError, ValueError):
    """An impossible or unknown setting."""


class DataError(LightGODEError):
    """A missing, malformed or unusable data file, or data that leaves nothing to train on."""


class UnknownIdError(LightGODEError, KeyError):
    """A user or item id that the model does not know."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else "unknown id"


class NotFittedError(LightGODEError):
    """A model used before it was trained."""


class FitError(LightGODEError):
    """Training produced non-finite values."""


class RunDirError(LightGODEError):
    """A missing, incomplete or corrupted run directory."""


class OutputError(LightGODEError):
    """A target that cannot be written: it exists, lies under a file, is not writable, is the source itself,
    another command is writing it, or the disk filled while writing."""


class MissingDependencyError(LightGODEError):
    """An optional dependency (an extra of the package) that a command needs is not installed."""


def require(module: str, extra: str, what: str) -> None:
    """Raise a one-line MissingDependencyError with the install command unless ``module`` can be imported.

    Parameters
    ----------
    module : the importable name (``uvicorn``, ``faiss``)
    extra : the package extra that brings it (``serve``)
    what : what needs it, for the message (``lightgode serve``)
    """
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise MissingDependencyError(
            f"{what} needs the optional package {module!r}, which is not installed; "
            f"install it with: pip install 'lightgode[{extra}]'"
        )
