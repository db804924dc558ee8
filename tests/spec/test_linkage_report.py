"""The linkage report (issue 4, item 1; method.md 9.1-9.3) on small linked folders.

Each person is built to land in exactly one row of the report: linked, an invalid BSN, a
pseudonym shared by two EHR records, no insured row, a sex conflict, a birth-year conflict. A
birth year one apart is not a conflict; a sex the claims side does not know is not one either.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from linkage.report import linkage_report
from linked_builder import LinkedBuilder, p2_of


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    path = (
        LinkedBuilder()
        .patient("linked", birth="1960-05-01", sex="F")
        .patient("year_off_by_one", birth="1960-05-01", sex="M")
        .insured("year_off_by_one", birth="1961-02-01", insurer="0202")
        .patient("claims_sex_unknown", sex="F")
        .insured("claims_sex_unknown", sex=None)
        .patient("no_bsn", p2=None, bsn_status="check_digit")
        .patient("twin_a", p2=p2_of("twin"))
        .patient("twin_b", p2=p2_of("twin"))
        .patient("never_insured")
        .insured("never_insured", years=())
        .patient("sex_conflict", sex="F")
        .insured("sex_conflict", sex="M")
        .patient("sex_changes_in_claims", sex="F")
        .insured("sex_changes_in_claims", years=[2019], sex="F")
        .insured("sex_changes_in_claims", years=[2020], sex="M")
        .patient("year_conflict", birth="1960-05-01")
        .insured("year_conflict", birth="1962-01-01")
        .registered("linked", "P2", "2000-01-01")
        .write(tmp_path_factory.mktemp("linked"))
    )
    return linkage_report(Path(path))


def test_every_ehr_record_has_one_reason(report: dict) -> None:
    ehr = report["ehr"]
    assert ehr["patient_records"] == 10
    assert ehr["unlinked_by_reason"] == {
        "bsn_check_digit": 1,
        "pseudonym_shared_by_ehr_records": 2,
        "no_insured_row": 1,
        "sex_conflict": 2,
        "birth_year_conflict": 1,
    }
    assert ehr["linked_records"] == 10 - 7 == 3
    assert ehr["linked_share"] == round(3 / 10, 6)


def test_conflicts_and_several_records(report: dict) -> None:
    assert report["conflicting_links"] == {"sex": 2, "birth_year": 1}
    assert report["persons_with_several_ehr_records"] == 1
    assert report["ehr_records_of_those_persons"] == 2


def test_claims_side_and_insurers(report: dict) -> None:
    # Insured persons: every patient with a valid pseudonym and insured rows (twins: one person).
    assert report["claims"]["insured_persons"] == 7
    assert report["claims"]["linked_to_ehr_persons"] == 3
    by_insurer = {row["insurer"]: row for row in report["per_insurer"]}
    assert by_insurer["0202"]["persons"] == 1 and by_insurer["0202"]["linked_to_ehr"] == 1
    assert by_insurer["0101"]["persons"] == 6 and by_insurer["0101"]["linked_to_ehr"] == 2


def test_per_practice_counts_the_latest_registration(report: dict) -> None:
    by_practice = {row["practice_id"]: row for row in report["per_practice"]}
    assert by_practice["P2"]["records"] == 1 and by_practice["P2"]["linked"] == 1
    assert by_practice["P1"]["records"] == 9 and by_practice["P1"]["linked"] == 2
