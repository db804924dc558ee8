"""Unit tests of BSN normalisation and the 11-test, with the data contract's examples."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from extracts.bsn import (
    BsnStatus,
    bsn_status,
    check_digit_ok,
    normalise_bsn,
    valid_bsns_from_prefixes,
)


def _status(values: list[str | None]) -> list[str]:
    frame = pl.DataFrame({"b": values}, schema={"b": pl.String})
    return frame.select(bsn_status(normalise_bsn(pl.col("b"))).alias("b"))["b"].to_list()


def _normalised(values: list[str | None]) -> list[str | None]:
    frame = pl.DataFrame({"b": values}, schema={"b": pl.String})
    return frame.select(normalise_bsn(pl.col("b")).alias("b"))["b"].to_list()


@pytest.mark.parametrize(
    "value",
    ["111222333", "123456782", "111 222 333", "123.456.782", "123-456-782", " 1234 567 82 "],
)
def test_bsn_contract_examples_and_separators_are_valid(value: str) -> None:
    assert _status([value]) == [BsnStatus.VALID]


def test_bsn_eight_digits_is_left_padded_with_one_zero() -> None:
    assert _normalised(["12345672", "1234.5672"]) == ["012345672", "012345672"]
    assert _status(["12345672"]) == [BsnStatus.VALID]


@pytest.mark.parametrize(
    ("value", "status"),
    [
        ("111222334", BsnStatus.CHECK_DIGIT),
        ("000000000", BsnStatus.ZERO),
        ("00000000", BsnStatus.ZERO),
        ("12345678a", BsnStatus.MALFORMED),
        ("1234567", BsnStatus.MALFORMED),
        ("1234567890", BsnStatus.MALFORMED),
        (None, BsnStatus.MISSING),
        ("", BsnStatus.MISSING),
        (" - ", BsnStatus.MISSING),
    ],
)
def test_bsn_contract_failures_get_their_status(value: str | None, status: BsnStatus) -> None:
    assert _status([value]) == [status]


def test_normalise_bsn_leaves_non_digit_text_for_the_malformed_status() -> None:
    assert _normalised(["12345678a", "abc"]) == ["12345678a", "abc"]


def test_check_digit_ok_on_contract_examples() -> None:
    values = np.array([111222333, 123456782, 111222334, 0], dtype=np.int64)
    assert check_digit_ok(values).tolist() == [True, True, False, False]


def test_valid_bsns_from_prefixes_completes_contract_examples() -> None:
    bsns, ok = valid_bsns_from_prefixes(np.array([11122233, 12345678, 0]))
    assert ok.tolist() == [True, True, False]
    assert bsns[:2].tolist() == [111222333, 123456782]
