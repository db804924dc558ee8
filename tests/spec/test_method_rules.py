"""The rules of ``shared/spec/method.md``, one small table of patients per rule.

Each test builds a linked layout (``tests/linked_builder.py``) from the few rows its rule needs
and asserts the exact outcome: ``excluded_by`` of :func:`cohort.population.base_population` for
the exclusions X1-X7, the output tables of :func:`cohort.study.run_study` for everything else.
Unless a test says otherwise the reference year is 2019 and the X6 thresholds are lowered
(``study_config(lenient=True)``), so that only the rule under test decides.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from linked_builder import LinkedBuilder, p2_of, study_config

from cohort.config import StudyConfig
from cohort.population import RULES, Linked, base_population
from cohort.study import run_study
from extracts.errors import ConfigError

Y = 2019
LENIENT = study_config(lenient=True, reference_years=[Y])
STRICT = study_config(reference_years=[Y])  # X6 at the seed thresholds: 500 patients, 46 weeks, 70 %
Build = Callable[[LinkedBuilder], LinkedBuilder]


# -- helpers ----------------------------------------------------------------------------------

def excluded_by(b: LinkedBuilder, tmp_path: Path, *, year: int = Y, config: StudyConfig = LENIENT) -> dict:
    """patient_id -> first excluding rule (None = study population), base population of year."""
    base = base_population(Linked(b.write(tmp_path)), year, config).collect()
    return dict(zip(base["patient_id"], base["excluded_by"], strict=True))


def base_row(b: LinkedBuilder, tmp_path: Path, pid: str, *, year: int = Y) -> dict:
    base = base_population(Linked(b.write(tmp_path)), year, LENIENT).collect()
    return base.filter(pl.col("patient_id") == pid).row(0, named=True)


def study(b: LinkedBuilder, tmp_path: Path, **overrides) -> dict[str, pl.DataFrame]:
    overrides.setdefault("reference_years", [Y])
    return run_study(b.write(tmp_path), study_config(lenient=True, **overrides))


def prevalence(tables: dict, condition: str, year: int = Y) -> tuple[int, int]:
    row = tables["prevalence"].filter((pl.col("year") == year) & (pl.col("condition") == condition))
    return row["numerator"].item(), row["denominator"].item()


def care(tables: dict, condition: str, discipline: str, year: int = Y) -> tuple[int, int]:
    row = tables["care_use"].filter(
        (pl.col("year") == year) & (pl.col("condition") == condition) & (pl.col("discipline") == discipline)
    )
    return row["n"].item(), row["N"].item()


def chain(tables: dict, condition: str, year: int = Y) -> dict[str, tuple[int, int, int]]:
    rows = tables["attrition"].filter((pl.col("year") == year) & (pl.col("condition") == condition))
    return {r["step"]: (r["before"], r["excluded"], r["after"]) for r in rows.iter_rows(named=True)}


def top(tables: dict, discipline: str, year: int = Y) -> list[tuple]:
    rows = tables["top"].filter((pl.col("year") == year) & (pl.col("discipline") == discipline)).sort("rank")
    return rows.select("rank", "group", "contacts", "persons", "total_contacts").rows()


def diabetic(b: LinkedBuilder, pid: str, **patient) -> LinkedBuilder:
    """A patient with an open T90 episode: prevalent for diabetes in every year."""
    return b.patient(pid, **patient).episode(pid, "T90", "2010-01-01")


# -- X1: not linkable ------------------------------------------------------------------------

def test_exclusion_x1_patient_without_valid_bsn_is_excluded(tmp_path: Path) -> None:
    b = LinkedBuilder().patient("ok").patient("no_bsn", p2=None, bsn_status="fails_11_test")
    assert excluded_by(b, tmp_path) == {"ok": None, "no_bsn": "X1"}


@pytest.mark.parametrize("method", ["probabilistic", "insurance_number"])
def test_exclusion_x1_fallback_linked_record_is_kept_by_default(tmp_path: Path, method: str) -> None:
    """Issue 13: a record the TTP linked without its BSN counts as linked (linkage.fallback: include)."""
    b = LinkedBuilder().patient("ok").patient("fb", bsn_status="missing", link_method=method)
    assert excluded_by(b, tmp_path) == {"ok": None, "fb": None}
    assert base_row(b, tmp_path, "fb")["by_fallback"] is True
    assert base_row(b, tmp_path, "ok")["by_fallback"] is False


def test_exclusion_x1_fallback_linked_record_is_excluded_with_fallback_exclude(tmp_path: Path) -> None:
    """linkage.fallback: exclude is method.md's literal X1 (linkage on the BSN only)."""
    config = study_config(lenient=True, reference_years=[Y], linkage={"fallback": "exclude"})
    b = LinkedBuilder().patient("ok").patient("fb", bsn_status="missing", link_method="probabilistic")
    assert excluded_by(b, tmp_path, config=config) == {"ok": None, "fb": "X1"}


def test_study_config_linkage_fallback_accepts_include_or_exclude_only() -> None:
    assert study_config(lenient=True).linkage_fallback == "include"
    with pytest.raises(ConfigError, match="linkage.fallback"):
        study_config(lenient=True, linkage={"fallback": "maybe"})


def test_exclusion_x1_pseudonym_shared_by_two_ehr_records_excludes_both(tmp_path: Path) -> None:
    b = LinkedBuilder().patient("ok").patient("a").patient("a_twin", p2=p2_of("a"))
    assert excluded_by(b, tmp_path) == {"ok": None, "a": "X1", "a_twin": "X1"}


def test_exclusion_x1_shared_pseudonym_is_checked_over_whole_extract(tmp_path: Path) -> None:
    # a_old left in 2010: not in the base population of 2019, but still shares a's pseudonym.
    b = (LinkedBuilder().patient("a").patient("a_old", p2=p2_of("a"))
         .registered("a_old", "P1", "2000-01-01", "2010-12-31"))
    assert excluded_by(b, tmp_path) == {"a": "X1"}


def test_exclusion_x1_no_insured_row_for_reference_year_is_excluded(tmp_path: Path) -> None:
    b = (LinkedBuilder().patient("ok")
         .patient("gap").insured("gap", years=[2018, 2020])
         .patient("never").insured("never", years=()))
    assert excluded_by(b, tmp_path) == {"ok": None, "gap": "X1", "never": "X1"}


