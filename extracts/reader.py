"""Reading supplier extracts lazily, typed as the data contract says.

An extract is a folder holding one file per table, ``<table>.parquet`` or ``<table>.csv``
(``shared/spec/data-contract.md``). CSV files are UTF-8, ``,``-separated, with a header row,
ISO-8601 dates and empty fields as null. Every CSV column is read as a string first and then cast
per contract, so that a value of the wrong type becomes a null the validator can count
(:mod:`extracts.validation`) instead of an exception half-way through a file. Parquet is scanned
lazily and cast to the contract's types where the stored type is compatible.

Two CSV mistakes are caught before polars reads a byte of data, from the first bytes of the file:
a UTF-8 byte-order mark and a ``;`` (or tab) separator. Both would otherwise be read "successfully"
as garbage: a column named ``\\ufeffpatient_id`` or a single column holding whole lines.

Nothing here iterates over rows in Python; everything returns :class:`polars.LazyFrame`. No
message or log line holds a value from the data: polars' own error texts can quote field
contents, so they are replaced by their error type.
"""

from __future__ import annotations

import csv
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import polars as pl

from extracts.contract import SUPPLIERS, Column, Supplier, Table
from extracts.errors import ConfigError, ContractError, ExtractFormatError, ExtractNotFoundError

__all__ = [
    "TableFile",
    "display_column",
    "open_table",
    "read_extract",
    "read_table",
    "resolve_supplier",
    "scan_error_message",
]

logger = logging.getLogger(__name__)

_BOM = b"\xef\xbb\xbf"
_HEADER_PEEK_BYTES = 1 << 20  # a header line longer than 1 MiB is not a header
_ISO_DATE = r"^\d{4}-\d{2}-\d{2}$"
_DECIMAL = r"^[+-]?\d+(\.\d+)?$"
_TRUE_FALSE = {"true": True, "false": False, "1": True, "0": False}
# A header field is shown in a message only when it looks like a column name: if the header row is
# missing or merged with the first row (a lost line break), the "column names" are a row's values,
# which must not leak. Values that identify someone (BSN, patient, claim and practice ids) carry
# digits; a name with a digit is therefore not shown (found by tests/robustness/test_fuzz_extracts).
_SAFE_NAME = re.compile(r"^[A-Za-z_][A-Za-z_ -]{0,63}$")


def resolve_supplier(supplier: str | Supplier) -> Supplier:
    """The contract :class:`Supplier` for a name (``ehr`` or ``claims``) or a Supplier."""
    if isinstance(supplier, Supplier):
        return supplier
    if supplier not in SUPPLIERS:
        msg = f"unknown supplier {supplier!r}: expected one of {sorted(SUPPLIERS)}"
        raise ConfigError(msg)
    return SUPPLIERS[supplier]


def display_column(name: str) -> str:
    """A column name fit for a message, or a placeholder when it might be a data value."""
    return repr(name) if _SAFE_NAME.match(name) else "<a column whose name is not shown>"


