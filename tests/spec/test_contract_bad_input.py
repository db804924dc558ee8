"""The data contract's bad input (data-contract.md, last section): one test per case.

Each case gets a clear error naming file, column, rule and count, or a counted quarantine
reason; never a traceback, a silent drop or a value from the data in a message.
"""

from __future__ import annotations

import logging
from pathlib import Path

import polars as pl
import pytest

from extract_builders import (
    PLANTED_BSNS,
    claims_extract,
    ehr_extract,
    set_value,
    write_extract,
)

from extracts import validate_cli
from extracts.errors import ContractError, ExtractFormatError
from extracts.reader import read_table
from extracts.validation import ValidatedExtract, validate_extract

BUILDERS = {"ehr": ehr_extract, "claims": claims_extract}


def _validate(
    folder: Path,
    supplier: str,
    tables: dict[str, pl.DataFrame],
    *,
    fmt: str = "csv",
    share: float = 1.0,
) -> ValidatedExtract:
    write_extract(folder, tables, fmt=fmt)
    result = validate_extract(folder, supplier, max_quarantine_share=share)
    _assert_no_silent_drop(result)
    return result


def _assert_no_silent_drop(result: ValidatedExtract) -> None:
    """rows in == clean rows + quarantined rows, for every table."""
    for name, lf in result.tables.items():
        clean = lf.collect().height
        assert result.row_counts[name] == clean + result.quarantined(name), name
        assert result.clean_rows(name) == clean


def _contract_error(
    folder: Path, supplier: str, tables: dict[str, pl.DataFrame], **kw: object
) -> list[str]:
    write_extract(folder, tables, fmt=kw.pop("fmt", "csv"))
    with pytest.raises(ContractError) as info:
        validate_extract(folder, supplier, **kw)
    return info.value.problems


@pytest.mark.parametrize(("supplier", "fmt"), [("ehr", "csv"), ("claims", "parquet")])
def test_valid_extract_quarantines_nothing(tmp_path: Path, supplier: str, fmt: str) -> None:
    result = _validate(tmp_path, supplier, BUILDERS[supplier](), fmt=fmt, share=0.0)
    assert result.quarantine.height == 0 and result.warnings == []


def test_missing_table_file_is_a_contract_error(tmp_path: Path) -> None:
    tables = ehr_extract()
    del tables["practices"]
    problems = _contract_error(tmp_path, "ehr", tables)
    assert problems == [
        "practices.csv / practices.parquet: table 'practices' is missing from the extract"
    ]


def test_missing_column_is_a_contract_error(tmp_path: Path) -> None:
    tables = claims_extract()
    tables["claims"] = tables["claims"].drop("sector")
    problems = _contract_error(tmp_path, "claims", tables)
    assert len(problems) == 1 and "claims.csv, column 'sector': missing" in problems[0]


def test_value_of_wrong_type_is_quarantined(tmp_path: Path) -> None:
    tables = claims_extract()
    tables["claims"] = set_value(tables["claims"], 2, "cost_eur", "32,00")
    tables["insurer_years"] = set_value(tables["insurer_years"], 0, "year", "twenty")
    result = _validate(tmp_path, "claims", tables)
    assert result.quarantined("claims", "bad_type:cost_eur") == 1
    assert result.quarantined("insurer_years", "bad_type:year") == 1


def test_column_stored_in_wrong_type_is_a_contract_error(tmp_path: Path) -> None:
    tables = claims_extract()
    tables["claims"] = tables["claims"].with_columns(pl.lit(True).alias("service_date"))
    problems = _contract_error(tmp_path, "claims", tables, fmt="parquet")
    assert len(problems) == 1
    assert "claims.parquet, column 'service_date': stored as Boolean" in problems[0]


def test_unparseable_date_is_quarantined(tmp_path: Path) -> None:
    tables = ehr_extract()
    tables["patients"] = set_value(tables["patients"], 1, "birth_date", "1980-02-30")
    tables["contacts"] = set_value(tables["contacts"], 0, "contact_date", "03/02/2020")
    result = _validate(tmp_path, "ehr", tables)
    assert result.quarantined("patients", "bad_type:birth_date") == 1
    assert result.quarantined("contacts", "bad_type:contact_date") == 1


