"""Data contract v2 (docs/data-contract.md): the optional identifier columns of patients and insured.

Small tables: the identifiers as delivered, as they come out of validation, and what is counted.
v1 extracts (without the columns) keep working; odd forms are normalised and counted; malformed
values are counted and read as null, never quarantining the row and never quoted in a message.
"""

from __future__ import annotations

import logging
from pathlib import Path

import polars as pl
import pytest

from extract_builders import (
    claims_extract,
    ehr_extract,
    set_value,
    with_identifiers,
    write_extract,
)

from extracts import validate_cli
from extracts.contract import CLAIMS, EHR, IDENTIFYING_COLUMNS
from extracts.errors import ContractError
from extracts.reader import read_table
from extracts.validation import ValidatedExtract, validate_extract
from pseudonymisation.keys import generate_key
from pseudonymisation.supplier import run_supplier_step

IDENTIFIERS = ("postcode6", "house_number", "insurer", "insurance_number", "family_name", "initials",
               "given_name", "street", "city")


def _validate(folder: Path, supplier: str, tables: dict[str, pl.DataFrame], *, fmt: str = "csv",
              share: float = 0.0) -> ValidatedExtract:
    write_extract(folder, tables, fmt=fmt)
    result = validate_extract(folder, supplier, max_quarantine_share=share)
    for name, lf in result.tables.items():  # no silent drop
        assert result.row_counts[name] == lf.collect().height + result.quarantined(name), name
    return result


def _column(result: ValidatedExtract, table: str, column: str) -> list[object]:
    return result.tables[table].collect()[column].to_list()


def test_contract_v2_names_the_optional_identifier_columns_of_patients_and_insured() -> None:
    assert IDENTIFYING_COLUMNS == {
        ("ehr", "patients"): IDENTIFIERS,
        ("claims", "insured"): tuple(c for c in IDENTIFIERS if c != "insurer"),
    }
    for table in (EHR.table("patients"), CLAIMS.table("insured")):
        for name in IDENTIFYING_COLUMNS[("ehr" if table.name == "patients" else "claims", table.name)]:
            column = table.column(name)
            assert column.optional and column.nullable and column.dtype == pl.String
    assert not CLAIMS.table("insured").column("insurer").optional  # the v1 column, reused


@pytest.mark.parametrize(("supplier", "table", "fmt"), [
    ("ehr", "patients", "csv"), ("ehr", "patients", "parquet"),
    ("claims", "insured", "csv"), ("claims", "insured", "parquet"),
])
def test_v1_extract_without_identifier_columns_reads_them_as_nulls(
    tmp_path: Path, supplier: str, table: str, fmt: str
) -> None:
    tables = ehr_extract() if supplier == "ehr" else claims_extract()
    result = _validate(tmp_path, supplier, tables, fmt=fmt)
    assert result.quarantine.height == 0 and result.warnings == []
    clean = result.tables[table].collect()
    for name in IDENTIFYING_COLUMNS[(supplier, table)]:
        assert clean[name].null_count() == clean.height, name
    assert clean.drop(IDENTIFYING_COLUMNS[(supplier, table)]).columns == list(tables[table].columns)
    assert result.notes.filter(pl.col("note") == "malformed")["rows"].sum() == 0


def test_v2_extract_identifiers_pass_validation_unchanged(tmp_path: Path) -> None:
    tables = with_identifiers(ehr_extract())
    result = _validate(tmp_path, "ehr", tables, fmt="parquet")
    patients = result.tables["patients"].collect()
    for name in IDENTIFIERS:
        assert patients[name].to_list() == tables["patients"][name].to_list(), name
        assert result.note("patients", name, "changed_by_normalisation") == 0
        assert result.note("patients", name, "malformed") == 0


