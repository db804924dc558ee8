"""Disclosure control: what may leave the engine (``shared/spec/disclosure.md``).

A pure algorithm package, independent of file formats: the release layer turns study tables into
:class:`~cohort.disclosure.secondary.Table` objects, applies the primary rules and
:func:`~cohort.disclosure.secondary.protect`, and writes only releasable patterns.

- :mod:`~cohort.disclosure.policy`: the steward's :class:`Policy`, made stricter (never looser)
  by a study (:meth:`Policy.stricter`).
- :mod:`~cohort.disclosure.primary`: vectorised primary rules (counts, complements,
  percentages, changes, magnitudes), each returning hidden flags and reasons.
- :mod:`~cohort.disclosure.tables`: tables with additive equations (1-3-D with margins, linked).
- :mod:`~cohort.disclosure.elimination`: GaussSuppression-style exact elimination.
- :mod:`~cohort.disclosure.solver`: exact integer bounds (``scipy.optimize.milp``), checks A1-A4.
- :mod:`~cohort.disclosure.secondary`: :func:`protect` (elimination, repair, pruning; implicit
  cells, cells fixed by earlier releases); fails closed when no safe pattern exists.

Nothing here imports the independent auditor: the audit must stay a separate code path.
"""

from cohort.disclosure.policy import FLOOR, Policy, below_floor
from cohort.disclosure.primary import (
    Flags,
    NOfN,
    change_rule,
    count_rule,
    magnitude_rule,
    n_of_n_rule,
    percentage_rule,
)
from cohort.disclosure.secondary import Pattern, bounds, check, protect
from cohort.disclosure.solver import Violation
from cohort.disclosure.tables import Table, link_tables, table_1d, table_2d, table_3d, table_nd

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
