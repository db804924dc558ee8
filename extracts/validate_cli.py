"""``pfl-validate``: validate a supplier extract and print what was kept and what was quarantined.

Usage::

    pfl-validate <folder> --supplier ehr|claims [--max-quarantine-share 0.01]

Exit status 0 when the extract meets the contract; otherwise the
:class:`~extracts.errors.EngineError`'s ``exit_code`` (3 not found, 4 format, 5 contract), with
the message, and no traceback, on stderr. The output holds counts only, never a row's values.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

import polars as pl
from rich.console import Console
from rich.table import Table

from extracts.contract import SUPPLIERS
from extracts.errors import EngineError
from extracts.validation import ValidatedExtract, validate_extract

__all__ = ["main", "summary_table"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pfl-validate",
        description="Validate a supplier extract against the data contract (counts only).",
    )
    parser.add_argument("folder", help="extract folder: one <table>.parquet or <table>.csv each")
    parser.add_argument("--supplier", required=True, choices=sorted(SUPPLIERS))
    parser.add_argument(
        "--max-quarantine-share",
        type=float,
        default=0.01,
        help="reject the extract when a table has a larger share of rows quarantined "
        "(default: %(default)s)",
    )
    return parser


def summary_table(result: ValidatedExtract) -> Table:
    """Rows in, clean and quarantined per table, with the quarantine reasons."""
    table = Table(title=f"extract '{result.supplier}': rows per table")
    for header in ("table", "rows in", "clean", "quarantined", "reasons"):
        table.add_column(header, justify="left" if header in ("table", "reasons") else "right")
    for name, rows_in in result.row_counts.items():
        reasons = result.quarantine.filter(pl.col("table") == name)
        detail = ", ".join(f"{r}: {n}" for r, n in reasons.select("reason", "rows").iter_rows())
        table.add_row(
            name,
            f"{rows_in:,}",
            f"{result.clean_rows(name):,}",
            f"{result.quarantined(name):,}",
            detail or "-",
        )
    return table


def _notes_table(result: ValidatedExtract) -> Table:
    """The non-zero notes (normalised codes, BSN statuses, shared BSNs)."""
    table = Table(title="notes (clean rows; nothing removed)")
    for header in ("table", "column", "note", "rows"):
        table.add_column(header, justify="right" if header == "rows" else "left")
    for name, column, note, rows in result.notes.filter(pl.col("rows") > 0).iter_rows():
        table.add_row(name, column, note, f"{rows:,}")
    return table


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``pfl-validate``; returns the process exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    out, err = Console(), Console(stderr=True)
    try:
        result = validate_extract(
            args.folder, args.supplier, max_quarantine_share=args.max_quarantine_share
        )
    except EngineError as exc:
        # User errors: the message is the whole story (file, column, rule, count).
        err.print(f"pfl-validate: {exc}", markup=False, highlight=False)
        return exc.exit_code
    out.print(summary_table(result))
    out.print(_notes_table(result))
    # result.warnings were logged (to stderr) as they arose; not repeated here.
    return 0


if __name__ == "__main__":
    sys.exit(main())
