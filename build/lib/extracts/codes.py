"""Code normalisation and validity, as polars expressions (``method.md`` section 9, item 8).

Suppliers deliver codes in odd forms (``t90.02``, `` T9002``, ``T90.2``). The rules fixed by the
method are:

- ICPC: remove whitespace and dots, upper-case; valid when a chapter letter + 2 digits + at most
  2 sub-code digits; base = first three characters of a valid code (all three examples give
  ``T90``).
- provider, sector, specialism, diagnosis code, insurer, region, sex: trimmed, upper-case; a
  3-digit specialism code gets back the leading zero a spreadsheet dropped (``313`` -> ``0313``).
- contact type, care type: trimmed, lower-case.

Every function takes and returns a :class:`polars.Expr`, so normalisation runs on whole columns
inside lazy (streaming-friendly) queries; there is no per-row Python. A value that is empty after
normalisation becomes null, as the contract says "empty = null".
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from extracts import contract

__all__ = [
    "COLUMN_NORMALISERS",
    "ICPC_CHAPTERS",
    "icpc_base",
    "icpc_is_valid",
    "normalise_icpc",
    "normalise_lower",
    "normalise_specialism",
    "normalise_upper",
]

ICPC_CHAPTERS = "ABDFHKLNPRSTUWXYZ"
"""The chapter letters of ICPC-1-NL (components: A general, B blood, ... Z social)."""

# Letter + 2 digits + an optional sub-code of at most 2 digits, on the *normalised* value: the
# dot between code and sub-code has been removed, so `T90.02` is checked as `T9002`.
_ICPC_PATTERN = rf"^[{ICPC_CHAPTERS}][0-9]{{2}}[0-9]{{0,2}}$"


def _empty_to_null(expr: pl.Expr) -> pl.Expr:
    """Null where the string is empty (the contract's "empty = null")."""
    return pl.when(expr.str.len_bytes() == 0).then(None).otherwise(expr)


def normalise_icpc(expr: pl.Expr) -> pl.Expr:
    """Normalise an ICPC column: remove whitespace and dots, upper-case.

    Idempotent. A value that is empty afterwards becomes null; nulls stay null.

    Args:
        expr: a string expression of raw ICPC codes.

    Returns:
        The normalised codes, e.g. `` t90.02`` -> ``T9002``, ``T90.2`` -> ``T902``.
    """
    return _empty_to_null(expr.str.replace_all(r"[\s.]", "").str.to_uppercase())


def icpc_is_valid(expr: pl.Expr) -> pl.Expr:
    """True where a *normalised* ICPC code is valid; null where the code is null.

    Valid: a chapter letter (:data:`ICPC_CHAPTERS`), 2 digits and at most 2 sub-code digits.

    Args:
        expr: normalised codes, the output of :func:`normalise_icpc`.
    """
    return expr.str.contains(_ICPC_PATTERN)


def icpc_base(expr: pl.Expr) -> pl.Expr:
    """The three-character base (``T90``) of a *normalised* valid code, else null.

    Args:
        expr: normalised codes, the output of :func:`normalise_icpc`.
    """
    return pl.when(icpc_is_valid(expr)).then(expr.str.slice(0, 3)).otherwise(None)


def normalise_upper(expr: pl.Expr) -> pl.Expr:
    """Trim surrounding whitespace and upper-case; empty becomes null.

    For provider, sector, specialism, diagnosis code, insurer, region and sex.
    """
    return _empty_to_null(expr.str.strip_chars().str.to_uppercase())


def normalise_specialism(expr: pl.Expr) -> pl.Expr:
    """Trim and upper-case a specialism code, and restore a lost leading zero: ``313`` -> ``0313``.

    Specialism codes are 4 digits starting with ``0`` (``0303`` surgery, ``0313`` internal
    medicine) or ``GGZ``; a spreadsheet that read the column as numbers drops the zero, and a
    3-digit code is therefore that code with its zero lost. Counted by the validator as
    ``changed_by_normalisation``.
    """
    upper = normalise_upper(expr)
    return pl.when(upper.str.contains(r"^[0-9]{3}$")).then(pl.lit("0") + upper).otherwise(upper)


def normalise_lower(expr: pl.Expr) -> pl.Expr:
    """Trim surrounding whitespace and lower-case; empty becomes null.

    For contact type and care type.
    """
    return _empty_to_null(expr.str.strip_chars().str.to_lowercase())


COLUMN_NORMALISERS: dict[str, Callable[[pl.Expr], pl.Expr]] = {
    "icpc": normalise_icpc,
    "provider": normalise_upper,
    "sector": normalise_upper,
    "specialism": normalise_specialism,
    "diagnosis_code": normalise_upper,
    "insurer": normalise_upper,
    "region": normalise_upper,
    "sex": normalise_upper,
    "contact_type": normalise_lower,
    "care_type": normalise_lower,
}
"""Which normaliser applies to a contract column, by column name (method.md 9.8).

A column name means the same thing in every table of the contract, so one map serves all
tables. Checked against :mod:`extracts.contract` at import time.
"""


def _check_columns_exist() -> None:
    """Fail at import when a key above is not a column of the contract (a typo or a rename)."""
    known = {
        c.name for s in contract.SUPPLIERS.values() for t in s.tables for c in t.columns
    }
    unknown = sorted(set(COLUMN_NORMALISERS) - known)
    if unknown:
        msg = f"COLUMN_NORMALISERS names columns that are not in the contract: {unknown}"
        raise RuntimeError(msg)


_check_columns_exist()