def test_exclusion_x1_two_insured_rows_for_reference_year_is_excluded(tmp_path: Path) -> None:
    b = (LinkedBuilder().patient("ok")
         .patient("two").insured("two").insured("two", years=[Y], insurer="0202")
         .patient("two_other_year").insured("two_other_year").insured("two_other_year", years=[2018], insurer="0202"))
    assert excluded_by(b, tmp_path) == {"ok": None, "two": "X1", "two_other_year": None}


@pytest.mark.parametrize(
    ("ehr_sex", "claims_sex", "expected"),
    [
        ("F", "F", None),
        ("F", "M", "X1"),
        ("X", "M", "X1"),   # X is a value (9.3)
        ("M", "X", "X1"),
        (None, "M", None),  # only where both sources know the value
        ("F", None, None),
    ],
)
def test_exclusion_x1_sex_conflict_only_where_both_known(
    tmp_path: Path, ehr_sex: str | None, claims_sex: str | None, expected: str | None
) -> None:
    b = LinkedBuilder().patient("a", sex=ehr_sex).insured("a", sex=claims_sex)
    assert excluded_by(b, tmp_path) == {"a": expected}


@pytest.mark.parametrize(
    ("ehr_birth", "claims_birth", "expected"),
    [
        ("1960-01-01", "1962-12-31", "X1"),  # years differ by 2
        ("1962-12-31", "1960-01-01", "X1"),
        ("1960-01-01", "1961-12-31", None),  # years differ by 1 (almost 2 years in days): kept
        ("1960-12-31", "1961-01-01", None),
        ("1960-01-01", None, None),
    ],
)
def test_exclusion_x1_birth_year_off_by_two_excluded_off_by_one_kept(
    tmp_path: Path, ehr_birth: str, claims_birth: str | None, expected: str | None
) -> None:
    b = LinkedBuilder().patient("a", birth=ehr_birth).insured("a", birth=claims_birth)
    assert excluded_by(b, tmp_path) == {"a": expected}


def test_attributes_ehr_birth_date_wins_over_claims_within_one_year(tmp_path: Path) -> None:
    b = LinkedBuilder().patient("a", birth="1939-12-31").insured("a", birth="1940-06-01")
    row = base_row(b, tmp_path, "a")
    assert (str(row["birth_date"]), row["age"], row["age_band"]) == ("1939-12-31", 80, "80+")


def test_attributes_claims_values_are_not_used_for_unlinked_record(tmp_path: Path) -> None:
    # Sex conflict -> X1 -> not linked: the claims birth date is not the record's (9.2).
    b = LinkedBuilder().patient("a", birth=None, sex="F").insured("a", birth="1930-01-01", sex="M")
    row = base_row(b, tmp_path, "a")
    assert (row["excluded_by"], row["linked"], row["p2"], row["birth_date"]) == ("X1", False, None, None)


# -- X2: birth date unknown --------------------------------------------------------------------

def test_exclusion_x2_birth_unknown_in_ehr_and_claims_is_excluded(tmp_path: Path) -> None:
    b = LinkedBuilder().patient("ok").patient("unknown", birth=None).registered("unknown", "P1", "2000-01-01")
    assert excluded_by(b, tmp_path) == {"ok": None, "unknown": "X2"}


def test_exclusion_x2_birth_unknown_in_ehr_but_known_in_claims_is_kept(tmp_path: Path) -> None:
    b = (LinkedBuilder().patient("a", birth=None).registered("a", "P1", "2000-01-01")
         .insured("a", birth="1935-03-01"))
    row = base_row(b, tmp_path, "a")
    assert (row["excluded_by"], str(row["birth_date"]), row["age"]) == (None, "1935-03-01", 84)


# -- X3: Wlz institution -------------------------------------------------------------------------

@pytest.mark.parametrize(("year", "expected"), [(2018, None), (2019, "X3"), (2020, None)])
def test_exclusion_x3_wlz_stay_excludes_only_in_that_year(tmp_path: Path, year: int, expected: str | None) -> None:
    b = LinkedBuilder().patient("a").insured("a", wlz_years=[2019])
    assert excluded_by(b, tmp_path, year=year) == {"a": expected}


# -- X4: more than one practice ------------------------------------------------------------------

@pytest.mark.parametrize(("year", "expected"), [(2018, None), (2019, "X4"), (2020, None)])
def test_exclusion_x4_move_to_other_practice_excludes_only_in_year_of_move(
    tmp_path: Path, year: int, expected: str | None
) -> None:
    b = (LinkedBuilder().patient("a")
         .registered("a", "P1", "2000-01-01", "2019-06-30").registered("a", "P2", "2019-07-01"))
    assert excluded_by(b, tmp_path, year=year) == {"a": expected}


def test_exclusion_x4_other_practice_ending_on_1_jan_counts(tmp_path: Path) -> None:
    b = (LinkedBuilder().patient("a")
         .registered("a", "P2", "2000-01-01", "2019-01-01").registered("a", "P1", "2019-01-02"))
    assert excluded_by(b, tmp_path) == {"a": "X4"}


# -- X5: whole year at the same practice, corrected for birth and death ------------------------