def test_duplicate_patient_id_quarantines_every_row_of_it(tmp_path: Path) -> None:
    tables = ehr_extract()
    tables["patients"] = set_value(tables["patients"], 2, "patient_id", "P001")
    result = _validate(tmp_path, "ehr", tables)
    assert result.quarantined("patients", "duplicate_key:patient_id") == 2
    assert result.tables["patients"].collect()["patient_id"].to_list() == ["P002"]


def test_duplicate_claim_id_quarantines_every_row_of_it(tmp_path: Path) -> None:
    tables = claims_extract()
    tables["claims"] = set_value(tables["claims"], 4, "claim_id", "C0003")
    result = _validate(tmp_path, "claims", tables, fmt="parquet")
    assert result.quarantined("claims", "duplicate_key:claim_id") == 2
    assert result.clean_rows("claims") == 3


@pytest.mark.parametrize("buckets", [2, 3, 16])
def test_duplicate_keys_checked_in_buckets_on_disk_quarantine_the_same_rows(tmp_path: Path, buckets: int) -> None:
    """Issue 14, item 4: the supplier step checks unique keys one hash bucket at a time."""
    tables = claims_extract()
    tables["claims"] = set_value(tables["claims"], 4, "claim_id", "C0003")
    first = tables["insured"].row(0)
    tables["insured"] = _with_rows(tables["insured"], first)
    write_extract(tmp_path / "extract", tables, fmt="parquet")
    whole = validate_extract(tmp_path / "extract", "claims", max_quarantine_share=1.0)
    work = tmp_path / "work"
    bucketed = validate_extract(tmp_path / "extract", "claims", max_quarantine_share=1.0, buckets=buckets,
                                workdir=work)
    assert bucketed.quarantined("claims", "duplicate_key:claim_id") == 2
    assert bucketed.quarantined("insured", "duplicate_key:bsn,year") == 2
    assert bucketed.quarantine.equals(whole.quarantine)
    for table in whole.tables:
        assert bucketed.tables[table].collect().equals(whole.tables[table].collect())
    assert not work.exists() or not any(work.iterdir()), "the buckets are removed"


def test_registration_ending_before_start_is_quarantined(tmp_path: Path) -> None:
    tables = ehr_extract()
    tables["registrations"] = set_value(tables["registrations"], 0, "end_date", "2014-12-31")
    result = _validate(tmp_path, "ehr", tables)
    assert result.quarantined("registrations", "end_before_start") == 1
    assert result.quarantined("registrations") == 1


def test_overlapping_registrations_at_one_practice_quarantine_the_later_starting(
    tmp_path: Path,
) -> None:
    regs = pl.DataFrame(
        {
            "patient_id": ["P001", "P001", "P001", "P002", "P002", "P003", "P003"],
            "practice_id": ["PR01", "PR01", "PR01", "PR01", "PR01", "PR01", "PR02"],
            "start_date": [
                "2010-01-01", "2012-05-01", "2016-01-01",  # 2nd overlaps 1st (open)
                "2010-01-01", "2015-01-01",  # ends 2014-12-31, next starts a day later: no overlap
                "2010-01-01", "2011-01-01",  # other practice: no overlap
            ],
            "end_date": [None, "2013-01-01", None, "2014-12-31", None, None, None],
        }
    )
    tables = {**ehr_extract(), "registrations": regs}
    result = _validate(tmp_path, "ehr", tables)
    assert result.quarantined("registrations", "overlapping_registration") == 2
    kept = result.tables["registrations"].collect()
    assert kept.filter(pl.col("patient_id") == "P001")["start_date"].cast(pl.String).to_list() == [
        "2010-01-01"
    ]


def test_registration_ending_on_the_day_the_next_starts_overlaps(tmp_path: Path) -> None:
    regs = pl.DataFrame(
        {
            "patient_id": ["P001", "P001"],
            "practice_id": ["PR01", "PR01"],
            "start_date": ["2010-01-01", "2014-12-31"],
            "end_date": ["2014-12-31", None],
        }
    )
    result = _validate(tmp_path, "ehr", {**ehr_extract(), "registrations": regs})
    assert result.quarantined("registrations", "overlapping_registration") == 1