@dataclass(frozen=True, slots=True)
class TableFile:
    """One located table file of an extract, with the column types it declares.

    Attributes:
        table: the contract table.
        path: the file.
        format: ``"csv"`` or ``"parquet"``.
        source_schema: column names and types as stored (CSV: every column a string).
    """

    table: Table
    path: Path
    format: Literal["csv", "parquet"]
    source_schema: dict[str, pl.DataType]

    @property
    def file_name(self) -> str:
        """The file's name, used in every message about it."""
        return self.path.name

    @property
    def missing_columns(self) -> tuple[str, ...]:
        """Required contract columns absent from the file, in contract order."""
        return tuple(c.name for c in self.table.required_columns if c.name not in self.source_schema)

    @property
    def absent_optional_columns(self) -> tuple[str, ...]:
        """Optional (contract v2) columns the file does not have: read as nulls."""
        return tuple(
            c.name for c in self.table.columns if c.optional and c.name not in self.source_schema
        )

    @property
    def extra_columns(self) -> tuple[str, ...]:
        """Columns of the file that the contract does not know, in file order."""
        return tuple(c for c in self.source_schema if c not in self.table.column_names)

    def scan(self) -> pl.LazyFrame:
        """The contract columns present in the file, as stored (extra columns dropped).

        An optional (contract v2) column the file lacks is there as a string column of nulls,
        so that a v1 extract reads like a v2 extract that knows none of the identifiers.
        """
        if self.format == "csv":
            lf = pl.scan_csv(self.path, infer_schema=False, encoding="utf8")
        else:
            lf = pl.scan_parquet(self.path)
        absent = self.absent_optional_columns
        return lf.select(
            pl.col(c) if c not in absent else pl.lit(None, dtype=pl.String).alias(c)
            for c in self.table.column_names
            if c in self.source_schema or c in absent
        )

    def cast_expression(self, column: Column) -> pl.Expr | None:
        """The expression casting ``column`` to its contract type; None if the type can't be.

        A value that does not convert (an unparseable date, ``abc`` as a year, a 3-decimal
        amount) becomes null; the validator counts those as ``bad_type:<column>``.
        """
        return _cast(column, self.source_schema.get(column.name, pl.String()))

    def structural_problems(self) -> list[str]:
        """Missing columns and stored types that cannot become the contract's type."""
        present = [c for c in self.table.columns if c.name in self.source_schema]
        if not present:
            expected = ", ".join(self.table.column_names)
            return [
                f"{self.file_name}: none of the contract columns ({expected}) is in the header "
                "(rule: header row with the contract's column names); does the file have one?"
            ]
        problems = [
            f"{self.file_name}, column {name!r}: missing (rule: every contract v1 column is "
            "required, nullable or not)"
            for name in self.missing_columns
        ]
        problems += [
            f"{self.file_name}, column {c.name!r}: stored as {self.source_schema[c.name]}, "
            f"which cannot become the contract type {c.dtype} (rule: column type; codes are "
            "strings so that leading zeros are kept)"
            for c in present
            if self.cast_expression(c) is None
        ]
        return problems

    def extra_column_warnings(self) -> list[str]:
        """Warn (log and return) about every extra column, which is dropped."""
        if not any(c in self.source_schema for c in self.table.column_names):
            return []  # no header row: structural_problems says so; the names may be values
        warnings = [
            f"{self.file_name}: extra column {display_column(name)} is not in the contract "
            "and is ignored"
            for name in self.extra_columns
        ]
        for w in warnings:
            logger.warning(w)
        return warnings


def _cast(column: Column, source: pl.DataType) -> pl.Expr | None:
    """Cast expression from a stored type to the contract type (see TableFile.cast_expression)."""
    col = pl.col(column.name)
    target = column.dtype
    if source == pl.Null or source == target:
        return col.cast(target)
    if source == pl.String:
        text = col.str.strip_chars()
        if target == pl.String:
            return col
        if target == pl.Date:  # ISO-8601 only: `2020-1-5` and `05-01-2020` are bad types
            iso = text.str.contains(_ISO_DATE)
            parsed = text.str.to_date("%Y-%m-%d", strict=False)
            return pl.when(iso).then(parsed).otherwise(None)
        if target.is_integer():
            return text.cast(target, strict=False)
        if target == pl.Boolean:
            return text.str.to_lowercase().replace_strict(
                _TRUE_FALSE, default=None, return_dtype=pl.Boolean
            )
        if target.is_decimal():  # more decimals than the scale is a bad type, not rounded away
            exact = text.str.contains(_DECIMAL) & ~text.str.contains(
                rf"\.\d{{{target.scale + 1},}}$"
            )
            return pl.when(exact).then(text).otherwise(None).cast(target, strict=False)
        return None
    if target == pl.String:
        return col.cast(pl.String) if isinstance(source, pl.Categorical | pl.Enum) else None
    if target == pl.Date and isinstance(source, pl.Datetime):
        return col.dt.date()
    if target.is_integer() and source.is_integer():
        return col.cast(target, strict=False)  # out of range becomes null: a bad type
    if target == pl.Boolean and source.is_integer():
        as_text = col.cast(pl.String)
        return as_text.replace_strict(_TRUE_FALSE, default=None, return_dtype=pl.Boolean)
    if target.is_decimal() and (source.is_decimal() or source.is_float() or source.is_integer()):
        # Float and finer decimals are rounded to cents; too large becomes null (bad type).
        rounded = col.round(target.scale) if not source.is_integer() else col
        return rounded.cast(target, strict=False)
    return None


