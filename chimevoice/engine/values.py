"""Lenient readers for action parameters.

Handlers in the wild send numbers as strings (``"Repeat": "5"``) and booleans
as ``"true"``; the service accepts them (spec README, reading 5). These helpers
accept what the service accepts and raise :class:`ParamError` for the rest.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ParamError(ValueError):
    """A parameter has a value the service rejects."""


_MISSING = object()


def is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def as_int(value: Any) -> int:
    """An integer from a JSON number or a string of decimal digits."""
    if isinstance(value, bool):
        raise ParamError("boolean is not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("+-").isdigit():
            return int(text)
    raise ParamError(f"not an integer: {value!r}")


def as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ParamError(f"not a boolean: {value!r}")


def opt_int(params: Mapping[str, Any], *names: str, default: Any = _MISSING) -> Any:
    """First present, non-blank parameter among *names* as int, else *default*."""
    for name in names:
        if name in params and not is_blank(params[name]):
            return as_int(params[name])
    if default is _MISSING:
        raise ParamError(f"missing {names[0]}")
    return default


def str_list(value: Any) -> list[str]:
    """A list of strings; a single string is accepted as a one-element list."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list) and all(isinstance(v, (str, int)) for v in value):
        return [str(v) for v in value]
    raise ParamError(f"not a list of strings: {value!r}")
