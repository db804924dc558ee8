"""Errors of the auditor.

The auditor fails closed: when it cannot decide, it raises rather than passing a table. Messages
name the table, cell label, equation or rule, never a hidden value::

    AuditError                    base: the auditor could not complete a check (fail closed)
    └── InconsistentTableError    the published values admit no non-negative integer solution
"""

from __future__ import annotations

__all__ = ["AuditError", "InconsistentTableError"]


class AuditError(Exception):
    """Base of the auditor's errors; the release under audit must not pass."""


class InconsistentTableError(AuditError):
    """The published cells contradict the table's additive equations."""
