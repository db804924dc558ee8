"""Errors of the report.

The report is made from a release folder alone; it refuses a folder it cannot trust rather than
render part of it. Messages name the folder, file, table, column and count, never a value::

    ReportError                 base (exit 1): the release is not what its manifest says
    ├── ReleaseTamperedError    a file's SHA-256 differs from the manifest's (exit 1)
    ├── SettingsError           a setting is missing, unknown or invalid (exit 2)
    ├── ReleaseNotFoundError    not a release folder: no manifest.json, or a file the manifest
    │                           lists is missing (exit 3)
    ├── ReleaseFormatError      the manifest or a table cannot be read or does not follow
    │                           docs/release-format.md, e.g. a value under a hidden status (exit 4)
    ├── OutputExistsError       the report file exists and overwrite=true was not given (exit 9)
    ├── OutputRefusedError      the report cannot be written: permission, disk full (exit 10)
    └── AuditFailedError        the release fails the independent audit (pfl-audit) and
                                show_failed=true was not given (exit 11)

The codes are the engine's (docs/exit-codes.md), so a script treats every command alike, but the
report imports nothing from the engine: anyone who receives a release can render it.
"""

from __future__ import annotations

__all__ = [
    "AuditFailedError",
    "OutputExistsError",
    "OutputRefusedError",
    "ReleaseFormatError",
    "ReleaseNotFoundError",
    "ReleaseTamperedError",
    "ReportError",
    "SettingsError",
]


class ReportError(Exception):
    """Base of the report's errors: no report is written."""

    exit_code = 1


class ReleaseTamperedError(ReportError):
    """A file of the release differs from the checksum in its manifest."""

    exit_code = 1


class SettingsError(ReportError):
    """A setting of the command is missing, unknown or invalid."""

    exit_code = 2


class ReleaseNotFoundError(ReportError):
    """The folder is not a release, or a file its manifest lists is missing."""

    exit_code = 3


class ReleaseFormatError(ReportError):
    """The manifest or a table cannot be read, or does not follow the release format."""

    exit_code = 4


class OutputExistsError(ReportError):
    """The report file exists; the command replaces it only when asked."""

    exit_code = 9


class OutputRefusedError(ReportError):
    """The file system refused the report (permission denied, read-only, disk or quota full)."""

    exit_code = 10


class AuditFailedError(ReportError):
    """The release fails the independent audit; a report is made of it only when asked."""

    exit_code = 11
