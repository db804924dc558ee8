"""Errors of the engine's input side.

Every error a user can cause derives from :class:`EngineError`, which carries the process exit
code the command-line entry points use (no traceback is shown to the user). Messages name the
file, table, column, rule and a count, never a value from a row::

    EngineError                      base of every user-facing error (exit 1)
    ├── ConfigError                  invalid configuration, detected before data is read (exit 2)
    ├── KeyMaterialError             key material given by value where a reference belongs (exit 6)
    ├── ExtractError                 base of errors about a supplier extract (exit 3)
    │   ├── ExtractNotFoundError     the folder or a table file is missing (exit 3)
    │   ├── ExtractFormatError       a file cannot be read as the contract says (exit 4)
    │   └── ContractError            the extract breaks the contract; lists every problem (exit 5)
    ├── OutputExistsError            the output folder exists and overwrite was not asked (exit 9)
    │   └── OutputBusyError          another run is writing the same output folder (exit 9)
    ├── StorageError                 a file or folder cannot be written or read: permission
    │                                denied, read-only file system, disk full (exit 10)
    └── WorkerLostError              an executor's worker died running a partition (exit 12)

Other packages add their own branches (``pseudonymisation.errors``: exits 6 and 7;
``linkage.inputs.LinkageError``: exit 8). ``docs/exit-codes.md`` lists every code; a test keeps
it in step with these classes.
"""

from __future__ import annotations

__all__ = [
    "counted",
    "ConfigError",
    "ContractError",
    "EngineError",
    "ExtractError",
    "ExtractFormatError",
    "ExtractNotFoundError",
    "KeyMaterialError",
    "OutputBusyError",
    "OutputExistsError",
    "StorageError",
    "WorkerLostError",
]


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """A count and its noun in the right number, for messages: ``1 problem``, ``2 problems``."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


class EngineError(Exception):
    """Base of every error caused by the user's input or configuration."""

    exit_code = 1


class ConfigError(EngineError):
    """The configuration is invalid; raised before any data is read."""

    exit_code = 2


class KeyMaterialError(EngineError):
    """Key material given by value (on the command line) where a path or ``env:NAME`` belongs.

    Exit 6, the key-problem code of ``pseudonymisation.errors``; the message names the setting,
    never the value.
    """

    exit_code = 6


class ExtractError(EngineError):
    """Base of errors about a supplier extract."""

    exit_code = 3


class ExtractNotFoundError(ExtractError):
    """The extract folder or one of its table files does not exist."""

    exit_code = 3


class ExtractFormatError(ExtractError):
    """A file cannot be read as the contract says (BOM, wrong separator, not Parquet, ...)."""

    exit_code = 4


class ContractError(ExtractError):
    """The extract breaks the data contract.

    Args:
        problems: every problem found, each a message naming file, column, rule and count.
    """

    exit_code = 5

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(
            f"the extract breaks the data contract ({counted(len(self.problems), 'problem')}):\n{lines}")


class OutputExistsError(EngineError):
    """The output folder exists; a command replaces it only with ``overwrite=true``."""

    exit_code = 9


class OutputBusyError(OutputExistsError):
    """Another run holds the output folder's lock (``extracts.atomic.output_lock``); never waits."""

    exit_code = 9


class StorageError(EngineError):
    """The file system refused: permission denied, read-only file system, disk or quota full.

    Raised from the ``OSError`` (or the I/O error polars and pyarrow report) by
    :func:`extracts.atomic.storage_error`; the message names the path and the reason only.
    """

    exit_code = 10


class WorkerLostError(EngineError):
    """A worker of the executor died running a partition (out of memory, a node lost, a kill).

    Raised for :class:`execution.ExecutorError` from a running stage: no bug of the engine and no
    error of the input, so a script can tell it apart (and run again with more memory).
    """

    exit_code = 12