def test_codes_in_odd_case_and_spacing_are_normalised_counted_not_quarantined(
    tmp_path: Path,
) -> None:
    tables = ehr_extract()
    tables["episodes"] = set_value(tables["episodes"], 0, "icpc", " t90.02")
    tables["contacts"] = set_value(tables["contacts"], 0, "provider", " ha")
    tables["contacts"] = set_value(tables["contacts"], 1, "contact_type", "Telefonisch ")
    tables["contacts"] = set_value(tables["contacts"], 2, "icpc", "P76.2")
    tables["contacts"] = set_value(tables["contacts"], 3, "icpc", "C99")  # invalid, nullable
    result = _validate(tmp_path, "ehr", tables, share=0.0)
    assert result.quarantine.height == 0
    assert result.tables["episodes"].collect()["icpc"].to_list() == ["T9002", "K8601", "R96"]
    contacts = result.tables["contacts"].collect()
    assert contacts["provider"].to_list()[0] == "HA"
    assert contacts["contact_type"].to_list()[1] == "telefonisch"
    assert result.note("episodes", "icpc", "changed_by_normalisation") == 2  # incl. K86.01
    assert result.note("contacts", "provider", "changed_by_normalisation") == 1
    assert result.note("contacts", "contact_type", "changed_by_normalisation") == 1
    assert result.note("contacts", "icpc", "changed_by_normalisation") == 1
    assert result.note("contacts", "icpc", "invalid_icpc") == 1


def test_invalid_icpc_in_episodes_is_quarantined(tmp_path: Path) -> None:
    tables = ehr_extract()
    tables["episodes"] = set_value(tables["episodes"], 1, "icpc", "C90")
    result = _validate(tmp_path, "ehr", tables)
    assert result.quarantined("episodes", "invalid_icpc") == 1


def test_unknown_sector_is_quarantined(tmp_path: Path) -> None:
    tables = claims_extract()
    tables["claims"] = set_value(tables["claims"], 2, "sector", "FYSIO")
    tables["claims"] = set_value(tables["claims"], 3, "sector", " ggz_b ")  # known, normalised
    result = _validate(tmp_path, "claims", tables)
    assert result.quarantined("claims", "unknown_sector") == 1
    assert result.quarantined("claims") == 1


def test_unknown_contact_type_is_quarantined(tmp_path: Path) -> None:
    tables = ehr_extract()
    tables["contacts"] = set_value(tables["contacts"], 0, "contact_type", "chat")
    tables["ooh_contacts"] = set_value(tables["ooh_contacts"], 0, "contact_type", "email")
    result = _validate(tmp_path, "ehr", tables)
    assert result.quarantined("contacts", "unknown_contact_type") == 1
    # `email` is a GP contact type but not an out-of-hours one.
    assert result.quarantined("ooh_contacts", "unknown_contact_type") == 1


def test_unknown_sex_provider_and_care_type_are_quarantined(tmp_path: Path) -> None:
    tables = ehr_extract()
    tables["patients"] = set_value(tables["patients"], 0, "sex", "V")
    tables["contacts"] = set_value(tables["contacts"], 0, "provider", "TANDARTS")
    result = _validate(tmp_path, "ehr", tables)
    assert result.quarantined("patients", "unknown_sex") == 1
    assert result.quarantined("contacts", "unknown_provider") == 1
    claims = claims_extract()
    claims["claims"] = set_value(claims["claims"], 0, "care_type", "dagbehandeling")
    result = _validate(tmp_path / "claims", "claims", claims)
    assert result.quarantined("claims", "unknown_care_type") == 1


def test_missing_value_in_non_nullable_column_is_quarantined(tmp_path: Path) -> None:
    tables = ehr_extract()
    tables["contacts"] = set_value(tables["contacts"], 0, "practice_id", None)
    tables["contacts"] = set_value(tables["contacts"], 1, "provider", "  ")
    result = _validate(tmp_path, "ehr", tables)
    assert result.quarantined("contacts", "missing_value:practice_id") == 1
    assert result.quarantined("contacts", "missing_value:provider") == 1


