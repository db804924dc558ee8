"""Unit tests of code normalisation (method.md section 9, item 8)."""

from __future__ import annotations

import polars as pl
import pytest

from extracts import codes, contract


def _apply(fn, values: list[str | None]) -> list[str | None]:
    frame = pl.DataFrame({"v": values}, schema={"v": pl.String})
    return frame.select(fn(pl.col("v")).alias("v"))["v"].to_list()


def _icpc(values: list[str | None]) -> list[str | None]:
    return _apply(codes.normalise_icpc, values)


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [("t90.02", "T9002"), (" T9002", "T9002"), ("T90.2", "T902"), ("T90", "T90"), ("k 86", "K86")],
)
def test_normalise_icpc_odd_forms_become_canonical(raw: str, normalised: str) -> None:
    assert _icpc([raw]) == [normalised]


@pytest.mark.parametrize("raw", ["t90.02", " T9002", "T90.2"])
def test_icpc_base_of_method_examples_is_t90(raw: str) -> None:
    base = _apply(lambda e: codes.icpc_base(codes.normalise_icpc(e)), [raw])
    assert base == ["T90"]


def test_normalise_icpc_is_idempotent() -> None:
    once = _icpc(["t90.02", " T9002", "T90.2", " ", None, "x1"])
    assert _icpc(once) == once


def test_normalise_icpc_empty_or_blank_becomes_null() -> None:
    assert _icpc(["", "  ", " . ", None]) == [None, None, None, None]


@pytest.mark.parametrize("code", ["A01", "T90", "T902", "T9002", "Z29", "B80"])
def test_icpc_is_valid_accepts_chapter_letter_two_digits_and_subcode(code: str) -> None:
    assert _apply(codes.icpc_is_valid, [code]) == [True]


@pytest.mark.parametrize(
    "code",
    ["C90", "E01", "T9", "T90123", "9T0", "TT90", "T9A", "t90", "T90.02"],
)
def test_icpc_is_valid_rejects_other_chapters_lengths_and_unnormalised(code: str) -> None:
    assert _apply(codes.icpc_is_valid, [code]) == [False]


def test_icpc_base_of_invalid_or_null_code_is_null() -> None:
    assert _apply(codes.icpc_base, ["C90", "T9", None]) == [None, None, None]


def test_normalise_upper_trims_and_upper_cases() -> None:
    assert _apply(codes.normalise_upper, [" poh-ggz ", "msz", "GGZ_B", " ", None]) == [
        "POH-GGZ",
        "MSZ",
        "GGZ_B",
        None,
        None,
    ]


def test_normalise_lower_trims_and_lower_cases() -> None:
    assert _apply(codes.normalise_lower, [" Consult ", "OPNAME", "", None]) == [
        "consult",
        "opname",
        None,
        None,
    ]


def test_column_normalisers_name_only_contract_columns() -> None:
    known = {c.name for s in contract.SUPPLIERS.values() for t in s.tables for c in t.columns}
    assert set(codes.COLUMN_NORMALISERS) <= known


def test_column_normalisers_follow_method_case_rules() -> None:
    lower = {k for k, f in codes.COLUMN_NORMALISERS.items() if f is codes.normalise_lower}
    assert lower == {"contact_type", "care_type"}
    assert codes.COLUMN_NORMALISERS["icpc"] is codes.normalise_icpc