@pytest.mark.parametrize(
    ("patient", "registrations", "claims_death", "expected"),
    [
        # born mid-year, registered from birth
        ({"birth": "2019-05-10"}, [("2019-05-10", None)], None, None),
        ({"birth": "2019-05-10"}, [("2019-05-20", None)], None, "X5"),
        # died mid-year, registered until death
        ({"death": "2019-08-01"}, [("2000-01-01", "2019-08-01")], None, None),
        ({"death": "2019-08-01"}, [("2000-01-01", "2019-07-31")], None, "X5"),
        # death date only in claims is used; earliest of EHR and claims wins
        ({}, [("2000-01-01", "2019-08-01")], "2019-08-01", None),
        ({}, [("2000-01-01", "2019-08-01")], None, "X5"),
        ({"death": "2019-10-01"}, [("2000-01-01", "2019-08-01")], "2019-08-01", None),
        # adjacent registrations at the same practice join; a one-day gap does not
        ({}, [("2000-01-01", "2019-06-30"), ("2019-07-01", None)], None, None),
        ({}, [("2000-01-01", "2019-06-30"), ("2019-07-02", None)], None, "X5"),
        # first or last day of the year missing
        ({}, [("2019-01-02", None)], None, "X5"),
        ({}, [("2000-01-01", "2019-12-30")], None, "X5"),
        ({}, [("2019-01-01", "2019-12-31")], None, None),
        # empty window: death before Y, birth after Y, with a registration overlapping Y
        ({"death": "2018-06-01"}, [("2000-01-01", None)], None, "X5"),
        ({"birth": "2020-03-01"}, [("2019-12-01", None)], None, "X5"),
    ],
)
def test_exclusion_x5_registration_must_cover_window_from_birth_to_death(
    tmp_path: Path, patient: dict, registrations: list, claims_death: str | None, expected: str | None
) -> None:
    b = LinkedBuilder().patient("a", **patient).insured("a", death=claims_death)
    for start, end in registrations:
        b.registered("a", "P1", start, end)
    assert excluded_by(b, tmp_path) == {"a": expected}


def test_exclusion_x5_death_date_on_insured_row_of_another_year_is_used(tmp_path: Path) -> None:
    # 9.2: the earliest death date of the EHR and *every* insured row of the person.
    b = (LinkedBuilder().patient("a").registered("a", "P1", "2000-01-01", "2019-08-01")
         .insured("a", years=range(2015, 2020)).insured("a", years=[2020], death="2019-08-01"))
    assert excluded_by(b, tmp_path) == {"a": None}


# -- X6: practice data sufficiency (seed thresholds) -------------------------------------------

def _practice(*, fillers: int = 499, weeks: int = 46, coded: int = 46, uncoded: int = 0, invalid: int = 0) -> LinkedBuilder:
    """Patient a at P1 with ``fillers`` more registered patients and the given contacts in Y."""
    b = LinkedBuilder(fill_contacts=False).patient("a").filler_patients("P1", fillers)
    if weeks:
        b.activity("P1", Y, weeks=weeks, coded=coded, uncoded=uncoded, invalid=invalid)
    return b


@pytest.mark.parametrize(
    ("practice", "expected"),
    [
        ({}, None),                                            # 500 patients, 46 weeks, 100 % coded
        ({"fillers": 498}, "X6"),                              # 499 patients
        ({"weeks": 45, "coded": 45}, "X6"),                    # 45 weeks
        ({"coded": 70, "uncoded": 30}, None),                  # 70 % coded
        ({"coded": 69, "uncoded": 31}, "X6"),                  # 69 %
        ({"coded": 70, "invalid": 30}, None),                  # an invalid ICPC is not coded
        ({"coded": 69, "invalid": 31}, "X6"),
        ({"weeks": 0}, "X6"),                                  # no contacts at all
    ],
)
def test_exclusion_x6_each_threshold_at_its_boundary(tmp_path: Path, practice: dict, expected: str | None) -> None:
    assert excluded_by(_practice(**practice), tmp_path, config=STRICT) == {"a": expected}


def test_exclusion_x6_weeks_are_iso_year_week_pairs(tmp_path: Path) -> None:
    # 44 mid-year weeks + 1 Jan 2019 (ISO 2019-W01) + 30 Dec 2019 (ISO 2020-W01) = 46 pairs.
    b = _practice(weeks=44, coded=44)
    b.contact("~x", "2019-01-01", provider="OTHER", type="overig", icpc="A01", practice="P1")
    b.contact("~x", "2019-12-30", provider="OTHER", type="overig", icpc="A01", practice="P1")
    assert excluded_by(b, tmp_path, config=STRICT) == {"a": None}


def test_exclusion_x6_contacts_of_other_year_do_not_count(tmp_path: Path) -> None:
    b = _practice(weeks=45, coded=45).activity("P1", 2018, weeks=46, coded=46)
    assert excluded_by(b, tmp_path, config=STRICT) == {"a": "X6"}


def test_exclusion_x6_patients_counted_before_exclusions(tmp_path: Path) -> None:
    # 498 fillers + a + an X1 patient = 500 registered patients.
    b = _practice(fillers=498).patient("no_bsn", p2=None)
    assert excluded_by(b, tmp_path, config=STRICT) == {"a": None, "no_bsn": "X1"}


def test_exclusion_x6_practice_without_contacts_is_insufficient_whatever_the_thresholds(tmp_path: Path) -> None:
    b = LinkedBuilder(fill_contacts=False).patient("a")
    assert excluded_by(b, tmp_path, config=LENIENT) == {"a": "X6"}


# -- X7: insurer with incomplete claims ----------------------------------------------------------

@pytest.mark.parametrize(("complete", "expected"), [(True, None), (False, "X7"), (None, "X7")])
def test_exclusion_x7_incomplete_or_missing_insurer_year_is_excluded(
    tmp_path: Path, complete: bool | None, expected: str | None
) -> None:
    b = LinkedBuilder().patient("a").insurer_year("0101", Y, complete=complete)
    assert excluded_by(b, tmp_path) == {"a": expected}
    assert excluded_by(b, tmp_path, year=2020) == {"a": None}


def test_exclusion_x7_uses_insurer_of_the_reference_year(tmp_path: Path) -> None:
    b = (LinkedBuilder().patient("a")
         .insured("a", years=[2018]).insured("a", years=[2019], insurer="0202").insured("a", years=[2020])
         .insurer_year("0101", Y, complete=False))
    assert excluded_by(b, tmp_path) == {"a": None}


# -- rule order and the attrition chain --------------------------------------------------------