def test_bsn_missing_malformed_or_failing_11_test_is_counted_and_kept(tmp_path: Path) -> None:
    tables = ehr_extract()
    patients = tables["patients"].with_columns(
        pl.Series("bsn", [None, "12345678a", "111222334"])
    )
    tables["patients"] = pl.concat(
        [
            patients,
            pl.DataFrame(
                [("P004", "1234.5672", None, None, None, None)],
                schema=patients.schema,
                orient="row",
            ),
        ]
    )
    result = _validate(tmp_path, "ehr", tables, share=0.0)
    assert result.clean_rows("patients") == 4
    assert result.note("patients", "bsn", "status:missing") == 1
    assert result.note("patients", "bsn", "status:malformed") == 1
    assert result.note("patients", "bsn", "status:fails_11_test") == 1
    assert result.note("patients", "bsn", "status:valid") == 1
    assert result.note("patients", "bsn", "changed_by_normalisation") == 1
    assert result.tables["patients"].collect()["bsn"].to_list()[3] == "012345672"


def test_bsn_shared_by_two_patients_is_counted_and_kept(tmp_path: Path) -> None:
    tables = ehr_extract()
    tables["patients"] = set_value(tables["patients"], 1, "bsn", "111.222.333")
    result = _validate(tmp_path, "ehr", tables, share=0.0)
    assert result.clean_rows("patients") == 3
    assert result.note("patients", "bsn", "valid_bsn_shared_by_patients") == 1
    assert result.note("patients", "bsn", "patients_with_shared_valid_bsn") == 2


def test_claims_bsn_statuses_are_counted_in_notes(tmp_path: Path) -> None:
    tables = claims_extract()
    tables["insured"] = set_value(tables["insured"], 0, "bsn", "000000000")
    result = _validate(tmp_path, "claims", tables, share=0.0)
    assert result.note("insured", "bsn", "status:all_zero") == 1
    assert result.note("insured", "bsn", "status:valid") == 5
    assert result.note("claims", "bsn", "status:valid") == 5


def test_empty_required_table_is_a_contract_error(tmp_path: Path) -> None:
    tables = claims_extract()
    tables["insurer_years"] = tables["insurer_years"].clear()
    problems = _contract_error(tmp_path, "claims", tables)
    assert problems == ["insurer_years.csv: the table is empty (rule: must have rows)"]


@pytest.mark.parametrize(("supplier", "table"), [
    ("ehr", "episodes"), ("ehr", "referrals"), ("ehr", "ooh_contacts"), ("claims", "claims"),
])
def test_every_empty_table_is_a_contract_error_alike(supplier: str, table: str, tmp_path: Path) -> None:
    # data-contract.md: an empty table gets a clear error (or a counted reason), never only a
    # warning; an empty episodes table would give every condition a prevalence of 0.
    tables = BUILDERS[supplier]()
    tables[table] = tables[table].clear()
    problems = _contract_error(tmp_path, supplier, tables)
    why = "; 2 practice-years with referrals_delivered" if table == "referrals" else ""
    assert problems == [f"{table}.csv: the table is empty (rule: must have rows{why})"]


def test_empty_referrals_are_accepted_with_a_warning_when_no_practice_delivers_them(tmp_path: Path) -> None:
    # practice_years.referrals_delivered says which practice-years have referral data at all.
    tables = ehr_extract()
    tables["referrals"] = tables["referrals"].clear()
    tables["practice_years"] = tables["practice_years"].with_columns(referrals_delivered=False)
    result = _validate(tmp_path, "ehr", tables, share=0.0)
    assert result.warnings == [
        "referrals.csv: the table is empty (0 rows), as practice_years says: no practice-year has "
        "referrals_delivered = true"
    ]
    assert result.row_counts["referrals"] == 0
    assert result.note("practice_years", "referrals_delivered", "true") == 0


