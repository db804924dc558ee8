"""Unit tests of the extract reader: file discovery, CSV and Parquet typing, format errors."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from extract_builders import claims_extract, ehr_extract, set_value, with_identifiers, write_extract

from extracts.contract import CLAIMS, EHR, Table
from extracts.errors import (
    ConfigError,
    ContractError,
    ExtractFormatError,
    ExtractNotFoundError,
)
from extracts.reader import open_table, read_extract, read_table


def _v1_part(frame: pl.DataFrame, table: Table) -> pl.DataFrame:
    """The v1 columns of a read table, after checking that its absent v2 columns are nulls."""
    assert frame.schema == table.schema
    optional = [c.name for c in table.columns if c.optional]
    assert all(frame[c].null_count() == frame.height for c in optional)
    return frame.drop(optional)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_read_extract_valid_ehr_roundtrips_with_contract_types(tmp_path: Path, fmt: str) -> None:
    tables = ehr_extract()
    frames = read_extract(write_extract(tmp_path, tables, fmt=fmt), "ehr")
    assert list(frames) == list(EHR.table_names)
    for name, lf in frames.items():
        assert isinstance(lf, pl.LazyFrame)
        assert_frame_equal(_v1_part(lf.collect(), EHR.table(name)), tables[name])


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_read_extract_valid_claims_keeps_leading_zeros_and_cents(tmp_path: Path, fmt: str) -> None:
    tables = claims_extract()
    frames = read_extract(write_extract(tmp_path, tables, fmt=fmt), "claims")
    for name, lf in frames.items():
        assert_frame_equal(_v1_part(lf.collect(), CLAIMS.table(name)), tables[name])
    assert "0101" in frames["insured"].collect()["insurer"].to_list()


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_read_extract_v2_identifiers_roundtrip_as_delivered(tmp_path: Path, fmt: str) -> None:
    tables = with_identifiers(ehr_extract())
    patients = read_table(write_extract(tmp_path, tables, fmt=fmt), "ehr", "patients").collect()
    assert_frame_equal(patients, tables["patients"])


def test_read_table_csv_column_order_is_free(tmp_path: Path) -> None:
    practices = ehr_extract()["practices"]
    write_extract(tmp_path, {"practices": practices.select(reversed(practices.columns))}, fmt="csv")
    out = read_table(tmp_path, "ehr", "practices").collect()
    assert_frame_equal(out, practices)


def test_read_table_csv_unparseable_value_becomes_null(tmp_path: Path) -> None:
    patients = set_value(ehr_extract()["patients"], 0, "birth_date", "31-12-1950")
    write_extract(tmp_path, {"patients": patients}, fmt="csv")
    out = read_table(tmp_path, "ehr", "patients").collect()
    assert out.schema == EHR.table("patients").schema
    assert out["birth_date"].to_list()[0] is None


def test_read_table_parquet_compatible_types_are_cast(tmp_path: Path) -> None:
    insured = claims_extract()["insured"].with_columns(
        pl.col("year").cast(pl.Int64), pl.col("birth_date").cast(pl.Datetime("us"))
    )
    claims = claims_extract()["claims"].with_columns(pl.col("cost_eur").cast(pl.Float64))
    write_extract(tmp_path, {"insured": insured, "claims": claims})
    insured_schema = read_table(tmp_path, "claims", "insured").collect_schema()
    assert insured_schema == CLAIMS.table("insured").schema
    out = read_table(tmp_path, "claims", "claims").collect()
    assert_frame_equal(out, claims_extract()["claims"])


def test_read_table_parquet_integer_code_column_is_a_contract_error(tmp_path: Path) -> None:
    practices = ehr_extract()["practices"].with_columns(pl.Series("practice_id", [1, 2]))
    write_extract(tmp_path, {"practices": practices})
    with pytest.raises(ContractError, match=r"practices\.parquet, column 'practice_id'"):
        read_table(tmp_path, "ehr", "practices")


def test_read_table_missing_column_is_a_contract_error(tmp_path: Path) -> None:
    write_extract(tmp_path, {"practices": ehr_extract()["practices"].drop("region")}, fmt="csv")
    with pytest.raises(ContractError, match=r"practices\.csv, column 'region': missing"):
        read_table(tmp_path, "ehr", "practices")


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_read_table_extra_column_is_dropped_with_a_warning(
    tmp_path: Path, fmt: str, caplog: pytest.LogCaptureFixture
) -> None:
    practices = ehr_extract()["practices"].with_columns(pl.lit("x").alias("note"))
    write_extract(tmp_path, {"practices": practices}, fmt=fmt)
    with caplog.at_level(logging.WARNING, logger="extracts.reader"):
        out = read_table(tmp_path, "ehr", "practices").collect()
    assert out.columns == list(EHR.table("practices").column_names)
    assert any(f"practices.{fmt}" in r.message and "'note'" in r.message for r in caplog.records)
    assert {r.name for r in caplog.records} == {"extracts.reader"}


def test_read_table_both_csv_and_parquet_is_a_format_error(tmp_path: Path) -> None:
    write_extract(tmp_path, {"practices": ehr_extract()["practices"]}, fmt="csv")
    write_extract(tmp_path, {"practices": ehr_extract()["practices"]}, fmt="parquet")
    with pytest.raises(ExtractFormatError, match=r"practices\.csv and practices\.parquet"):
        read_table(tmp_path, "ehr", "practices")


def test_read_table_missing_folder_or_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(ExtractNotFoundError, match="does not exist"):
        read_table(tmp_path / "nope", "ehr", "patients")
    with pytest.raises(ExtractNotFoundError, match=r"patients\.csv / patients\.parquet"):
        read_table(tmp_path, "ehr", "patients")


def test_read_table_csv_with_bom_is_a_format_error(tmp_path: Path) -> None:
    write_extract(tmp_path, {"practices": ehr_extract()["practices"]}, fmt="csv")
    path = tmp_path / "practices.csv"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    with pytest.raises(ExtractFormatError, match=r"practices\.csv: .*byte-order mark"):
        read_table(tmp_path, "ehr", "practices")


def test_read_table_csv_with_semicolons_is_a_format_error(tmp_path: Path) -> None:
    (tmp_path / "practices.csv").write_text("practice_id;region\nPR01;R01\n")
    with pytest.raises(ExtractFormatError, match=r"practices\.csv: .*semicolon-separated"):
        read_table(tmp_path, "ehr", "practices")


def test_read_table_csv_without_header_does_not_show_values(tmp_path: Path) -> None:
    (tmp_path / "practices.csv").write_text("PR0042,R07\nPR0043,R08\n")
    with pytest.raises(ContractError) as info:
        read_table(tmp_path, "ehr", "practices")
    assert "header" in str(info.value)
    assert "PR0042" not in str(info.value) and "R07" not in str(info.value)


def test_read_table_csv_duplicate_header_column_is_a_format_error(tmp_path: Path) -> None:
    (tmp_path / "practices.csv").write_text("practice_id,region,region\nPR01,R01,R02\n")
    with pytest.raises(ExtractFormatError, match="'region' appear more than once"):
        read_table(tmp_path, "ehr", "practices")


def test_read_table_not_a_parquet_file_is_a_format_error(tmp_path: Path) -> None:
    (tmp_path / "practices.parquet").write_bytes(b"hello, not parquet")
    with pytest.raises(ExtractFormatError, match=r"practices\.parquet: not a readable Parquet"):
        read_table(tmp_path, "ehr", "practices")


def test_open_table_reads_only_the_header(tmp_path: Path) -> None:
    # A ragged data line would fail a full read; locating the table must not touch it.
    (tmp_path / "practices.csv").write_text("practice_id,region\nPR01,R01,extra\n")
    tf = open_table(tmp_path, "ehr", "practices")
    assert tf.format == "csv" and tf.missing_columns == () and tf.extra_columns == ()


def test_read_table_unknown_supplier_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown supplier"):
        read_table(tmp_path, "gp", "patients")


def test_read_table_csv_iso_dates_only(tmp_path: Path) -> None:
    regs = ehr_extract()["registrations"]
    regs = set_value(regs, 0, "start_date", "2015-1-1")
    regs = set_value(regs, 1, "start_date", "2010-01-01")
    write_extract(tmp_path, {"registrations": regs}, fmt="csv")
    out = read_table(tmp_path, "ehr", "registrations").collect()
    assert out["start_date"].to_list()[:2] == [None, dt.date(2010, 1, 1)]


def test_first_line_not_utf8_sees_a_character_split_by_the_read_block(tmp_path: Path) -> None:
    from extracts.reader import _first_line_not_utf8

    block = 1 << 20
    path = tmp_path / "t.csv"
    head = b"a\n" * ((block - 1) // 2) + b"x"  # one byte short of a block: "é" is split by it
    path.write_bytes(head + "é\nb\n".encode())
    assert _first_line_not_utf8(path) is None
    path.write_bytes(head + "é\nb\n".encode() + "caf\u00e9\n".encode("latin-1"))
    assert _first_line_not_utf8(path) == (block - 1) // 2 + 3
    path.write_bytes(b"ok\n" + "\u00e9".encode()[:1])  # ends in the middle of a character
    assert _first_line_not_utf8(path) == 2


def test_parquet_file_whose_footer_makes_polars_panic_is_a_format_error(tmp_path: Path) -> None:
    """Three flipped bits in a Parquet footer made polars panic (a Rust unwrap) while reading the
    schema: exit 70, 'internal error', instead of the file named as unreadable (found by
    tests/robustness/test_fuzz_extracts.py with HYPOTHESIS_PROFILE=large)."""
    import random

    path = write_extract(tmp_path, {"insurer_years": claims_extract()["insurer_years"]}) / (
        "insurer_years.parquet")
    raw, rng = bytearray(path.read_bytes()), random.Random(49)
    for _ in range(3):
        raw[rng.randrange(len(raw))] ^= 1 << rng.randrange(8)
    path.write_bytes(bytes(raw))
    with pytest.raises(ExtractFormatError, match=r"^insurer_years.parquet: not a readable Parquet"):
        open_table(tmp_path, "claims", "insurer_years")
