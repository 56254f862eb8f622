"""Checking connector options that arrive as text (``-o key=value``, YAML) or as Python values."""

from __future__ import annotations

from typing import Any

from clarifai_connect.errors import ConfigError

__all__ = ["option_bool", "option_int"]

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off", ""})


def option_bool(connector: str, name: str, value: Any) -> bool:
    """``value`` as a bool; text like ``yes``/``off`` is understood, anything else is a
    ConfigError (``bool("false")`` would silently be True)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise ConfigError(f"{connector} option {name}={value!r} is not true or false")


def option_int(connector: str, name: str, value: Any, minimum: int = 1) -> int:
    """``value`` as an int of at least ``minimum``; ConfigError otherwise."""
    try:
        number = int(str(value).strip()) if not isinstance(value, int) else value
    except ValueError:
        number = None
    if number is None or isinstance(value, bool) or number < minimum:
        raise ConfigError(f"{connector} option {name}={value!r} must be a whole number "
                          f"≥ {minimum}")
    return number