def test_exclusion_order_patient_failing_two_rules_counts_under_first(tmp_path: Path) -> None:
    config = study_config(reference_years=[Y], practice_sufficiency={"min_patients": 2, "min_weeks": 0, "min_icpc_share": 0})
    b = (LinkedBuilder()
         .patient("ok").patient("ok2")
         .patient("x1_x2", p2=None, birth=None).registered("x1_x2", "P1", "2000-01-01")
         .patient("x2_x3", birth=None).registered("x2_x3", "P1", "2000-01-01").insured("x2_x3", wlz_years=[Y])
         .patient("x3_x5").registered("x3_x5", "P1", "2019-01-02").insured("x3_x5", wlz_years=[Y])
         .patient("x4_x5").registered("x4_x5", "P1", "2000-01-01", "2019-03-31").registered("x4_x5", "P2", "2019-05-01")
         .patient("x5_x6").registered("x5_x6", "P9", "2019-01-02")          # alone at P9: 1 patient
         .patient("x6_x7").registered("x6_x7", "P8", "2000-01-01").insured("x6_x7", insurer="0303")
         .insurer_year("0303", Y, complete=False))
    assert excluded_by(b, tmp_path, config=config) == {
        "ok": None, "ok2": None, "x1_x2": "X1", "x2_x3": "X2", "x3_x5": "X3",
        "x4_x5": "X4", "x5_x6": "X5", "x6_x7": "X6",
    }


def test_attrition_chain_per_condition_uses_ehr_always_claims_only_when_linked(tmp_path: Path) -> None:
    b = LinkedBuilder()
    diabetic(b, "k1")                                                              # kept, EHR
    b.patient("k2").claim("k2", "2019-05-01", sector="MSZ", code="0313:221")       # kept, claims
    b.patient("k3")                                                                # kept, no condition
    diabetic(b, "e1", p2=None)                                                     # X1, EHR -> counted
    b.patient("e2", sex="F").insured("e2", sex="M")                                # X1, claims -> not counted
    b.claim("e2", "2019-05-01", sector="MSZ", code="0313:221")
    b.patient("e3").insured("e3", wlz_years=[Y])                                   # X3, claims, linked -> counted
    b.claim("e3", "2019-05-01", sector="MSZ", code="0313:221")
    diabetic(b, "e4").registered("e4", "P1", "2019-02-01")                        # X5, EHR -> counted
    b.patient("e5", birth=None, sex="F").insured("e5", birth="1930-01-01", sex="M")  # X1: claims age unused
    b.registered("e5", "P1", "2000-01-01")
    b.patient("e6", birth=None).insured("e6", birth="1930-01-01", wlz_years=[Y])   # X3, linked: aged 89
    b.registered("e6", "P1", "2000-01-01")
    tables = study(b, tmp_path)

    def steps(base: int, **excluded: int) -> dict:
        out, before = {"base": (base, 0, base)}, base
        for rule in RULES:
            n = excluded.get(rule, 0)
            out[rule] = (before, n, before - n)
            before -= n
        return out

    assert chain(tables, "all") == steps(9, X1=3, X3=2, X5=1)
    assert chain(tables, "diabetes") == steps(5, X1=1, X3=1, X5=1)
    assert chain(tables, "frail_elderly") == steps(1, X3=1)
    assert prevalence(tables, "diabetes") == (2, 3)        # final of the chains
    assert prevalence(tables, "frail_elderly") == (0, 3)


# -- prevalence: EHR episodes ------------------------------------------------------------------

@pytest.mark.parametrize(
    ("icpc", "start", "end", "expected"),
    [
        ("T90", "2015-01-01", None, 1),
        ("T90", "2015-01-01", "2019-01-01", 1),   # ends on 1 Jan Y
        ("T90", "2019-12-31", None, 1),           # starts on 31 Dec Y
        ("T90", "2015-01-01", "2018-12-31", 0),   # ends on 31 Dec Y-1
        ("T90", "2020-01-01", None, 0),
        ("T9002", "2015-01-01", None, 1),         # T90.02
        ("T902", "2015-01-01", None, 1),          # T90.2
        ("T91", "2015-01-01", None, 0),
    ],
)
def test_prevalence_ehr_episode_overlapping_year_with_icpc_base(
    tmp_path: Path, icpc: str, start: str, end: str | None, expected: int
) -> None:
    b = LinkedBuilder().patient("a").episode("a", icpc, start, end)
    assert prevalence(study(b, tmp_path), "diabetes") == (expected, 1)


# -- prevalence: claims lookback -----------------------------------------------------------------

@pytest.mark.parametrize(
    ("condition", "sector", "code", "date", "expected"),
    [
        # chronic (diabetes, MSZ 0313:221): Y-2 .. Y
        ("diabetes", "MSZ", "0313:221", "2017-01-01", 1),
        ("diabetes", "MSZ", "0313:221", "2016-12-31", 0),
        ("diabetes", "MSZ", "0313:221", "2019-12-31", 1),
        ("diabetes", "MSZ", "0313:221", "2020-01-01", 0),
        ("diabetes", "DT", "DM01", "2017-06-01", 1),
        # long-term: anxiety/mood (GGZ_B 04) and valve disorders (MSZ 0320:403): Y-1 .. Y
        ("mental_health", "GGZ_B", "04", "2018-01-01", 1),
        ("mental_health", "GGZ_B", "04", "2017-12-31", 0),
        ("mental_health", "GGZ_B", "04", "2019-12-31", 1),
        ("cardiovascular", "MSZ", "0320:403", "2018-01-01", 1),
        ("cardiovascular", "MSZ", "0320:403", "2017-12-31", 0),
        # chronic sub-condition of the same condition: personality GGZ_S 18 reaches Y-2
        ("mental_health", "GGZ_S", "18", "2017-01-01", 1),
    ],
)
def test_prevalence_claims_lookback_chronic_two_years_long_term_one(
    tmp_path: Path, condition: str, sector: str, code: str, date: str, expected: int
) -> None:
    b = LinkedBuilder().patient("a").claim("a", date, sector=sector, code=code)
    assert prevalence(study(b, tmp_path), condition) == (expected, 1)


@pytest.mark.parametrize(
    ("specialism", "diagnosis", "expected"),
    [("0313", "221", 1), ("0320", "221", 0), ("0316", "222", 1), ("0316", "221", 0)],
)
def test_prevalence_msz_code_must_match_specialism_diagnosis_pair(
    tmp_path: Path, specialism: str, diagnosis: str, expected: int
) -> None:
    b = LinkedBuilder().patient("a").claim("a", "2019-05-01", sector="MSZ", specialism=specialism, diagnosis=diagnosis)
    assert prevalence(study(b, tmp_path), "diabetes") == (expected, 1)


