"""The independent audit, run before a report is made (issue 10, item 4).

A report makes a release look finished: a release that fails the audit must not get one by
accident. :func:`audit_outcome` runs the auditor (:mod:`audit`, the independent code path; the
report imports it and nothing of the engine) on the release folder alone, as ``pfl-audit
release=FOLDER`` does without a ledger: checksums, every file accounted for, the policy floor,
A1, A3, derived counts, visible counts, percentages, identifiers. :func:`report.document.write_report`
refuses a failing release (exit 11), or, when asked with ``show_failed=true``, renders it behind a
banner that says so at the top of the page (and of every printed page).

The outcome holds table and check names and counts only, never a value.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from audit import AuditError, audit_release

__all__ = ["AuditOutcome", "audit_outcome"]


@dataclass(frozen=True)
class AuditOutcome:
    """What the independent audit said of a release.

    Attributes:
        passed: the release passes the (ledger-less) audit.
        failures: one line per table and failed check, e.g. ``prevalence: visible-count (2)``.
        seconds: how long the audit took.
    """

    passed: bool
    failures: tuple[str, ...] = field(default=())
    seconds: float = 0.0

    def summary(self, limit: int = 6) -> str:
        """The failed checks in one line (``limit`` of them, then how many more)."""
        shown = "; ".join(self.failures[:limit])
        more = len(self.failures) - limit
        return shown + (f"; and {more} more" if more > 0 else "")


def audit_outcome(folder: Path) -> AuditOutcome:
    """Audit the release folder alone; an audit that cannot complete is a failure (fail closed)."""
    try:
        report = audit_release(Path(folder))
    except AuditError as exc:
        return AuditOutcome(False, (f"the audit could not be completed ({exc})",))
    counts = Counter((f.table, f.check) for f in report.findings if not f.advisory)
    failures = tuple(f"{table}: {check} ({n})" for (table, check), n in sorted(counts.items()))
    return AuditOutcome(report.passed, failures, report.seconds)
