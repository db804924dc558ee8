"""The HTML report of a release: what a researcher, steward or reader sees of a study.

Made from a release folder alone (``docs/release-format.md``), never from person-level data, the
study folder or the ledger: anyone who receives a release can render it, so the package imports
nothing from the engine (``extracts``, ``pseudonymisation``, ``linkage``, ``cohort``, ``pipeline``);
it imports the independent auditor (``audit``, numpy, polars and scipy) to refuse a release that
fails the audit. A test enforces this.

Layers:

- :mod:`report.release` — read the folder, check every file's SHA-256 first, refuse what does
  not follow the format (a value under a hidden status included).
- :mod:`report.values` — a released value: a number, or hidden with the release's reason.
- :mod:`report.charts` — inline SVG bar charts with hatched markers for hidden values.
- :mod:`report.markup` — HTML tables and figures.
- :mod:`report.sections` — one section per released table.
- :mod:`report.gate` — the independent audit (:mod:`audit`) run before a report is made.
- :mod:`report.document` — the page, and writing it complete or not at all.
- :mod:`report.errors` — what the report refuses, with the engine's exit codes.
"""

from __future__ import annotations

from report.charts import bar_chart
from report.document import ReportResult, render, write_report
from report.errors import (
    AuditFailedError,
    OutputExistsError,
    OutputRefusedError,
    ReleaseFormatError,
    ReleaseNotFoundError,
    ReleaseTamperedError,
    ReportError,
    SettingsError,
)
from report.release import Release, Table, read_release
from report.values import Value

__all__ = [
    "AuditFailedError",
    "OutputExistsError",
    "OutputRefusedError",
    "Release",
    "ReleaseFormatError",
    "ReleaseNotFoundError",
    "ReleaseTamperedError",
    "ReportError",
    "ReportResult",
    "SettingsError",
    "Table",
    "Value",
    "bar_chart",
    "read_release",
    "render",
    "write_report",
]
