"""The contract v2 identifier columns: normalisation and well-formedness, as polars expressions.

Suppliers deliver postcodes, house numbers, insurance numbers and names in odd forms; the rules
(``docs/data-contract.md``, section "Contract v2") are:

- ``postcode6`` (Dutch PC6): whitespace removed, upper-case: ``1234 ab`` -> ``1234AB``.
  Well-formed: a digit 1-9, three digits, two letters, not ``SA``, ``SD`` or ``SS`` (never issued).
- ``house_number``: the number without leading zeros, then the addition (huisletter and/or
  toevoeging) upper-case after a hyphen, separators dropped: ``12a``, ``12 A``, ``12-a`` ->
  ``12-A``; ``12-2`` -> ``12-2``; ``012 hs`` -> ``12-HS``. Well-formed: number 1-99999, addition
  of at most 5 letters or digits.
- ``insurer``: trimmed, upper-case (as the v1 insurer columns); well-formed: 4 digits (UZOVI).
- ``insurance_number`` (verzekerdennummer): spaces, dots and hyphens removed, leading zeros kept
  (it is a code); well-formed: 4 to 15 digits, not all zeros.
- ``family_name``: trimmed, inner whitespace collapsed, and the sorted-list form with the prefix
  after a comma put back in front: ``Berg, van den`` -> ``van den Berg``. Case is kept (matching
  compares names case-insensitively). Well-formed: letters, spaces, hyphens, apostrophes and dots,
  starting with a letter or an apostrophe (``'t Hart``), at most 100 characters.
- ``initials``: dots, spaces and hyphens removed, upper-case: ``j.p.`` -> ``JP``. Well-formed: 1 to
  8 letters.
- ``given_name``, ``street``, ``city``: trimmed, inner whitespace collapsed, case kept. Well-formed:
  at most 100 characters; a given name of letters, spaces, hyphens, apostrophes and dots starting
  with a letter; a street the same plus digits and ``/`` (``1e Jan Steenstraat``), with a letter
  somewhere; a city the same as a given name plus brackets, and it may start with an apostrophe
  (``'s-Hertogenbosch``, ``Bergen (NH)``).

A value that is empty after normalisation is null. A value that is not well-formed after
normalisation is *counted* (note ``malformed`` per table and column) and read as null: it is an
identifier the fallback cannot use, not a reason to drop the patient's row. Nothing here iterates
over rows in Python, and no expression's error can quote a value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from extracts import contract
from extracts.codes import normalise_upper

__all__ = [
    "FAMILY_NAME_PREFIXES",
    "IDENTIFIER_RULES",
    "IdentifierRule",
    "normalise_family_name",
    "normalise_text",
    "normalise_house_number",
    "normalise_initials",
    "normalise_insurance_number",
    "normalise_postcode6",
]

FAMILY_NAME_PREFIXES = (
    "van", "de", "der", "den", "het", "'t", "ter", "ten", "te", "in", "op", "aan", "uit", "bij",
    "onder", "over", "voor", "la", "le", "du", "da", "di", "del", "della", "el", "von", "vom", "zu",
    "'s", "d'", "l'",
)
"""Dutch name prefixes (voorvoegsels), in lower case, that the comma form puts after the name."""

_PREFIX_WORD = "|".join(FAMILY_NAME_PREFIXES)
# "Berg, van der": a name, a comma, then prefix words only (any case).
_COMMA_FORM = rf"^([^,]+?) ?, ?((?i:{_PREFIX_WORD})(?: (?i:{_PREFIX_WORD}))*)$"


def _empty_to_null(expr: pl.Expr) -> pl.Expr:
    return pl.when(expr.str.len_bytes() == 0).then(None).otherwise(expr)


def normalise_postcode6(expr: pl.Expr) -> pl.Expr:
    """Remove whitespace and upper-case: ``1234 ab`` -> ``1234AB``."""
    return _empty_to_null(expr.str.replace_all(r"\s", "").str.to_uppercase())


def postcode6_is_valid(expr: pl.Expr) -> pl.Expr:
    """A *normalised* PC6 is 4 digits (not starting with 0) and 2 letters, not SA, SD, SS."""
    never_issued = expr.str.slice(4).is_in(["SA", "SD", "SS"])
    return expr.str.contains(r"^[1-9][0-9]{3}[A-Z]{2}$") & ~never_issued


def normalise_house_number(expr: pl.Expr) -> pl.Expr:
    """``number`` or ``number-ADDITION`` (``012 a`` -> ``12-A``); unparseable: upper case.

    One pass per step, no branches: the separators after the number become a marker, every
    other separator (space, ``-``, ``/``, ``.``) goes, the marker becomes the one hyphen.
    """
    marked = expr.str.to_uppercase().str.replace(r"^\s*0*([1-9][0-9]*)[\s\-/.]*", "$1#")
    canonical = marked.str.replace_all(r"[\s\-/.]", "").str.replace("#", "-", literal=True)
    return _empty_to_null(canonical.str.strip_suffix("-"))


def house_number_is_valid(expr: pl.Expr) -> pl.Expr:
    """A *normalised* house number: 1-99999, optionally ``-`` and up to 5 letters or digits."""
    return expr.str.contains(r"^[1-9][0-9]{0,4}(-[A-Z0-9]{1,5})?$")


def insurer_is_valid(expr: pl.Expr) -> pl.Expr:
    """A *normalised* UZOVI code: 4 digits."""
    return expr.str.contains(r"^[0-9]{4}$")


def normalise_insurance_number(expr: pl.Expr) -> pl.Expr:
    """Remove whitespace, dots and hyphens; leading zeros are kept (a code, not a number)."""
    return _empty_to_null(expr.str.replace_all(r"[\s.\-]", ""))


def insurance_number_is_valid(expr: pl.Expr) -> pl.Expr:
    """A *normalised* verzekerdennummer: 4 to 15 digits, not all zeros."""
    return expr.str.contains(r"^[0-9]{4,15}$") & ~expr.str.contains(r"^0+$")


def normalise_family_name(expr: pl.Expr) -> pl.Expr:
    """Trim, collapse whitespace, put a prefix after a comma first: ``Berg, van`` -> ``van Berg``.

    One pass per step, no branches: these columns have millions of rows (claims ``insured``).
    """
    text = expr.str.strip_chars().str.replace_all(r"\s{2,}|[\t\r\n\f\v]", " ")
    return _empty_to_null(text.str.replace(_COMMA_FORM, "$2 $1"))


def family_name_is_valid(expr: pl.Expr) -> pl.Expr:
    """A *normalised* family name: letters, spaces, hyphens, apostrophes, dots; 1-100 characters."""
    # A letter first, or second after an apostrophe ('t Hart). No bounded repetition over a
    # Unicode class: it makes the regex automaton large and slow; the length is checked apart.
    return expr.str.contains(r"^'?\p{L}[\p{L}' .\-]*$") & (expr.str.len_chars() <= 100)


def normalise_initials(expr: pl.Expr) -> pl.Expr:
    """Remove dots, whitespace and hyphens, upper-case: ``j.p.`` -> ``JP``."""
    return _empty_to_null(expr.str.replace_all(r"[\s.\-]", "").str.to_uppercase())


def initials_is_valid(expr: pl.Expr) -> pl.Expr:
    """*Normalised* initials: 1 to 8 letters."""
    return expr.str.contains(r"^\p{L}+$") & (expr.str.len_chars() <= 8)


def normalise_text(expr: pl.Expr) -> pl.Expr:
    """Trim and collapse inner whitespace (given names, streets, cities); case is kept."""
    return _empty_to_null(expr.str.strip_chars().str.replace_all(r"\s{2,}|[\t\r\n\f\v]", " "))


def given_name_is_valid(expr: pl.Expr) -> pl.Expr:
    """A *normalised* given name: a letter, then letters, spaces, hyphens, apostrophes, dots; <= 100."""
    return expr.str.contains(r"^\p{L}[\p{L}' .\-]*$") & (expr.str.len_chars() <= 100)


def street_is_valid(expr: pl.Expr) -> pl.Expr:
    """A *normalised* street name: letters, digits, spaces, ``'.-/``, at least one letter; <= 100."""
    return (expr.str.contains(r"^[\p{L}0-9' .\-/]+$") & expr.str.contains(r"\p{L}")
            & (expr.str.len_chars() <= 100))