@pytest.mark.parametrize("care_type", ["poli", "opname", "overig", None])
def test_prevalence_msz_claim_of_any_care_type_counts(tmp_path: Path, care_type: str | None) -> None:
    b = LinkedBuilder().patient("a").claim("a", "2019-05-01", sector="MSZ", code="0313:221", care_type=care_type)
    assert prevalence(study(b, tmp_path), "diabetes") == (1, 1)


def test_prevalence_seh_claim_is_never_a_source(tmp_path: Path) -> None:
    b = (LinkedBuilder().patient("a")
         .claim("a", "2019-05-01", sector="SEH", specialism="0313", diagnosis="221")
         .claim("a", "2019-05-01", sector="SEH", diagnosis="04"))
    tables = study(b, tmp_path)
    assert (prevalence(tables, "diabetes"), prevalence(tables, "mental_health")) == ((0, 1), (0, 1))


@pytest.mark.parametrize(
    ("birth", "year", "expected"),
    [("1939-12-31", 2019, 1), ("1939-01-01", 2019, 1), ("1940-01-01", 2019, 0), ("1943-12-31", 2023, 1)],
)
def test_prevalence_frail_elderly_age_is_year_minus_birth_year(tmp_path: Path, birth: str, year: int, expected: int) -> None:
    b = LinkedBuilder().patient("a", birth=birth)
    assert prevalence(study(b, tmp_path, reference_years=[year]), "frail_elderly", year) == (expected, 1)


def test_prevalence_frail_elderly_age_from_claims_birth_date_when_ehr_unknown(tmp_path: Path) -> None:
    b = LinkedBuilder().patient("a", birth=None).registered("a", "P1", "2000-01-01").insured("a", birth="1939-12-31")
    assert prevalence(study(b, tmp_path), "frail_elderly") == (1, 1)


# -- claim netting (9.4) -------------------------------------------------------------------------

NETTING = [
    (["100.00"], 1),
    (["100.00", "-100.00"], 0),            # withdrawn claim
    (["-100.00"], 0),                      # lone credit
    (["100.00", "-100.00", "100.00"], 1),  # withdrawn and claimed again: one
    (["100.00", "-40.00"], 1),             # partial credit
    (["0.00"], 0),                         # summed cost must be > 0
]


@pytest.mark.parametrize(("costs", "expected"), NETTING)
def test_netting_for_prevalence(tmp_path: Path, costs: list[str], expected: int) -> None:
    b = LinkedBuilder().patient("a")
    for cost in costs:
        b.claim("a", "2019-05-01", sector="MSZ", code="0313:221", cost=cost)
    assert prevalence(study(b, tmp_path), "diabetes") == (expected, 1)


@pytest.mark.parametrize(("costs", "expected"), NETTING)
def test_netting_for_care_use(tmp_path: Path, costs: list[str], expected: int) -> None:
    b = diabetic(LinkedBuilder(), "a")
    for cost in costs:
        b.claim("a", "2019-05-01", sector="DT", code="XX01", cost=cost)
    assert care(study(b, tmp_path), "diabetes", "DT") == (expected, 1)


@pytest.mark.parametrize(("costs", "expected"), NETTING)
def test_netting_for_acsc(tmp_path: Path, costs: list[str], expected: int) -> None:
    b = LinkedBuilder().insured("z")
    for cost in costs:
        b.claim("z", "2019-05-01", sector="MSZ", code="0322:1311", care_type="opname", cost=cost)
    acsc = study(b, tmp_path)["acsc"].filter(pl.col("year") == Y)
    assert acsc.select("admissions", "persons").row(0) == (expected, expected)


def test_netting_credit_on_another_day_does_not_withdraw(tmp_path: Path) -> None:
    b = (LinkedBuilder().patient("a")
         .claim("a", "2019-05-01", sector="MSZ", code="0313:221", cost="100.00")
         .claim("a", "2019-05-02", sector="MSZ", code="0313:221", cost="-100.00"))
    assert prevalence(study(b, tmp_path), "diabetes") == (1, 1)


def test_netting_credit_of_another_care_type_does_not_withdraw(tmp_path: Path) -> None:
    b = (diabetic(LinkedBuilder(), "a")
         .claim("a", "2019-05-01", sector="MSZ", code="0313:221", care_type="poli", cost="100.00")
         .claim("a", "2019-05-01", sector="MSZ", code="0313:221", care_type="overig", cost="-100.00"))
    assert care(study(b, tmp_path), "diabetes", "MSZ") == (1, 1)


# -- care use per discipline -----------------------------------------------------------------