@pytest.mark.parametrize(("column", "delivered", "normalised"), [
    ("postcode6", ["1011 ab", " 3511cd", "1011AB "], ["1011AB", "3511CD", "1011AB"]),
    ("house_number", ["12a", "007 - 2", "12 hs"], ["12-A", "7-2", "12-HS"]),
    ("insurer", [" 3311", "0101 ", " 3311 "], ["3311", "0101", "3311"]),
    ("insurance_number", ["1234.567.89", "004 455 667", "223-344-556"],
     ["123456789", "004455667", "223344556"]),
    ("family_name", ["Berg, van der", "  de   Vries", "Berg,Van der"],
     ["van der Berg", "de Vries", "Van der Berg"]),
    ("initials", ["J.P.", "m", "a. "], ["JP", "M", "A"]),
    ("given_name", [" Jan  Pieter", "Marieke ", "Anne-Sophie\t"], ["Jan Pieter", "Marieke", "Anne-Sophie"]),
    ("street", ["Dorpsstraat ", " 1e  Jan Steenstraat", "Laan  1940-1945"],
     ["Dorpsstraat", "1e Jan Steenstraat", "Laan 1940-1945"]),
    ("city", [" Utrecht", "'s-Hertogenbosch ", "Bergen  (NH)"], ["Utrecht", "'s-Hertogenbosch", "Bergen (NH)"]),
])
def test_identifiers_in_odd_forms_are_normalised_and_counted(
    tmp_path: Path, column: str, delivered: list[str], normalised: list[str]
) -> None:
    tables = with_identifiers(ehr_extract())
    tables["patients"] = tables["patients"].with_columns(pl.Series(column, delivered))
    result = _validate(tmp_path, "ehr", tables)
    assert _column(result, "patients", column) == normalised
    assert result.note("patients", column, "changed_by_normalisation") == 3
    assert result.note("patients", column, "malformed") == 0


@pytest.mark.parametrize(("column", "malformed"), [
    ("postcode6", ["0123AB", "1234SA", "12345"]),  # leading 0; never issued; no letters
    ("house_number", ["a12", "0", "123456"]),  # no number first; 0; above 99999
    ("insurer", ["331", "ABCD", "33110"]),
    ("insurance_number", ["12a45", "000000", "1234567890123456"]),  # letter; zeros; 16 digits
    ("family_name", ["Jansen2", "-", "Berg, J."]),  # digit; no letter; comma not before a prefix
    ("initials", ["J1", "JPMAKTRSW", "?"]),
    ("given_name", ["Jan2", "-", "J" * 101]),  # digit; no letter first; too long
    ("street", ["12", "Dorpsstraat 12?", "-/-"]),  # no letter; odd sign; no letter
    ("city", ["Utrecht3", "(NH)", "Zwolle!"]),  # digit; bracket first; odd sign
])
def test_malformed_identifiers_are_counted_and_read_as_null_rows_kept(
    tmp_path: Path, column: str, malformed: list[str]
) -> None:
    tables = with_identifiers(ehr_extract())
    tables["patients"] = tables["patients"].with_columns(pl.Series(column, malformed))
    result = _validate(tmp_path, "ehr", tables)
    assert result.quarantine.height == 0  # an unusable identifier does not drop the patient
    assert _column(result, "patients", column) == [None, None, None]
    assert result.note("patients", column, "malformed") == 3
    assert result.note("patients", column, "changed_by_normalisation") == 0


def test_claims_insured_identifiers_are_normalised_and_counted_per_row(tmp_path: Path) -> None:
    tables = with_identifiers(claims_extract())
    insured = set_value(tables["insured"], 0, "postcode6", "1011 ab")
    insured = set_value(insured, 1, "postcode6", "10110AB")
    tables["insured"] = set_value(insured, 2, "insurance_number", "0044.556.67")
    result = _validate(tmp_path, "claims", tables)
    assert _column(result, "insured", "postcode6")[:2] == ["1011AB", None]
    assert result.note("insured", "postcode6", "changed_by_normalisation") == 1
    assert result.note("insured", "postcode6", "malformed") == 1
    assert result.note("insured", "insurance_number", "changed_by_normalisation") == 1
    # The insured's v1 insurer column keeps its v1 rule: required, not checked as an identifier.
    assert result.notes.filter((pl.col("table") == "insured") & (pl.col("column") == "insurer")
                               & (pl.col("note") == "malformed")).height == 0


def test_a_file_with_some_identifier_columns_reads_the_others_as_nulls(tmp_path: Path) -> None:
    tables = with_identifiers(ehr_extract())
    tables["patients"] = tables["patients"].drop("family_name", "initials")
    write_extract(tmp_path, tables, fmt="csv")
    patients = read_table(tmp_path, "ehr", "patients").collect()
    assert patients.schema == EHR.table("patients").schema
    assert patients["postcode6"].to_list() == ["1011AB", "3511CD", "1011AB"]
    assert patients["family_name"].null_count() == 3


