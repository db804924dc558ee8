"""Independent disclosure auditor: re-checks a release from what it publishes.

The auditor is a separate code path (``shared/spec/disclosure.md``, "The auditor"): anyone can run
it on a release without trusting the code that made the release. It therefore imports nothing from
the engine's packages (``extracts``, ``pseudonymisation``, ``linkage``, ``cohort``, ``pipeline``);
it re-derives what it needs (the BSN 11-test, the policy arithmetic) and depends only on numpy,
polars, scipy and pyarrow (to read Parquet footers). A test enforces this.

Layers:

- :mod:`audit.cells` — cell keys (equal keys are the same quantity in every table) and labels.
- :mod:`audit.intervals` — exact integer bounds of hidden cells under additive equations
  (``scipy.optimize.milp``; never the LP relaxation).
- :mod:`audit.tables` — what the auditor knows of one table: keyed cells, equations, hidden set.
- :mod:`audit.checks` — A1-A5, visible counts, percentages; release mode and verification mode.
- :mod:`audit.magnitudes` — claimed costs: magnitude statuses, means, nested totals; with the
  study folder, the p %-rule and dominance of every shown total.
- :mod:`audit.identifiers` — identifier-like column names and values.
- :mod:`audit.inputs` — the ledger and study folder an audit was asked to use, or a refusal (fail closed).
- :mod:`audit.channels` — side channels: digests and sizes in the manifest, Parquet statistics.
- :mod:`audit.release` — a release folder as the auditor reads it: checksums, tables, cells.
- :mod:`audit.structure` — the release's equations, rebuilt from its manifest's relations.
- :mod:`audit.verdict` — the whole release (and its ledger): every check, verdicts, the report.
- :mod:`audit.persons` — A5 by who is counted: the record-level relations between releases, rebuilt
  from the steward's person sets (verification mode).
- :mod:`audit.floor` — the policy floor (T >= 10, margin >= 30 %) whatever the manifest says.
- :mod:`audit.files` — every file of the folder is a file of an audited table, by content.
- :mod:`audit.required` — the relations the format gives its tables must all be in the manifest.
- :mod:`audit.output` — the JSON report, written complete or not at all.
- :mod:`audit.errors` — the auditor fails closed with these.

``pfl-audit`` (:mod:`audit.__main__`) is the command; ``docs/release-format.md`` the format.
"""

from __future__ import annotations

from audit.cells import CellKey, cell, label, quantity_key
from audit.checks import (
    Finding,
    Policy,
    audit_ledger,
    audit_table,
    blocking,
    check_a1,
    check_a2,
    check_a3,
    check_a4,
    check_a4_possible,
    check_percentages,
    check_truth,
    check_visible_counts,
)
from audit.errors import (
    AuditError,
    InconsistentTableError,
    ReleaseFormatError,
    ReleaseNotFoundError,
    ReportWriteError,
)
from audit.identifiers import passes_eleven_test, scan_identifiers
from audit.intervals import Equation, FeasibleRegion, Interval, feasible_intervals
from audit.magnitudes import magnitude_findings
from audit.release import Release, read_release
from audit.tables import AuditTable, Percentage, PointChange, crossed_equations, crossed_values
from audit.verdict import Report, audit_release

__all__ = [
    "AuditError",
    "AuditTable",
    "CellKey",
    "Equation",
    "FeasibleRegion",
    "Finding",
    "InconsistentTableError",
    "Interval",
    "Percentage",
    "PointChange",
    "Policy",
    "Release",
    "ReleaseFormatError",
    "ReleaseNotFoundError",
    "Report",
    "ReportWriteError",
    "audit_ledger",
    "audit_release",
    "audit_table",
    "blocking",
    "cell",
    "check_a1",
    "check_a2",
    "check_a3",
    "check_a4",
    "check_a4_possible",
    "check_percentages",
    "check_truth",
    "check_visible_counts",
    "crossed_equations",
    "crossed_values",
    "feasible_intervals",
    "label",
    "magnitude_findings",
    "passes_eleven_test",
    "quantity_key",
    "read_release",
    "scan_identifiers",
]
