"""Errors of the auditor.

The auditor fails closed: when it cannot decide, it raises rather than passing a table. Messages
name the table, cell label, equation, file or rule, never a hidden value::

    AuditError                    base: the auditor could not complete a check (fail closed;
    │                             pfl-audit exit 1, like a failed audit)
    ├── InconsistentTableError    the published values admit no non-negative integer solution
    ├── ReleaseNotFoundError      the folder is not a release: no manifest.json, or a file the
    │                             manifest lists is missing (pfl-audit exit 3)
    ├── ReleaseFormatError        the manifest or a table cannot be read or does not follow
    │                             docs/release-format.md (pfl-audit exit 4)
    └── ReportWriteError          the JSON report cannot be written: disk or quota full, read-only
                                  or missing folder, permission denied (pfl-audit exit 10); the
                                  audit itself ran, nothing was written
"""

from __future__ import annotations

__all__ = [
    "AuditError",
    "InconsistentTableError",
    "ReleaseFormatError",
    "ReleaseNotFoundError",
    "ReportWriteError",
]


class AuditError(Exception):
    """Base of the auditor's errors; the release under audit must not pass."""

    exit_code = 1


class InconsistentTableError(AuditError):
    """The published cells contradict the table's additive equations."""


class ReleaseNotFoundError(AuditError):
    """The folder is not a release, or a file its manifest lists is missing."""

    exit_code = 3


class ReleaseFormatError(AuditError):
    """The manifest or a table cannot be read, or does not follow the release format."""

    exit_code = 4


class ReportWriteError(AuditError, OSError):
    """The file system refused the audit's report; nothing was written.

    Also an ``OSError`` with the system's error number and the file, so that a caller that maps
    storage failures by number (the demo job's command) treats it as one.
    """

    exit_code = 10

    def __init__(self, message: str, number: int, filename: str) -> None:
        OSError.__init__(self, number, message, filename)
        self.message = message

    def __str__(self) -> str:
        return self.message