def city_is_valid(expr: pl.Expr) -> pl.Expr:
    """A *normalised* city (woonplaats): like a given name, may start with ``'``, may hold brackets."""
    return expr.str.contains(r"^'?\p{L}[\p{L}' .\-()]*$") & (expr.str.len_chars() <= 100)


@dataclass(frozen=True, slots=True)
class IdentifierRule:
    """How one identifier column is normalised and when its normalised value is well-formed."""

    normalise: Callable[[pl.Expr], pl.Expr]
    is_valid: Callable[[pl.Expr], pl.Expr]


IDENTIFIER_RULES: dict[str, IdentifierRule] = {
    "postcode6": IdentifierRule(normalise_postcode6, postcode6_is_valid),
    "house_number": IdentifierRule(normalise_house_number, house_number_is_valid),
    "insurer": IdentifierRule(normalise_upper, insurer_is_valid),
    "insurance_number": IdentifierRule(normalise_insurance_number, insurance_number_is_valid),
    "family_name": IdentifierRule(normalise_family_name, family_name_is_valid),
    "initials": IdentifierRule(normalise_initials, initials_is_valid),
    "given_name": IdentifierRule(normalise_text, given_name_is_valid),
    "street": IdentifierRule(normalise_text, street_is_valid),
    "city": IdentifierRule(normalise_text, city_is_valid),
}
"""Per identifier column name: its rule. Applied to the *optional* (v2) columns only: the claims
tables' v1 ``insurer`` columns keep their v1 behaviour."""


def _check_columns() -> None:
    """Fail at import when the rules and the contract's identifier columns differ."""
    identifying = {c for cols in contract.IDENTIFYING_COLUMNS.values() for c in cols}
    if identifying != set(IDENTIFIER_RULES):
        differ = sorted(identifying ^ set(IDENTIFIER_RULES))
        msg = f"IDENTIFIER_RULES and the contract's identifying columns differ: {differ}"
        raise RuntimeError(msg)


_check_columns()
