"""Errors of the release stage (``pfl-release``).

Messages name the file, table, column, rule, quantity labels and counts, never a value::

    EngineError (extracts.errors)
    └── ReleaseError                 base of the release stage's errors (exit 1)
        ├── StudyNotFoundError       the study folder or one of its files is missing (exit 3)
        ├── StudyFormatError         a study file cannot be read, or lacks a column (exit 4)
        ├── StudyContractError       the study's tables break their contract or contradict each
        │                            other (negative counts, n > N, a quantity in two versions);
        │                            lists every problem (exit 5)
        └── LedgerRefusal            the ledger refuses the release: combined with earlier
                                     releases it would publish a quantity in two versions, the
                                     study is of another population, or the ledger's policy is
                                     below the floor or edited by hand; or the ledger is missing,
                                     in use by another run or unreadable (exit 11)
"""

from __future__ import annotations

from extracts.errors import EngineError, counted

__all__ = ["LedgerRefusal", "ReleaseError", "StudyContractError", "StudyFormatError", "StudyNotFoundError"]


class ReleaseError(EngineError):
    """Base of the release stage's errors."""

    exit_code = 1


class StudyNotFoundError(ReleaseError):
    """The study folder, its manifest or a table file does not exist."""

    exit_code = 3


class StudyFormatError(ReleaseError):
    """A study file cannot be read (not Parquet, not JSON) or lacks a column."""

    exit_code = 4


class StudyContractError(ReleaseError):
    """The study's tables break their contract; every problem is listed.

    Args:
        problems: each a message naming the table, column or quantity, the rule and a count.
    """

    exit_code = 5

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(
            f"the study folder cannot be released ({counted(len(self.problems), 'problem')}):\n{lines}")


class LedgerRefusal(ReleaseError):
    """The release ledger refuses the release; nothing was written."""

    exit_code = 11