def test_csv_with_bom_is_a_format_error(tmp_path: Path) -> None:
    write_extract(tmp_path, ehr_extract(), fmt="csv")
    path = tmp_path / "patients.csv"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    with pytest.raises(ExtractFormatError, match=r"patients\.csv: .*byte-order mark"):
        read_table(tmp_path, "ehr", "patients")
    with pytest.raises(ContractError, match=r"patients\.csv: .*byte-order mark \(BOM\)"):
        validate_extract(tmp_path, "ehr")


def test_csv_with_semicolon_separator_is_a_format_error(tmp_path: Path) -> None:
    write_extract(tmp_path, claims_extract(), fmt="csv")
    claims = claims_extract()["claims"].with_columns(pl.col("cost_eur").cast(pl.String))
    claims.write_csv(tmp_path / "claims.csv", separator=";")
    with pytest.raises(ExtractFormatError, match=r"claims\.csv: .*semicolon-separated"):
        read_table(tmp_path, "claims", "claims")
    with pytest.raises(ContractError, match=r"claims\.csv: .*semicolon-separated"):
        validate_extract(tmp_path, "claims")


def test_unreadable_csv_body_is_a_contract_error_without_polars_text(tmp_path: Path) -> None:
    write_extract(tmp_path, ehr_extract(), fmt="csv")
    with (tmp_path / "practices.csv").open("a") as fh:
        fh.write('PR09,"R0SECRET\n')
    problems = _contract_error(tmp_path, "ehr", {})
    assert len(problems) == 1 and problems[0].startswith("practices.csv: polars could not read")
    assert "SECRET" not in problems[0]


def test_several_problems_are_collected_in_one_contract_error(tmp_path: Path) -> None:
    tables = ehr_extract()
    del tables["ooh_contacts"]
    tables["practices"] = tables["practices"].drop("region")
    tables["contacts"] = tables["contacts"].clear()
    tables["patients"] = set_value(tables["patients"], 0, "sex", "V")  # 1 of 3: over 1 %
    problems = _contract_error(tmp_path, "ehr", tables)
    assert len(problems) == 4
    assert any(p.startswith("ooh_contacts.csv / ooh_contacts.parquet") for p in problems)
    assert any(p.startswith("practices.csv, column 'region': missing") for p in problems)
    assert "contacts.csv: the table is empty (rule: must have rows)" in problems
    assert any(p.startswith("patients.csv: 1 of 3 rows quarantined") for p in problems)


def test_quarantine_above_tolerance_is_a_contract_error(tmp_path: Path) -> None:
    tables = claims_extract()
    tables["claims"] = set_value(tables["claims"], 0, "sector", "XX")
    write_extract(tmp_path, tables)
    assert validate_extract(tmp_path, "claims", max_quarantine_share=0.2).quarantined("claims") == 1
    with pytest.raises(ContractError) as info:
        validate_extract(tmp_path, "claims", max_quarantine_share=0.1)
    assert info.value.problems == [
        "claims.parquet: 1 of 5 rows quarantined (20.00%), above the tolerance of 10.00% "
        "(rule: max_quarantine_share; unknown_sector: 1)"
    ]