def _check_csv_head(path: Path, table: Table) -> list[str]:
    """Header field names of a CSV, after checking its first bytes for a BOM or wrong separator.

    A first line holding none of ``table``'s column names is returned as it is: the header row is
    missing (:meth:`TableFile.structural_problems` says so), and repeated values of the first
    data row (two empty fields) must not be reported as repeated column names.
    """
    with path.open("rb") as fh:
        head = fh.read(_HEADER_PEEK_BYTES)
    if head.startswith(_BOM):
        msg = (
            f"{path.name}: the file starts with a UTF-8 byte-order mark (BOM); the contract "
            "asks for UTF-8 without BOM. Save it as 'UTF-8' rather than 'UTF-8 with BOM' "
            "(e.g. Excel's 'CSV UTF-8' adds one) and deliver it again."
        )
        raise ExtractFormatError(msg)
    header = head.split(b"\n", 1)[0].rstrip(b"\r")
    if not header.strip():
        msg = f"{path.name}: the file is empty or its first line is blank; expected a header row"
        raise ExtractFormatError(msg)
    for sep, name in ((b";", "semicolon"), (b"\t", "tab")):
        if sep in header and b"," not in header:
            msg = (
                f"{path.name}: the header row is {name}-separated; the contract asks for "
                "comma-separated CSV (with '.' as decimal point). Export it again with ',' as "
                "the separator."
            )
            raise ExtractFormatError(msg)
    try:
        text = header.decode("utf-8")
    except UnicodeDecodeError:
        msg = f"{path.name}: the header row is not valid UTF-8; deliver the file as UTF-8"
        raise ExtractFormatError(msg) from None
    names = next(csv.reader([text]))
    if not set(names) & set(table.column_names):
        return names
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        shown = ", ".join(display_column(n) for n in duplicated)
        msg = f"{path.name}: column(s) {shown} appear more than once in the header row"
        raise ExtractFormatError(msg)
    return names


def open_table(folder: str | Path, supplier: str | Supplier, table: str) -> TableFile:
    """Locate a table's file in an extract folder and read its header or Parquet schema.

    Reads only the first bytes of a CSV and the footer of a Parquet file.

    Raises:
        ExtractNotFoundError: the folder or the table's file does not exist.
        ExtractFormatError: both a CSV and a Parquet file exist, or the file cannot be read as
            the contract says (BOM, ``;`` separator, not Parquet, ...).
    """
    folder = Path(folder)
    spec = resolve_supplier(supplier).table(table)
    if not folder.is_dir():
        msg = f"extract folder {str(folder)!r} does not exist or is not a folder"
        raise ExtractNotFoundError(msg)
    csv_path, parquet_path = folder / f"{table}.csv", folder / f"{table}.parquet"
    if csv_path.exists() and parquet_path.exists():
        msg = (
            f"{csv_path.name} and {parquet_path.name}: both exist; deliver the table once, "
            "as CSV or as Parquet"
        )
        raise ExtractFormatError(msg)
    for path in (parquet_path, csv_path):
        if path.exists() and not path.is_file():  # a folder: polars would read it as a dataset
            msg = f"{path.name}: is a folder, not a file; deliver the table as one file"
            raise ExtractFormatError(msg)
    if parquet_path.exists():
        try:
            schema = dict(pl.scan_parquet(parquet_path).collect_schema())
        # A damaged footer can make polars panic (a Rust unwrap) rather than raise an error.
        except (pl.exceptions.PolarsError, pl.exceptions.PanicException) as exc:
            msg = f"{parquet_path.name}: not a readable Parquet file ({type(exc).__name__})"
            raise ExtractFormatError(msg) from None
        return TableFile(spec, parquet_path, "parquet", schema)
    if csv_path.exists():
        names = _check_csv_head(csv_path, spec)
        return TableFile(spec, csv_path, "csv", dict.fromkeys(names, pl.String()))
    msg = f"{csv_path.name} / {parquet_path.name}: table {table!r} is missing from the extract"
    raise ExtractNotFoundError(msg)