CARE_CASES: list[tuple[str, str, str, Build, int]] = [
    # (id, condition, discipline, event of the prevalent patient "a", expected n)
    ("ha_specific_icpc", "diabetes", "HA", lambda b: b.contact("a", "2019-03-01", icpc="T90"), 1),
    ("ha_subcode", "diabetes", "HA", lambda b: b.contact("a", "2019-03-01", icpc="T9002"), 1),
    ("ha_other_icpc", "diabetes", "HA", lambda b: b.contact("a", "2019-03-01", icpc="K86"), 0),
    ("ha_uncoded", "diabetes", "HA", lambda b: b.contact("a", "2019-03-01", icpc=None), 0),
    ("ha_visite", "diabetes", "HA", lambda b: b.contact("a", "2019-03-01", type="visite", icpc="T90"), 1),
    ("ha_telefonisch", "diabetes", "HA", lambda b: b.contact("a", "2019-03-01", type="telefonisch", icpc="T90"), 1),
    ("ha_email", "diabetes", "HA", lambda b: b.contact("a", "2019-03-01", type="email", icpc="T90"), 1),
    ("ha_vaccinatie", "diabetes", "HA", lambda b: b.contact("a", "2019-03-01", type="vaccinatie", icpc="T90"), 1),
    ("ha_groepsconsult", "diabetes", "HA", lambda b: b.contact("a", "2019-03-01", type="groepsconsult", icpc="T90"), 0),
    ("ha_overig", "diabetes", "HA", lambda b: b.contact("a", "2019-03-01", type="overig", icpc="T90"), 0),
    ("poh_s_not_ha", "diabetes", "HA", lambda b: b.contact("a", "2019-03-01", provider="POH-S", icpc="T90"), 0),
    ("ha_other_year", "diabetes", "HA", lambda b: b.contact("a", "2018-12-31", icpc="T90"), 0),
    ("ha_other_practice", "diabetes", "HA", lambda b: b.contact("a", "2019-03-01", icpc="T90", practice="P2"), 1),
    ("poh_ggz_groepsconsult", "mental_health", "POH-GGZ",
     lambda b: b.contact("a", "2019-03-01", provider="POH-GGZ", type="groepsconsult", icpc="P74"), 1),
    ("poh_ggz_other_icpc", "mental_health", "POH-GGZ",
     lambda b: b.contact("a", "2019-03-01", provider="POH-GGZ", icpc="T90"), 0),
    ("poh_ggz_vaccinatie", "mental_health", "POH-GGZ",
     lambda b: b.contact("a", "2019-03-01", provider="POH-GGZ", type="vaccinatie", icpc="P74"), 0),
    ("frail_ha_any_icpc", "frail_elderly", "HA", lambda b: b.contact("a", "2019-03-01", icpc="K86"), 1),
    ("frail_ha_uncoded", "frail_elderly", "HA", lambda b: b.contact("a", "2019-03-01", icpc=None), 1),
    ("frail_ha_groepsconsult", "frail_elderly", "HA",
     lambda b: b.contact("a", "2019-03-01", type="groepsconsult", icpc="K86"), 0),
    ("id_ha_any_icpc", "intellectual_disability", "HA", lambda b: b.contact("a", "2019-03-01", icpc="K86"), 1),
    ("msz_poli", "diabetes", "MSZ", lambda b: b.claim("a", "2019-03-01", sector="MSZ", code="0313:221"), 1),
    ("msz_opname", "diabetes", "MSZ",
     lambda b: b.claim("a", "2019-03-01", sector="MSZ", code="0313:221", care_type="opname"), 1),
    ("msz_overig", "diabetes", "MSZ",
     lambda b: b.claim("a", "2019-03-01", sector="MSZ", code="0313:221", care_type="overig"), 0),
    ("msz_other_code", "diabetes", "MSZ", lambda b: b.claim("a", "2019-03-01", sector="MSZ", code="0320:302"), 0),
    ("frail_msz_any_code", "frail_elderly", "MSZ", lambda b: b.claim("a", "2019-03-01", sector="MSZ", code="0320:302"), 1),
    ("frail_msz_overig", "frail_elderly", "MSZ",
     lambda b: b.claim("a", "2019-03-01", sector="MSZ", code="0320:302", care_type="overig"), 0),
    ("ggz_s_any_code", "mental_health", "GGZ_S", lambda b: b.claim("a", "2019-03-01", sector="GGZ_S", code="10"), 1),
    ("ggz_b_no_code", "mental_health", "GGZ_B", lambda b: b.claim("a", "2019-03-01", sector="GGZ_B"), 1),
    ("ft_specific", "neck_back", "FT", lambda b: b.claim("a", "2019-03-01", sector="FT", code="1320"), 1),
    ("ft_other_code", "neck_back", "FT", lambda b: b.claim("a", "2019-03-01", sector="FT", code="7023"), 0),
    ("ot_specific", "osteoarthritis", "OT", lambda b: b.claim("a", "2019-03-01", sector="OT", code="6223"), 1),
    ("ot_other_code", "osteoarthritis", "OT", lambda b: b.claim("a", "2019-03-01", sector="OT", code="1320"), 0),
    ("et_all_cause", "osteoarthritis", "ET", lambda b: b.claim("a", "2019-03-01", sector="ET"), 1),
    ("ht_all_cause", "cancer", "HT", lambda b: b.claim("a", "2019-03-01", sector="HT"), 1),
    ("wv_all_cause", "diabetes", "WV", lambda b: b.claim("a", "2019-03-01", sector="WV"), 1),
    ("elv_all_cause", "diabetes", "ELV", lambda b: b.claim("a", "2019-03-01", sector="ELV"), 1),
    ("seh_all_cause", "diabetes", "SEH", lambda b: b.claim("a", "2019-03-01", sector="SEH", code="S52.5"), 1),
    ("dt_all_cause_default", "diabetes", "DT", lambda b: b.claim("a", "2019-03-01", sector="DT", code="XX01"), 1),
    ("hap_any_ooh", "diabetes", "HAP", lambda b: b.ooh("a", "2019-03-01", type="telefonisch"), 1),
    ("hap_other_year", "diabetes", "HAP", lambda b: b.ooh("a", "2020-01-01"), 0),
    ("claim_other_year", "diabetes", "MSZ", lambda b: b.claim("a", "2018-12-31", sector="MSZ", code="0313:221"), 0),
]
PREVALENT_BY = {  # an episode that makes "a" prevalent for the condition
    "diabetes": "T90", "mental_health": "P74", "neck_back": "L03", "osteoarthritis": "L89",
    "cancer": "D75", "intellectual_disability": "A90",
}


@pytest.mark.parametrize(("condition", "discipline", "event", "expected"), [c[1:] for c in CARE_CASES],
                         ids=[c[0] for c in CARE_CASES])
def test_care_use_qualifying_contact(
    tmp_path: Path, condition: str, discipline: str, event: Build, expected: int
) -> None:
    b = LinkedBuilder()
    if condition == "frail_elderly":
        b.patient("a", birth="1930-01-01")
    else:
        b.patient("a").episode("a", PREVALENT_BY[condition], "2010-01-01")
    assert care(study(event(b), tmp_path), condition, discipline) == (expected, 1)


@pytest.mark.parametrize(("code", "expected"), [("XX01", 0), ("DM01", 1)])
def test_care_use_dietetics_condition_specific_when_switched(tmp_path: Path, code: str, expected: int) -> None:
    b = diabetic(LinkedBuilder(), "a").claim("a", "2019-03-01", sector="DT", code=code)
    assert care(study(b, tmp_path, dietetics_all_cause=False), "diabetes", "DT") == (expected, 1)


