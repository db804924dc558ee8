"""``pfl-validate``: validate a supplier extract and print what was kept and what was quarantined.

Usage::

    pfl-validate <folder> --supplier ehr|claims [--max-quarantine-share 0.01]

Exit status 0 when the extract meets the contract; otherwise the
:class:`~extracts.errors.EngineError`'s ``exit_code`` (3 not found, 4 format, 5 contract; the
table is in ``docs/exit-codes.md``), with the message, and no traceback, on stderr. The output
holds counts only, never a row's values.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

import polars as pl
from rich.console import Console
from rich.table import Table

from extracts.cli import activity, console, exit_code_lines, guarded
from extracts.contract import SUPPLIERS
from extracts.errors import counted
from extracts.validation import ValidatedExtract, validate_extract

__all__ = ["main", "summary_table"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pfl-validate",
        description="Validate a supplier extract against the data contract and print, per\n"
        "table, the rows read, kept and quarantined with the reasons (counts only, never a\n"
        "value). Writes nothing.",
        epilog="example:\n  pfl-validate work/demo/extracts/ehr --supplier ehr\n\n"
        f"exit codes (docs/exit-codes.md):\n{exit_code_lines()}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
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


def _summary_line(result: ValidatedExtract) -> str:
    rows_in = sum(result.row_counts.values())
    quarantined = sum(result.quarantined(name) for name in result.row_counts)
    reasons = result.quarantine["reason"].n_unique()
    return (
        f"extract '{result.supplier}' meets the data contract: {rows_in:,} rows in "
        f"{len(result.row_counts)} tables, {rows_in - quarantined:,} clean, {quarantined:,} "
        f"quarantined for {counted(reasons, 'reason')}"
    )


def _validate(args: argparse.Namespace) -> None:
    with activity(f"validating the {args.supplier} extract (one pass over every file)"):
        result = validate_extract(
            args.folder, args.supplier, max_quarantine_share=args.max_quarantine_share
        )
    out = Console()
    out.print(summary_table(result))
    out.print(_notes_table(result))
    # result.warnings were logged (to stderr) as they arose; not repeated here.
    console.print(_summary_line(result), highlight=False, soft_wrap=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``pfl-validate``; returns the process exit status (see the module docstring)."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        # User errors: the message is the whole story (file, column, rule, count).
        guarded(lambda: _validate(args))
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