def test_no_message_ever_contains_a_value_from_the_data(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    planted = [*PLANTED_BSNS, "P001", "P002", "PR01", "1950-03-01", "19500301", "111222334"]
    planted += ["31-12-1950", "0x-07-1980", "VROUW", "TANDARTS", "NOTE42"]
    tables = ehr_extract()
    tables["patients"] = set_value(tables["patients"], 0, "birth_date", "31-12-1950")
    tables["patients"] = set_value(tables["patients"], 1, "death_date", "0x-07-1980")
    tables["patients"] = set_value(tables["patients"], 2, "sex", "VROUW")
    tables["patients"] = pl.concat(
        [tables["patients"], tables["patients"].head(1).with_columns(bsn=pl.lit("111222334"))]
    ).with_columns(pl.lit("NOTE42").alias("remark"))
    tables["contacts"] = set_value(tables["contacts"], 0, "provider", "TANDARTS")
    texts: list[str] = []
    with caplog.at_level(logging.DEBUG):
        write_extract(tmp_path / "ok", tables, fmt="csv")
        result = validate_extract(tmp_path / "ok", "ehr", max_quarantine_share=1.0)
        texts += result.warnings + [str(v) for v in result.quarantine.to_dicts()]
        texts += [str(v) for v in result.notes.to_dicts()]
        bad = tmp_path / "bad"
        no_end = tables["registrations"].drop("end_date")
        write_extract(bad, {**tables, "registrations": no_end}, fmt="csv")
        (bad / "practices.csv").write_text("PR01,R01\n")  # no header row: names are values
        with pytest.raises(ContractError) as info:
            validate_extract(bad, "ehr")
        texts.append(str(info.value))
    texts += [r.getMessage() for r in caplog.records]
    assert result.quarantine.height >= 3 and len(info.value.problems) >= 3
    leaked = [(v, t) for t in texts for v in planted if v in t]
    assert leaked == []


def test_cli_contract_error_exits_with_code_and_message_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tables = ehr_extract()
    del tables["patients"]
    write_extract(tmp_path, tables)
    assert validate_cli.main([str(tmp_path), "--supplier", "ehr"]) == ContractError.exit_code
    err = capsys.readouterr().err
    assert "patients.csv / patients.parquet" in err and "Traceback" not in err


def test_cli_valid_extract_prints_summary_and_exits_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_extract(tmp_path, claims_extract())
    assert validate_cli.main([str(tmp_path), "--supplier", "claims"]) == 0
    out = capsys.readouterr().out
    assert "insurer_years" in out and "rows in" in out


# --- wording of what is refused (issue 10, item 11) -------------------------------------------------


def test_one_problem_is_reported_as_one_problem(tmp_path: Path) -> None:
    tables = ehr_extract()
    tables["practices"] = tables["practices"].drop("region")
    write_extract(tmp_path, tables)
    with pytest.raises(ContractError) as info:
        validate_extract(tmp_path, "ehr")
    assert "(1 problem):" in str(info.value)
    assert "tolerance" not in str(info.value)


def test_csv_without_header_row_is_reported_as_such_not_as_duplicate_columns(tmp_path: Path) -> None:
    # The first data row stands where the header belongs; its two empty fields look like two
    # columns named "" to a header parser.
    tables = ehr_extract()
    tables["patients"] = set_value(tables["patients"], 0, "postcode4", None)
    write_extract(tmp_path, tables, fmt="csv")
    path = tmp_path / "patients.csv"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[1:]))
    assert path.read_text().splitlines()[0].endswith(",,")  # no death date, no postcode
    problems = _contract_error(tmp_path, "ehr", {})
    assert len(problems) == 1 and problems[0].startswith("patients.csv: none of the contract columns")
    assert "header" in problems[0] and "more than once" not in problems[0]


def test_latin1_csv_is_reported_as_not_utf8_with_its_line(tmp_path: Path) -> None:
    tables = ehr_extract()
    tables["contacts"] = set_value(tables["contacts"], 2, "contact_type", "consult caf\u00e9")
    write_extract(tmp_path, tables, fmt="csv")
    path = tmp_path / "contacts.csv"
    path.write_bytes(path.read_text().encode("latin-1"))
    problems = _contract_error(tmp_path, "ehr", {})
    assert len(problems) == 1
    assert problems[0].startswith("contacts.csv: not valid UTF-8 (first at line 4)"), problems[0]
    assert "unclosed quote" not in problems[0] and "caf" not in problems[0]


# --- rows the contract's keys and references rule out (issue 10, item 13) ------------------------


def _with_rows(df: pl.DataFrame, *rows: tuple[object, ...]) -> pl.DataFrame:
    return pl.concat([df, pl.DataFrame(list(rows), schema=df.schema, orient="row")])