def test_care_use_denominator_is_prevalent_study_population(tmp_path: Path) -> None:
    b = LinkedBuilder()
    diabetic(b, "user").contact("user", "2019-03-01", icpc="T90")
    diabetic(b, "non_user")
    diabetic(b, "excluded", p2=None).contact("excluded", "2019-03-01", icpc="T90")
    b.patient("not_diabetic").contact("not_diabetic", "2019-03-01", icpc="T90")
    assert care(study(b, tmp_path), "diabetes", "HA") == (1, 2)


def test_care_use_reports_only_the_disciplines_of_the_condition(tmp_path: Path) -> None:
    b = diabetic(LinkedBuilder(), "a").claim("a", "2019-03-01", sector="FT", code="0920")
    rows = study(b, tmp_path)["care_use"].filter(pl.col("condition") == "diabetes")
    assert sorted(rows["discipline"]) == sorted(["HA", "DT", "MSZ", "WV", "ELV", "HAP", "SEH"])


def test_care_use_change_in_percentage_points_from_unrounded_shares(tmp_path: Path) -> None:
    # HA users among 3 diabetics: 1 in 2019 (33.33 %), 2 in 2023 (66.67 %).
    b = LinkedBuilder()
    diabetic(b, "a").contact("a", "2019-03-01", icpc="T90").contact("a", "2023-03-01", icpc="T90")
    diabetic(b, "b").contact("b", "2023-03-01", icpc="T90")
    diabetic(b, "c")
    tables = study(b, tmp_path, reference_years=[2019, 2023])
    row = tables["care_use_change"].filter((pl.col("condition") == "diabetes") & (pl.col("discipline") == "HA"))
    assert row.select("year_from", "year_to").row(0) == (2019, 2023)
    assert row["change_pp"].item() == pytest.approx(100 / 3, abs=1e-9)  # not 66.7 - 33.3 = 33.4


def test_prevalence_stratified_by_sex_reports_zero_of_denominator_per_stratum(tmp_path: Path) -> None:
    b = LinkedBuilder()
    diabetic(b, "f", sex="F")
    b.patient("m", sex="M")
    rows = study(b, tmp_path, strata=["sex"])["prevalence"].filter(pl.col("condition").is_in(["diabetes", "cancer"]))
    assert sorted(rows.select("condition", "sex", "numerator", "denominator").rows()) == [
        ("cancer", "F", 0, 1), ("cancer", "M", 0, 1), ("diabetes", "F", 1, 1), ("diabetes", "M", 0, 1),
    ]


def test_care_use_stratified_by_sex_counts_per_stratum(tmp_path: Path) -> None:
    b = LinkedBuilder()
    diabetic(b, "f_user", sex="F").contact("f_user", "2019-03-01", icpc="T90")
    diabetic(b, "f_non_user", sex="F")
    diabetic(b, "m_user", sex="M").contact("m_user", "2019-03-01", icpc="T90")
    rows = study(b, tmp_path, strata=["sex"])["care_use"].filter(
        (pl.col("condition") == "diabetes") & (pl.col("discipline") == "HA"))
    assert sorted(rows.select("sex", "n", "N").rows()) == [("F", 1, 2), ("M", 1, 1)]


# -- referrals ---------------------------------------------------------------------------------

def test_referrals_specific_icpc_not_ggz_denominator_delivering_practices(tmp_path: Path) -> None:
    b = (LinkedBuilder()
         .practice("P2", referrals={Y: False})
         .practice("P3", years=[y for y in range(2015, 2024) if y != Y]))   # no practice_years row in Y
    diabetic(b, "hit").referral("hit", "2019-03-01", specialism="0313", icpc="T90")
    diabetic(b, "ggz").referral("ggz", "2019-03-01", specialism="GGZ", icpc="T90")
    diabetic(b, "other_icpc").referral("other_icpc", "2019-03-01", specialism="0313", icpc="K86")
    diabetic(b, "last_year").referral("last_year", "2018-12-31", specialism="0313", icpc="T90")
    diabetic(b, "no_specialism").referral("no_specialism", "2019-03-01", specialism=None, icpc="T90")
    diabetic(b, "at_p2").registered("at_p2", "P2", "2000-01-01").referral("at_p2", "2019-03-01", icpc="T90")
    diabetic(b, "at_p3").registered("at_p3", "P3", "2000-01-01").referral("at_p3", "2019-03-01", icpc="T90")
    row = study(b, tmp_path)["referrals"].filter(pl.col("condition") == "diabetes")
    assert row.select("n", "N").row(0) == (1, 5)


def test_referrals_all_cause_for_frail_elderly_and_intellectual_disability(tmp_path: Path) -> None:
    b = LinkedBuilder()
    b.patient("old_hit", birth="1930-01-01").referral("old_hit", "2019-03-01", specialism="0320", icpc="K86")
    b.patient("old_uncoded", birth="1930-01-01").referral("old_uncoded", "2019-03-01", specialism="0320")
    b.patient("old_ggz", birth="1930-01-01").referral("old_ggz", "2019-03-01", specialism="GGZ", icpc="P70")
    b.patient("id_hit").episode("id_hit", "A90", "2010-01-01").referral("id_hit", "2019-03-01", icpc="K86")
    refs = study(b, tmp_path)["referrals"]
    got = {r["condition"]: (r["n"], r["N"]) for r in refs.iter_rows(named=True)}
    assert (got["frail_elderly"], got["intellectual_disability"]) == ((2, 3), (1, 1))


# -- top groups --------------------------------------------------------------------------------

def test_top_ft_groups_by_dcsph_with_second_location_digit_x(tmp_path: Path) -> None:
    b = LinkedBuilder().patient("a").patient("b")
    b.claim("a", "2019-03-01", sector="FT", code="7023").claim("b", "2019-03-08", sector="FT", code="7123")
    b.claim("a", "2019-03-15", sector="FT", code="6223")
    assert top(study(b, tmp_path), "FT") == [(1, "7X23", 2, 2, 3), (2, "6X23", 1, 1, 3)]


