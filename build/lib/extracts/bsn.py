"""BSN (burgerservicenummer) normalisation and validation, vectorised.

Rules (``shared/spec/data-contract.md``, "Identifiers"): remove spaces, dots and hyphens;
left-pad an 8-digit value with one zero; the result must be 9 digits, pass the 11-test
``9·d1 + 8·d2 + 7·d3 + 6·d4 + 5·d5 + 4·d6 + 3·d7 + 2·d8 − 1·d9 ≡ 0 (mod 11)`` and not be
``000000000``.

Everything works on whole columns (polars expressions or numpy arrays); there is no per-row
Python. Functions here never print or raise with a BSN value in the message.
"""

from __future__ import annotations

from enum import StrEnum

import numpy as np
import polars as pl

__all__ = [
    "BsnStatus",
    "bsn_status",
    "check_digit_ok",
    "normalise_bsn",
    "valid_bsns_from_prefixes",
]

# Weights of the 11-test, d1..d9.
_WEIGHTS = np.array([9, 8, 7, 6, 5, 4, 3, 2, -1], dtype=np.int64)
_POW10 = np.array([10**k for k in range(8, -1, -1)], dtype=np.int64)


class BsnStatus(StrEnum):
    """Why a BSN is (in)valid; the quarantine reasons of the supplier step."""

    VALID = "valid"
    MISSING = "missing"  # null or empty after normalisation
    MALFORMED = "malformed"  # not 9 digits after normalisation
    ZERO = "all_zero"  # 000000000
    CHECK_DIGIT = "fails_11_test"


def normalise_bsn(expr: pl.Expr) -> pl.Expr:
    """Normalise a BSN column: strip spaces, dots, hyphens; left-pad 8 digits to 9.

    Idempotent. Values that are not digit strings are left as they are (and later fail as
    malformed); empty strings become null.
    """
    stripped = expr.cast(pl.String).str.replace_all(r"[\s.\-]", "")
    padded = (
        pl.when(stripped.str.contains(r"^[0-9]{8}$"))
        .then(pl.lit("0") + stripped)
        .otherwise(stripped)
    )
    return pl.when(padded.str.len_bytes() == 0).then(None).otherwise(padded)


def _eleven_test(value: pl.Expr) -> pl.Expr:
    """True where the 9-digit integer ``value`` passes the 11-test."""
    total = pl.lit(0, dtype=pl.Int64)
    for weight, power in zip(_WEIGHTS.tolist(), _POW10.tolist(), strict=True):
        total = total + weight * ((value // power) % 10)
    return (total % 11) == 0


def bsn_status(expr: pl.Expr) -> pl.Expr:
    """The :class:`BsnStatus` of each value of a *normalised* BSN column, as a string."""
    nine_digits = expr.str.contains(r"^[0-9]{9}$")
    value = pl.when(nine_digits).then(expr).otherwise(None).cast(pl.Int64, strict=False)
    return (
        pl.when(expr.is_null())
        .then(pl.lit(BsnStatus.MISSING.value))
        .when(~nine_digits)
        .then(pl.lit(BsnStatus.MALFORMED.value))
        .when(value == 0)
        .then(pl.lit(BsnStatus.ZERO.value))
        .when(~_eleven_test(value))
        .then(pl.lit(BsnStatus.CHECK_DIGIT.value))
        .otherwise(pl.lit(BsnStatus.VALID.value))
    )


def check_digit_ok(values: np.ndarray) -> np.ndarray:
    """11-test over an integer array of 9-digit BSN values (numpy, for the generator)."""
    digits = (values[:, None] // _POW10[None, :]) % 10
    return ((digits @ _WEIGHTS) % 11 == 0) & (values != 0)


def valid_bsns_from_prefixes(prefixes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Complete 8-digit prefixes with the check digit that makes them pass the 11-test.

    Returns ``(bsns, ok)``: for about 1 prefix in 11 no digit 0..9 works (``ok`` is False
    there and the returned value is meaningless); the caller drops those.
    """
    prefixes = prefixes.astype(np.int64)
    digits = (prefixes[:, None] // _POW10[None, 1:]) % 10  # d1..d8
    partial = digits @ _WEIGHTS[:8]
    # 11-test: partial - d9 ≡ 0 (mod 11)  =>  d9 = partial mod 11, valid when < 10.
    d9 = partial % 11
    ok = (d9 < 10) & (prefixes != 0)
    return prefixes * 10 + d9, ok
