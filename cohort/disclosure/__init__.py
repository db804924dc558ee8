"""Disclosure control: what may leave the engine (``shared/spec/disclosure.md``).

A pure algorithm package, independent of file formats: the release layer turns study tables into
:class:`~cohort.disclosure.secondary.Table` objects, applies the primary rules and
:func:`~cohort.disclosure.secondary.protect`, and writes only releasable patterns.

- :mod:`~cohort.disclosure.policy`: the steward's :class:`Policy`, made stricter (never looser)
  by a study (:meth:`Policy.stricter`).
- :mod:`~cohort.disclosure.primary`: vectorised primary rules (counts, complements,
  percentages, changes, magnitudes), each returning hidden flags and reasons.
- :mod:`~cohort.disclosure.secondary`: tables with additive equations, GaussSuppression-style
  elimination, exact integer bounds (``scipy.optimize.milp``), checks A1-A4, repair and pruning;
  fails closed when no safe pattern exists.

Nothing here imports the independent auditor: the audit must stay a separate code path.
"""

from cohort.disclosure.policy import Policy
from cohort.disclosure.primary import (
    Flags,
    NOfN,
    change_rule,
    count_rule,
    magnitude_rule,
    n_of_n_rule,
    percentage_rule,
)
from cohort.disclosure.secondary import (
    Pattern,
    Table,
    Violation,
    bounds,
    check,
    link_tables,
    protect,
    table_1d,
    table_2d,
    table_3d,
    table_nd,
)

__all__ = [
    "Flags",
    "NOfN",
    "Pattern",
    "Policy",
    "Table",
    "Violation",
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