def test_top_seh_groups_by_icd10_three_characters(tmp_path: Path) -> None:
    b = LinkedBuilder().patient("a")
    for day, code in [(1, "S52.5"), (2, "S52.6"), (3, "S52"), (4, "T14")]:
        b.claim("a", f"2019-03-0{day}", sector="SEH", code=code)
    assert top(study(b, tmp_path), "SEH") == [(1, "S52", 3, 1, 4), (2, "T14", 1, 1, 4)]


def test_top_ties_at_rank_top_n_broken_by_group_code_ascending(tmp_path: Path) -> None:
    b = LinkedBuilder().patient("a")
    for day, icpc in [(1, "R74"), (2, "R74"), (3, "T90"), (4, "K86"), (5, "A01")]:
        b.contact("a", f"2019-03-0{day}", icpc=icpc)
    assert top(study(b, tmp_path, top_n=3), "HA") == [(1, "R74", 2, 1, 5), (2, "A01", 1, 1, 5), (3, "K86", 1, 1, 5)]


def test_top_uncoded_contacts_count_in_total_but_are_never_a_group(tmp_path: Path) -> None:
    b = (LinkedBuilder().patient("a")
         .contact("a", "2019-03-01", icpc="T90").contact("a", "2019-03-02", icpc=None)
         .contact("a", "2019-03-03", icpc="T9"))                       # invalid ICPC: uncoded
    tables = study(b, tmp_path)
    assert top(tables, "HA") == [(1, "T90", 1, 1, 3)]
    assert tables["top"].filter(pl.col("discipline") == "HA")["share"].item() == pytest.approx(1 / 3)


def test_top_counts_only_qualifying_contacts_of_study_population(tmp_path: Path) -> None:
    b = (LinkedBuilder().patient("a").patient("excluded", p2=None)
         .contact("a", "2019-03-01", icpc="T90")
         .contact("a", "2019-03-02", type="groepsconsult", icpc="K86")     # not a qualifying HA contact
         .contact("a", "2019-03-03", provider="POH-S", icpc="K86")
         .contact("excluded", "2019-03-01", icpc="K86")
         .ooh("a", "2019-04-01", icpc="R7401").ooh("a", "2019-04-02", icpc="R74")
         .claim("a", "2019-05-01", sector="DT", code="DM01")
         .claim("a", "2019-05-02", sector="DT", code="DM02").claim("a", "2019-05-02", sector="DT", code="DM02", cost="-100.00"))
    tables = study(b, tmp_path)
    assert (top(tables, "HA"), top(tables, "HAP"), top(tables, "DT")) == (
        [(1, "T90", 1, 1, 1)], [(1, "R74", 2, 1, 2)], [(1, "DM01", 1, 1, 1)],
    )


# -- ACSC admissions ---------------------------------------------------------------------------

def test_acsc_counts_netted_opname_of_insured_not_in_wlz(tmp_path: Path) -> None:
    b = LinkedBuilder()
    b.insured("two_admissions")
    b.claim("two_admissions", "2019-03-01", sector="MSZ", code="0322:1311", care_type="opname")
    b.claim("two_admissions", "2019-09-01", sector="MSZ", code="0313:221", care_type="opname")
    b.insured("poli").claim("poli", "2019-03-01", sector="MSZ", code="0322:1311", care_type="poli")
    b.insured("not_acsc").claim("not_acsc", "2019-03-01", sector="MSZ", code="0303:032", care_type="opname")
    b.insured("wlz_2019", wlz_years=[2019])
    b.claim("wlz_2019", "2019-03-01", sector="MSZ", code="0322:1311", care_type="opname")
    b.claim("wlz_2019", "2020-03-01", sector="MSZ", code="0322:1311", care_type="opname")
    b.claim(None, "2019-03-01", sector="MSZ", code="0322:1311", care_type="opname")          # unlinkable
    b.insured("incomplete", insurer="0909").insurer_year("0909", 2019, complete=False)      # X7 does not apply
    b.claim("incomplete", "2019-03-01", sector="MSZ", code="0322:1311", care_type="opname", insurer="0909")
    b.insured("uninsured_2021", years=[2019, 2020, 2022])
    b.claim("uninsured_2021", "2021-03-01", sector="MSZ", code="0322:1311", care_type="opname")
    b.patient("ehr_wlz").insured("ehr_wlz", wlz_years=[2022])                              # in EHR too
    b.claim("ehr_wlz", "2022-03-01", sector="MSZ", code="0322:1201", care_type="opname")
    acsc = study(b, tmp_path)["acsc"]
    assert acsc.rows() == [(2019, 3, 2), (2020, 1, 1), (2021, 0, 0), (2022, 0, 0), (2023, 0, 0)]


# -- study configuration -----------------------------------------------------------------------

@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"disciplines": {"diabetes": ["HA", "XX"]}}, "disciplines.diabetes"),
        ({"disciplines": {"no_such_condition": ["HA"]}}, "disciplines.no_such_condition"),
        ({"disciplines": {"diabetes": []}}, "disciplines.diabetes"),
        ({"disciplines": {}}, "disciplines"),
        ({"reference_years": [2016, 2019]}, "reference_years"),
        ({"reference_years": [2019, 2024]}, "reference_years"),
        ({"reference_years": [2023, 2019]}, "reference_years"),
        ({"acsc": {"years": [2019], "codes": ["322:1311"]}}, "acsc.codes"),
        ({"acsc": {"years": [2019], "codes": ["03221311"]}}, "acsc.codes"),
        ({"acsc": {"years": [2019], "codes": []}}, "acsc.codes"),
        ({"acsc": {"years": [2015], "codes": ["0322:1311"]}}, "acsc.years"),
        ({"top_n": 0}, "top_n"),
        ({"strata": ["postcode"]}, "strata"),
        ({"practice_sufficiency": {"min_share": 0.7}}, "practice_sufficiency"),
    ],
)
def test_config_invalid_study_fails_naming_the_key(overrides: dict, key: str) -> None:
    # parse_study reads no data: the error comes before any extract is opened.
    with pytest.raises(ConfigError, match=rf"study config: {key}: expected"):
        study_config(**overrides)


def test_config_seed_study_is_valid() -> None:
    config = study_config()
    assert (config.reference_years, config.top_n, config.dietetics_all_cause) == ((2019, 2023), 15, True)
    assert len(config.disciplines) == 9
