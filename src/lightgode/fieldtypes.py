"""Type checks of dataclass settings, shared by flags, config files and stored runs.

``check_fields(obj, section)`` reads the annotations of a frozen dataclass and checks (and normalises) every
field: an int where an int is declared (an integral float such as 64.0 becomes 64; a bool is not a number), a
number where a float is declared (stored as float), a string, a bool, ``X | None``, fixed and variadic tuples (a
JSON list becomes a tuple; a single number is a one-element tuple; a string is never split into characters), and
nested dataclasses. A wrong type is a one-line ConfigError naming the key path: ``ode.t: expected a number, got
"abc"``.
"""

from __future__ import annotations

import dataclasses
import json
import numbers
import types
import typing
from typing import Any

from lightgode.errors import ConfigError

INT_LIMIT = 2**63  # every integer setting must fit a signed 64-bit integer (numpy's and torch's index type)


def shown(value: Any, limit: int = 60) -> str:
    """A short JSON-like rendering of a user's value for an error message."""
    try:
        text = json.dumps(value, default=repr, allow_nan=True)
    except (TypeError, ValueError, RecursionError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _fail(path: str, expected: str, value: Any) -> ConfigError:
    return ConfigError(f"{path}: expected {expected}, got {shown(value)}")


def _is_number(value: Any) -> bool:
    """A real number (numpy's included), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _as_int(value: Any, path: str) -> int:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = int(value)  # numpy integers too
    elif isinstance(value, numbers.Real) and not isinstance(value, bool) and float(value).is_integer():
        value = int(value)
    else:
        raise _fail(path, "an integer", value)
    if not -INT_LIMIT < value < INT_LIMIT:
        raise ConfigError(f"{path}: integer out of range: {shown(value)}")
    return value


def _as_float(value: Any, path: str) -> float:
    if not _is_number(value):
        raise _fail(path, "a number", value)
    try:
        return float(value)
    except OverflowError:
        raise ConfigError(f"{path}: number out of range: {shown(value)}") from None


def _describe(hint: Any) -> str:
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
    if hint in names:
        return names[hint]
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _describe(a) for a in typing.get_args(hint))
    if origin is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_describe(args[0]).removeprefix('an ').removeprefix('a ')}s"
        if len(set(args)) == 1:
            return f"a list of {len(args)} {_describe(args[0]).removeprefix('an ').removeprefix('a ')}s"
        return f"a list of {len(args)} values"
    if dataclasses.is_dataclass(hint):
        return "a table of settings"
    return getattr(hint, "__name__", str(hint))


def coerce(value: Any, hint: Any, path: str) -> Any:
    """``value`` checked against the type ``hint`` and normalised (lists to tuples, ints to floats where a float is
    declared); a ConfigError naming ``path`` if it does not fit."""
    if hint is Any:
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise _fail(path, "true or false", value)
        return value
    if hint is int:
        return _as_int(value, path)
    if hint is float:
        return _as_float(value, path)
    if hint is str:
        if not isinstance(value, str):
            raise _fail(path, "a string", value)
        return value
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return coerce(value, arg, path)
            except ConfigError:
                continue
        raise _fail(path, _describe(hint), value)
    if origin is tuple:
        args = typing.get_args(hint)
        variadic = len(args) == 2 and args[1] is Ellipsis
        if variadic and (_is_number(value) or isinstance(value, bool)):
            value = (value,)  # a single value where a list is expected: a list of one
        if not isinstance(value, (list, tuple)):
            raise _fail(path, _describe(hint), value)
        if variadic:
            return tuple(coerce(v, args[0], f"{path}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise _fail(path, _describe(hint), value)
        return tuple(coerce(v, a, f"{path}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if not isinstance(value, hint):
            raise _fail(path, "a table of settings", value)
        return value
    return value


def check_fields(obj: Any, section: str = "") -> None:
    """Check every field of the frozen dataclass ``obj`` against its annotation, normalising it in place; key
    paths in errors start with ``section`` (``"ode"`` gives ``ode.t``)."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        path = f"{section}.{f.name}" if section else f.name
        value = getattr(obj, f.name)
        fixed = coerce(value, hints[f.name], path)
        if fixed is not value:
            object.__setattr__(obj, f.name, fixed)