def test_rows_of_a_patient_not_in_patients_are_quarantined_per_table(tmp_path: Path) -> None:
    from datetime import date

    tables = ehr_extract()
    tables["registrations"] = _with_rows(tables["registrations"], ("P999", "PR01", date(2015, 1, 1), None))
    tables["episodes"] = _with_rows(tables["episodes"], ("P998", "T90", date(2016, 1, 1), None))
    tables["contacts"] = _with_rows(tables["contacts"], ("P999", "PR01", date(2020, 1, 2), "HA", "consult", None),
                                    ("P998", "PR01", date(2020, 1, 3), "HA", "consult", None))
    tables["referrals"] = _with_rows(tables["referrals"], ("P999", "PR01", date(2020, 3, 1), "0313", None))
    tables["ooh_contacts"] = _with_rows(tables["ooh_contacts"], ("P997", date(2020, 12, 24), "consult", None))
    result = _validate(tmp_path, "ehr", tables)
    expected = {"registrations": 1, "episodes": 1, "contacts": 2, "referrals": 1, "ooh_contacts": 1}
    for table, rows in expected.items():
        assert result.quarantined(table, "unknown_patient_id") == rows, table
        assert result.quarantined(table) == rows, table
    assert result.quarantined("patients") == 0


def test_rows_of_a_quarantined_patient_are_not_counted_again_as_unknown(tmp_path: Path) -> None:
    # P001 occurs twice in patients (both rows quarantined as a duplicate key): its rows in the
    # other tables name a patient the supplier did deliver, so they are not "unknown".
    tables = ehr_extract()
    tables["patients"] = _with_rows(tables["patients"], tables["patients"].row(0))
    result = _validate(tmp_path, "ehr", tables)
    assert result.quarantined("patients", "duplicate_key:patient_id") == 2
    assert all(result.quarantined(t, "unknown_patient_id") == 0 for t in result.row_counts)


@pytest.mark.parametrize("second", [
    ("0101", False),  # a second insurer in the same year
    ("3311", True),  # the same insurer, once in a Wlz institution and once not
])
def test_two_insured_rows_for_one_bsn_and_year_are_both_quarantined(
    second: tuple[str, bool], tmp_path: Path
) -> None:
    tables = claims_extract()
    insurer, wlz = second
    first = tables["insured"].row(0)  # PLANTED_BSNS[0], 2020, insurer 3311, not in Wlz
    spelled = " 111.222.333"  # the same BSN spelled otherwise: one person after normalisation
    tables["insured"] = _with_rows(tables["insured"], (spelled, first[1], insurer, *first[3:6], wlz))
    result = _validate(tmp_path, "claims", tables, fmt="csv")
    assert result.quarantined("insured", "duplicate_key:bsn,year") == 2
    assert result.quarantined("insured") == 2
    clean = result.tables["insured"].collect()
    assert clean.filter((pl.col("bsn") == PLANTED_BSNS[0]) & (pl.col("year") == first[1])).height == 0
    assert clean.filter(pl.col("bsn") == PLANTED_BSNS[0]).height == 1  # the other year stays


def test_insured_rows_without_bsn_are_not_duplicates_of_each_other(tmp_path: Path) -> None:
    tables = claims_extract()
    row = tables["insured"].row(0)
    tables["insured"] = _with_rows(tables["insured"], (None, *row[1:]), (None, *row[1:]))
    result = _validate(tmp_path, "claims", tables)
    assert result.quarantined("insured") == 0
    assert result.note("insured", "bsn", "status:missing") == 2


def test_specialism_codes_that_lost_their_leading_zero_are_restored_and_counted(tmp_path: Path) -> None:
    tables = claims_extract()
    tables["claims"] = set_value(tables["claims"], 0, "specialism", "313")
    tables["claims"] = set_value(tables["claims"], 1, "specialism", " 0313")
    ehr = ehr_extract()
    ehr["referrals"] = set_value(ehr["referrals"], 0, "specialism", "313")
    claims = _validate(tmp_path / "claims", "claims", tables, fmt="csv")
    referrals = _validate(tmp_path / "ehr", "ehr", ehr, fmt="csv")
    assert claims.tables["claims"].collect()["specialism"].to_list()[:2] == ["0313", "0313"]
    assert claims.note("claims", "specialism", "changed_by_normalisation") == 2
    assert referrals.tables["referrals"].collect()["specialism"].to_list() == ["0313", "GGZ"]
    assert referrals.note("referrals", "specialism", "changed_by_normalisation") == 1
    assert claims.quarantined("claims") == 0 and referrals.quarantined("referrals") == 0
