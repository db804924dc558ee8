"""How study schema 2 refuses a study: one message shape, raised before any data is read.

``study config: KEY: RULE; expected WHAT`` -- the key where the problem stands (``criteria[2].window``),
the rule it breaks and what was expected, never a value from the data (there is none yet).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

from extracts.errors import ConfigError

__all__ = ["fail", "known_keys", "whole"]


def fail(key: str, rule: str, expected: str) -> NoReturn:
    """Raise the schema's :class:`ConfigError` (exit 2)."""
    msg = f"study config: {key}: {rule}; expected {expected}"
    raise ConfigError(msg)


def known_keys(raw: Mapping[str, Any], allowed: tuple[str, ...], key: str) -> None:
    """Refuse a key that is not in ``allowed``: a typo must not be silently ignored."""
    for k in raw:
        if k not in allowed:
            fail(f"{key}.{k}" if key else str(k), "unknown key", f"one of {list(allowed)}")


def whole(value: Any) -> bool:
    """Whether ``value`` is a whole number (YAML's ``true`` is not)."""
    return isinstance(value, int) and not isinstance(value, bool)
