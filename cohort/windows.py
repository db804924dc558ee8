"""Windows of study schema 2: closed intervals of days, relative to the reference year or the index date.

``{years: [a, b]}`` covers 1 Jan (Y + a) .. 31 Dec (Y + b); ``{days: [a, b]}`` covers d + a .. d + b
for the index date d. Both bounds are inclusive (``docs/study-schema.md``, "Windows"). A window is
parsed and checked (end >= start) before any data is read; :meth:`Window.bounds` gives its first and
last day as polars expressions for a reference year and an index-date column.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import polars as pl

from cohort.checks import fail
from extracts.errors import ConfigError

__all__ = ["REFERENCE_YEAR", "Window", "parse_window"]

_UNITS = ("years", "days")


@dataclass(frozen=True, slots=True)
class Window:
    """A closed interval: ``unit`` is ``years`` (calendar years from Y) or ``days`` (from the index date)."""

    unit: str
    start: int
    end: int

    @property
    def uses_index(self) -> bool:
        return self.unit == "days"

    def bounds(self, year: int, index: pl.Expr | None = None) -> tuple[pl.Expr, pl.Expr]:
        """The window's first and last day for reference year ``year`` (``index``: the index-date column)."""
        if self.unit == "years":
            return pl.lit(date(year + self.start, 1, 1)), pl.lit(date(year + self.end, 12, 31))
        if index is None:  # parse_study refuses a days window without an index date; this is a guard
            msg = "a window in days needs an index date"
            raise ConfigError(msg)
        return index + pl.duration(days=self.start), index + pl.duration(days=self.end)

    def years_span(self) -> tuple[int, int]:
        """Offsets (in calendar years from Y) that hold every day the window can cover."""
        if self.unit == "years":
            return self.start, self.end
        # an index date lies in Y: d + a is no earlier than 1 Jan Y + a days, d + b no later than 31 Dec Y + b.
        return -((-self.start + 364) // 365) if self.start < 0 else 0, (self.end + 365) // 365 if self.end > 0 else 0


REFERENCE_YEAR = Window("years", 0, 0)


def parse_window(raw: Any, key: str, *, index_allowed: bool) -> Window:
    """A :class:`Window` from ``{years: [a, b]}`` or ``{days: [a, b]}``, checked.

    Args:
        raw: the mapping from the study file.
        key: where it stands (``criteria[2].window``), for the message.
        index_allowed: whether the cohort has an index date (incidence and index cohorts).
    """
    if not isinstance(raw, Mapping) or len(raw) != 1 or next(iter(raw)) not in _UNITS:
        fail(key, "not a window", "{years: [start, end]} or {days: [start, end]}")
    unit, pair = next(iter(raw.items()))
    if (not isinstance(pair, (list, tuple)) or len(pair) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in pair)):
        fail(f"{key}.{unit}", "not a pair of whole numbers", "[start, end], e.g. [-5, -1] or [0, 365]")
    start, end = pair
    if end < start:
        fail(f"{key}.{unit}", f"the window ends ({end}) before it starts ({start})", "end >= start")
    if unit == "days" and not index_allowed:
        fail(f"{key}.days", "a window in days needs an index date",
              "a window in years ({years: [a, b]}) in a prevalence cohort, or cohort.type incidence or index")
    return Window(str(unit), start, end)
