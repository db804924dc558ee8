"""Disclosure control: what may leave the engine (``shared/spec/disclosure.md``).

A pure algorithm package, independent of file formats: the release layer turns study tables into
:class:`~disclosure.secondary.Table` objects, applies the primary rules and
:func:`~disclosure.secondary.protect`, and writes only releasable patterns.

- :mod:`~disclosure.policy`: the steward's :class:`Policy`, made stricter (never looser)
  by a study (:meth:`Policy.stricter`).
- :mod:`~disclosure.primary`: vectorised primary rules (counts, complements,
  percentages, changes, magnitudes), each returning hidden flags and reasons.
- :mod:`~disclosure.tables`: tables with additive equations (1-3-D with margins, linked).
- :mod:`~disclosure.elimination`: GaussSuppression-style exact elimination.
- :mod:`~disclosure.solver`: exact integer bounds (``scipy.optimize.milp``), checks A1-A4.
- :mod:`~disclosure.secondary`: :func:`protect` (elimination, repair, pruning; implicit
  cells, cells fixed by earlier releases); fails closed when no safe pattern exists.

Nothing here imports the independent auditor: the audit must stay a separate code path.
"""

from disclosure.policy import FLOOR, Policy, below_floor
from disclosure.primary import (
    Flags,
    NOfN,
    change_rule,
    count_rule,
    magnitude_rule,
    n_of_n_rule,
    percentage_rule,
)
from disclosure.secondary import Pattern, bounds, check, protect
from disclosure.solver import Violation
from disclosure.tables import Table, link_tables, table_1d, table_2d, table_3d, table_nd

__all__ = [
    "FLOOR",
    "Flags",
    "NOfN",
    "Pattern",
    "Policy",
    "Table",
    "Violation",
    "below_floor",
    "bounds",
    "change_rule",
    "check",
    "count_rule",
    "link_tables",
    "magnitude_rule",
    "n_of_n_rule",
    "percentage_rule",
    "protect",
    "table_1d",
    "table_2d",
    "table_3d",
    "table_nd",
]