def test_missing_v1_column_is_still_a_contract_error_in_a_v2_extract(tmp_path: Path) -> None:
    tables = with_identifiers(ehr_extract())
    tables["patients"] = tables["patients"].drop("postcode4")
    write_extract(tmp_path, tables, fmt="csv")
    with pytest.raises(ContractError) as info:
        validate_extract(tmp_path, "ehr")
    assert info.value.problems == [
        "patients.csv, column 'postcode4': missing (rule: every contract v1 column is required, "
        "nullable or not)"
    ]


def test_identifier_column_stored_as_integer_is_a_contract_error(tmp_path: Path) -> None:
    tables = with_identifiers(ehr_extract())
    tables["patients"] = tables["patients"].with_columns(pl.lit(12).alias("house_number"))
    write_extract(tmp_path, tables, fmt="parquet")
    with pytest.raises(ContractError) as info:
        validate_extract(tmp_path, "ehr")
    assert "patients.parquet, column 'house_number': stored as Int32" in info.value.problems[0]


def test_no_message_or_note_holds_an_identifier_value(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    tables = with_identifiers(ehr_extract())
    planted = ["1011 zz", "9999XX9", "77 qq", "Zwartekop, van", "Qwerty9", "98765.4321", "X.Y.Z."]
    patients = tables["patients"]
    for row, (column, value) in enumerate([("postcode6", planted[0]), ("family_name", planted[3]),
                                           ("insurance_number", planted[5])]):
        patients = set_value(patients, row, column, value)
    patients = set_value(patients, 0, "house_number", planted[2])
    patients = set_value(patients, 1, "postcode6", planted[1])
    patients = set_value(patients, 2, "family_name", planted[4])
    tables["patients"] = set_value(patients, 2, "initials", planted[6])
    write_extract(tmp_path, tables, fmt="csv")
    with caplog.at_level(logging.DEBUG):
        assert validate_cli.main([str(tmp_path), "--supplier", "ehr"]) == 0
        result = validate_extract(tmp_path, "ehr")
    captured = capsys.readouterr()
    texts = [captured.out, captured.err, *result.warnings, str(result.notes.to_dicts()),
             str(result.quarantine.to_dicts()), *(r.getMessage() for r in caplog.records)]
    normalised = ["1011ZZ", "9999XX9", "77-QQ", "van Zwartekop", "Qwerty9", "987654321", "XYZ"]
    leaked = [v for t in texts for v in (*planted, *normalised) if v.lower() in t.lower()]
    assert leaked == []
    assert result.note("patients", "postcode6", "malformed") == 1  # 9999XX9
    assert result.note("patients", "family_name", "malformed") == 1  # Qwerty9


def test_pfl_validate_prints_identifier_problems_per_table_column_and_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tables = with_identifiers(claims_extract())
    tables["insured"] = set_value(tables["insured"], 3, "postcode6", "ABCDEF")
    tables["insured"] = set_value(tables["insured"], 4, "initials", "j.p.")
    write_extract(tmp_path, tables, fmt="csv")
    assert validate_cli.main([str(tmp_path), "--supplier", "claims"]) == 0
    lines = [" ".join(line.replace("│", " ").split()) for line in capsys.readouterr().out.splitlines()]
    assert "insured postcode6 malformed 1" in lines
    assert "insured initials changed_by_normalisation 1" in lines


@pytest.mark.parametrize("supplier", ["ehr", "claims"])
def test_supplier_content_files_hold_no_identifier_column_or_value(tmp_path: Path, supplier: str) -> None:
    tables = with_identifiers(ehr_extract() if supplier == "ehr" else claims_extract())
    write_extract(tmp_path / "extract", tables, fmt="parquet")
    key = generate_key(tmp_path / "network.key", "network")
    result = run_supplier_step(tmp_path / "extract", supplier, key, tmp_path / "out")
    table = "patients" if supplier == "ehr" else "insured"
    identifying = set(IDENTIFYING_COLUMNS[(supplier, table)])
    values = {v for name in identifying for v in tables[table][name].to_list()}
    # Short values (initials "M", house number "12", the insured's v1 insurer column) are also
    # sexes, codes and content: the longer ones (postcodes, numbers, names) must not appear.
    values = {v for v in values if len(v) >= 5}
    assert len(values) >= 7
    content = result.out / "for_research"
    for path in content.glob("*.parquet"):
        assert not identifying & set(pl.read_parquet_schema(path)), path.name
        frame = pl.read_parquet(path)
        texts = {str(v) for c in frame.columns for v in frame[c].to_list()}
        assert not texts & values, path.name
    assert result.report["rows"][table] > 0
