"""Unit tests of the auditor's identifier scan (``audit.identifiers``).

disclosure.md, "The auditor": the release holds no identifier-like column (BSN, pseudonym, token,
patient or claim id, any 9-digit number passing the 11-test). The 11-test examples are those of
``shared/spec/data-contract.md`` (111222333 and 123456782 are valid).
"""

from __future__ import annotations

import polars as pl
import pytest

from audit import passes_eleven_test, scan_identifiers


def _scan(frame: pl.DataFrame) -> list[tuple[str, tuple[str, ...]]]:
    return [(f.check, f.cells) for f in scan_identifiers("release", frame)]


@pytest.mark.parametrize("value", ["111222333", "123456782", "012345672"])
def test_eleven_test_contract_examples_pass(value: str) -> None:
    assert passes_eleven_test(value)


@pytest.mark.parametrize(
    "value",
    ["123456789", "111222334", "000000000", "12345678", "1234567890", "12345678a", "١٢٣٤٥٦٧٨٢"],
)
def test_eleven_test_rejects_failing_zero_short_long_and_non_ascii(value: str) -> None:
    assert not passes_eleven_test(value)


@pytest.mark.parametrize(
    "value",
    [
        "123456782",
        "bsn 111222333 in a label",
        "123.456.782",
        "123-456-782",
        "123 456 782",
        "x:012345672",
    ],
)
def test_identifier_scan_value_passing_the_11_test_is_caught(value: str) -> None:
    frame = pl.DataFrame({"label": [value, "region A"], "n": [12, 40]})
    assert _scan(frame) == [("identifier", ("label",))]


@pytest.mark.parametrize(
    "value", ["123456789", "000000000", "1234567820", "12345678", "2019-01-01", "1111222333"]
)
def test_identifier_scan_value_failing_11_test_or_not_9_digits_is_not_caught(value: str) -> None:
    frame = pl.DataFrame({"label": [value], "n": [12]})
    assert _scan(frame) == []


def test_identifier_scan_integer_and_float_columns_are_scanned_as_text() -> None:
    frame = pl.DataFrame({"n": [12, 123456782], "cost": [1.5, 111222333.0]})
    assert _scan(frame) == [("identifier", ("n",)), ("identifier", ("cost",))]


@pytest.mark.parametrize(
    "value",
    [
        "P1v1.af2e96da.01e73c16a277e8e007437a624db671aa",
        "P2v1.fbdcc975.37fede8759b264618ad90874de11c5fd",
        "TKv1.00000000." + "0" * 32,
        "see p2v1.00000000",
        "P1v2.",
    ],
)
def test_identifier_scan_labelled_pseudonym_or_token_is_caught(value: str) -> None:
    frame = pl.DataFrame({"group": [value]})
    assert _scan(frame) == [("identifier", ("group",))]


def test_identifier_scan_labelled_body_digit_runs_are_not_reported_as_bsns() -> None:
    # The 32-hex body is masked before the digit-run search: one finding (the label), not two.
    body = "123456782" + "0" * 23
    findings = scan_identifiers("release", pl.DataFrame({"group": [f"P2v1.00000000.{body}"]}))
    assert [f.message for f in findings] == ["1 value(s) hold a labelled pseudonym or token"]


@pytest.mark.parametrize(
    "name",
    ["bsn", "BSN_hash", "pseudonym", "p1", "P2", "p1_value", "token", "patient_id", "PatientID",
     "claim_id", "claim-id"],
)  # fmt: skip
def test_identifier_scan_identifier_column_name_is_caught(name: str) -> None:
    frame = pl.DataFrame({name: [12], "n": [40]})
    assert _scan(frame) == [("identifier", (name,))]


@pytest.mark.parametrize("name", ["group1", "n", "region", "age_band", "p10", "numerator"])
def test_identifier_scan_ordinary_column_name_is_not_caught(name: str) -> None:
    assert _scan(pl.DataFrame({name: [12]})) == []


def test_identifier_scan_findings_name_the_column_never_the_value() -> None:
    frame = pl.DataFrame({"label": ["111222333"], "token": ["TKv1.00000000." + "f" * 32]})
    for finding in scan_identifiers("release", frame):
        text = " ".join([finding.table, finding.check, *finding.cells, finding.message])
        assert "111222333" not in text and "ffff" not in text


def test_identifier_scan_nulls_and_nested_columns() -> None:
    frame = pl.DataFrame({"label": [None, "a"], "codes": [["123456782"], ["x"]]})
    assert _scan(frame) == [("identifier", ("codes",))]