def read_table(folder: str | Path, supplier: str | Supplier, table: str) -> pl.LazyFrame:
    """Read one table of an extract lazily, with the contract's columns and types.

    Extra columns are dropped with a logged warning. Values that cannot be cast become null
    here; use :func:`extracts.validation.validate_extract` to count and quarantine them.

    Args:
        folder: the extract folder.
        supplier: ``"ehr"`` or ``"claims"`` (or a contract Supplier).
        table: the table name, e.g. ``"patients"``.

    Returns:
        A LazyFrame with exactly the contract columns, in contract order and types; optional
        (contract v2) columns the file lacks are nulls.

    Raises:
        ExtractNotFoundError: the folder or the table file is missing.
        ExtractFormatError: the file cannot be read as the contract says.
        ContractError: a column is missing or stored in an incompatible type.
    """
    tf = open_table(folder, supplier, table)
    problems = tf.structural_problems()
    if problems:
        raise ContractError(problems)
    tf.extra_column_warnings()
    return tf.scan().select(tf.cast_expression(c).alias(c.name) for c in tf.table.columns)


def read_extract(folder: str | Path, supplier: str | Supplier) -> dict[str, pl.LazyFrame]:
    """Read every table of a supplier's extract (see :func:`read_table`).

    Raises at the first unreadable table; :func:`extracts.validation.validate_extract` instead
    collects every problem of the extract into one :class:`ContractError`.
    """
    spec = resolve_supplier(supplier)
    return {name: read_table(folder, spec, name) for name in spec.table_names}


def _first_line_not_utf8(path: Path) -> int | None:
    """The number of the first line that is not valid UTF-8, or None (reads the whole file)."""
    line, carry = 1, b""
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            data, carry = carry + block, b""
            try:
                data.decode("utf-8")
            except UnicodeDecodeError as exc:
                if exc.end != len(data) or len(data) - exc.start >= 4:
                    return line + data.count(b"\n", 0, exc.start)
                data, carry = data[: exc.start], data[exc.start :]  # a character split by the block
            line += data.count(b"\n")
    return line if carry else None


def scan_error_message(tf: TableFile, exc: BaseException) -> str:
    """A message for a polars error reading ``tf``, without polars' text (it may quote values).

    For a CSV, the file is checked for bytes that are not UTF-8 first (only here, on failure):
    a Latin-1 or Windows-1252 export is the usual cause, and "not UTF-8" is what to fix.
    """
    if tf.format == "csv":
        line = _first_line_not_utf8(tf.path)
        if line is not None:
            return (
                f"{tf.file_name}: not valid UTF-8 (first at line {line}); the contract asks for "
                "UTF-8 (without BOM). Export the file again as UTF-8, not Latin-1 or Windows-1252"
            )
    return (
        f"{tf.file_name}: polars could not read the file ({type(exc).__name__}): it is not "
        f"valid {tf.format.upper()} per the contract (e.g. a line with too many fields or an "
        "unclosed quote)"
    )
