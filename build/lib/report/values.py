"""A released value as the report shows it: a number, or hidden with the release's reason.

The reason is the value's status column (``docs/release-format.md``, "Status values"); the report
never says more than the release does (not whether a count is a primary or a secondary).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["STATUS_MEANING", "Value", "count", "percent", "points", "share"]

# What each hidden status means, in the release format's words (shown once in the report).
STATUS_MEANING = {
    "suppressed": (
        "hidden by disclosure control: a count of 1 to T\u22121 persons, a count from which such a "
        "count could be derived, or a percentage, share or change computed from a hidden count. "
        "The release does not say which, because either would narrow the hidden value."),
    "below-threshold": (
        "a percentage or share whose counts are both shown but one of them is below the "
        "threshold T (in practice a numerator of 0)."),
}


@dataclass(frozen=True)
class Value:
    """One value of a released table with its status (``""`` when shown)."""

    value: float | int | None
    status: str = ""

    @property
    def hidden(self) -> bool:
        return self.status != ""

    @property
    def shown(self) -> float | None:
        """The number to draw, or None (hidden, or not available)."""
        if self.hidden or self.value is None:
            return None
        number = float(self.value)
        return None if math.isnan(number) else number

    @property
    def reason(self) -> str:
        """``hidden (suppressed)``, ``hidden (below threshold)`` or ``""`` when shown."""
        return f"hidden ({self.status.replace('-', ' ')})" if self.hidden else ""

    def text(self, unit: str) -> str:
        """The value as the report prints it, in ``unit``: persons/events, percent, fraction, pp."""
        if self.hidden:
            return self.reason
        number = self.shown
        if number is None:
            return "n/a"
        return {"percent": percent, "fraction": share, "pp": points}.get(unit, count)(number)


def count(number: float) -> str:
    """A count with thousands separators: ``12,345``."""
    return f"{round(number):,}"


def percent(number: float) -> str:
    """A percentage (0-100) to one decimal, as the seed report prints them: ``12.6%``."""
    return f"{number:.1f}%"


def share(number: float) -> str:
    """A fraction 0-1 as a percentage to one decimal."""
    return percent(100 * number)


def points(number: float) -> str:
    """A change in percentage points, signed, one decimal: ``+2.1 pp``, ``\u22120.4 pp``."""
    rounded = round(number, 1)
    if rounded == 0:
        return "0.0 pp"
    sign = "+" if rounded > 0 else "\u2212"
    return f"{sign}{abs(rounded):.1f} pp"
