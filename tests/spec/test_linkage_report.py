"""The linkage report (issue 4, item 1; method.md 9.1-9.3) on small linked folders.

Each person is built to land in exactly one row of the report: linked, an invalid BSN, a
pseudonym shared by two EHR records, no insured row, a sex conflict, a birth-year conflict. A
birth year one apart is not a conflict; a sex the claims side does not know is not one either.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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


# --- The report in passes over person ranges (issue 14, item 4) -------------------------------
# Every figure of the report is a count over persons (or a share of two such counts), so the
# report summed over passes that each hold one hash range of pseudonyms is the report of the
# whole: the same dict, key for key, for any number of passes.

_KINDS = ("linked", "no_bsn", "twins", "never_insured", "sex_conflict", "year_conflict", "year_off_by_one",
          "two_insurers", "fallback")


def _layout(kinds: list[tuple[str, str]], root: Path) -> Path:
    builder = LinkedBuilder()
    for i, (kind, practice) in enumerate(kinds):
        name = f"{kind}{i}"
        if kind == "no_bsn":
            builder.patient(name, p2=None, bsn_status="missing")
        elif kind == "twins":
            builder.patient(name, p2=p2_of(name)).patient(name + "b", p2=p2_of(name))
        elif kind == "never_insured":
            builder.patient(name).insured(name, years=())
        elif kind == "sex_conflict":
            builder.patient(name, sex="F").insured(name, sex="M")
        elif kind == "year_conflict":
            builder.patient(name, birth="1960-05-01").insured(name, birth="1963-01-01")
        elif kind == "year_off_by_one":
            builder.patient(name, birth="1960-05-01").insured(name, birth="1961-01-01")
        elif kind == "two_insurers":
            builder.patient(name).insured(name, years=[2019], insurer="0202").insured(name, years=[2020])
        elif kind == "fallback":
            builder.patient(name, bsn_status="missing", link_method="fallback")
        else:
            builder.patient(name)
        builder.registered(name, practice, "2000-01-01")
    builder.insured("claims_only", years=[2020], insurer="0303")
    return Path(builder.write(root))


@pytest.mark.parametrize("passes", [2, 3, 8])
def test_the_report_in_passes_is_the_report_of_the_whole(tmp_path: Path, passes: int) -> None:
    path = _layout([(kind, f"P{i % 3}") for i, kind in enumerate(_KINDS * 3)], tmp_path)
    whole = linkage_report(path)
    assert linkage_report(path, passes=passes) == whole
    assert whole["ehr"]["patient_records"] == 30 and whole["claims"]["insured_persons"] == 7 * 3 + 1


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kinds=st.lists(st.tuples(st.sampled_from(_KINDS), st.sampled_from(["P1", "P2", "P3"])), min_size=0,
                      max_size=14),
       passes=st.integers(1, 6))
def test_any_persons_in_any_passes_give_the_same_report(kinds: list[tuple[str, str]], passes: int,
                                                        tmp_path_factory: pytest.TempPathFactory) -> None:
    path = _layout(kinds, tmp_path_factory.mktemp("linked"))
    assert linkage_report(path, passes=passes) == linkage_report(path)


def test_passes_must_be_a_positive_count(tmp_path: Path) -> None:
    path = _layout([("linked", "P1")], tmp_path)
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ValueError, match="passes"):
            linkage_report(path, passes=bad)
