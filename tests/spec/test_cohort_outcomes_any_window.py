"""Study schema 2, "Outcomes in any window" (issue 12, item 3): each outcome on a small table of patients.

Referrals, top groups and ACSC admissions of incidence and index-date cohorts, counted in the
outcome window relative to the index date; windows and contact bands in prevalence cohorts
(relative to the reference year); the insured base population. Each test states the rule of
``docs/study-schema.md`` it pins down and puts events on both sides of each window boundary.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
from linked_builder import CONDITIONS_YAML, LinkedBuilder

from cohort.compile import run_compiled
from cohort.schema import parse_study_v2
from extracts.codelists import load_catalogue
from extracts.errors import ConfigError

CATALOGUE = load_catalogue(CONDITIONS_YAML)
INDEX = {"type": "index", "years": [2021], "conditions": ["diabetes"]}  # index date: the episode's start
D = "2021-03-01"  # every cohort member's index date below; d + 30 = 2021-03-31, d + 365 = 2022-03-01
ACSC = "0320:302"


def raw_study(cohort: dict[str, Any], outcomes: list[dict[str, Any]], **more: Any) -> dict[str, Any]:
    return {"schema": 2, "name": "spec", "cohort": cohort, "outcomes": outcomes, **more}


def run(b: LinkedBuilder, tmp_path: Path, raw: dict[str, Any]) -> dict[str, pl.DataFrame]:
    return run_compiled(b.write(tmp_path), parse_study_v2(raw, CATALOGUE))


def refused(raw: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        parse_study_v2(raw, CATALOGUE)
    return str(info.value)


# -- b. referrals, top groups and ACSC admissions of incidence and index-date cohorts -------------

def test_referrals_of_an_index_cohort_in_the_window_after_the_index_date(tmp_path: Path) -> None:
    """n: cohort records with >= 1 referral dated in [d + a, d + b] to a specialism (not GGZ) for the
    condition (its ICPC codes); N: cohort records whose practice delivered referrals in Y."""
    b = LinkedBuilder().practice("P1").practice("P2", referrals={2021: False})
    cases = {
        "last_day": ("2021-03-31", "0313", "T90"),     # d + 30: counted
        "index_day": (D, "0313", "T90"),               # d: counted
        "day_after": ("2021-04-01", "0313", "T90"),    # d + 31: outside
        "day_before": ("2021-02-28", "0313", "T90"),   # d - 1: outside
        "other_code": ("2021-03-10", "0313", "K86"),   # not a diabetes code
        "to_ggz": ("2021-03-10", "GGZ", "T90"),        # GGZ is not medical specialist care
    }
    for pid, (day, specialism, icpc) in cases.items():
        b.patient(pid).episode(pid, "T90", D).referral(pid, day, specialism=specialism, icpc=icpc)
    b.patient("no_delivery").registered("no_delivery", "P2", "1990-01-01").episode("no_delivery", "T90", D)
    b.referral("no_delivery", "2021-03-10", icpc="T90")
    b.patient("outside_cohort").referral("outside_cohort", "2021-03-10", icpc="T90")  # no diabetes record
    outcome = {"type": "referrals", "window": {"days": [0, 30]}}
    referrals = run(b, tmp_path, raw_study(INDEX, [outcome]))["referrals"]
    assert referrals.rows(named=True) == [{"year": 2021, "condition": "diabetes", "n": 2, "N": 6}]


def test_top_groups_of_an_index_cohort_count_its_contacts_in_the_window(tmp_path: Path) -> None:
    """method.md section 6 over the cohort's qualifying contacts dated in its window: groups by
    contacts (ties by group), persons per group, total_contacts of the discipline in the window."""
    b = (LinkedBuilder()
         .patient("a").episode("a", "T90", D)
         .contact("a", D, icpc="T90").contact("a", "2021-03-31", icpc="T90").contact("a", "2021-03-20", icpc="K86")
         .contact("a", "2021-04-01", icpc="R74").contact("a", "2021-02-28", icpc="R74")  # outside [d, d + 30]
         .claim("a", "2021-03-15", sector="FT", code="7023")
         .patient("b").episode("b", "T90", D).contact("b", "2021-03-05", icpc="K86").contact("b", "2021-03-06")
         .patient("c").contact("c", "2021-03-05", icpc="R74"))  # not in the cohort
    outcome = {"type": "top", "n": 2, "window": {"days": [0, 30]}}
    top = run(b, tmp_path, raw_study(INDEX, [outcome]))["top"].sort("discipline", "rank")
    assert top.select("year", "discipline", "rank", "group", "contacts", "persons", "total_contacts").rows() == [
        (2021, "FT", 1, "7X23", 1, 1, 1),
        (2021, "HA", 1, "K86", 2, 2, 5),   # the uncoded contact of b counts in the total only
        (2021, "HA", 2, "T90", 2, 1, 5),
    ]
    assert top["share"].to_list() == [1.0, 0.4, 0.4]


def test_acsc_admissions_of_an_index_cohort_in_the_window(tmp_path: Path) -> None:
    """Netted MSZ admissions (opname) with an ACSC code of cohort records dated in [d + a, d + b]."""
    b = (LinkedBuilder()
         .patient("a").episode("a", "T90", D)
         .claim("a", "2021-06-01", sector="MSZ", care_type="opname", code=ACSC)
         .claim("a", "2022-03-01", sector="MSZ", care_type="opname", code=ACSC)      # d + 365: in
         .claim("a", "2022-03-02", sector="MSZ", care_type="opname", code=ACSC)      # d + 366: out
         .claim("a", "2021-02-28", sector="MSZ", care_type="opname", code=ACSC)      # d - 1: out
         .claim("a", "2021-07-01", sector="MSZ", care_type="poli", code=ACSC)        # not an admission
         .claim("a", "2021-08-01", sector="MSZ", care_type="opname", code="0313:221")  # not an ACSC code
         .patient("b").episode("b", "T90", D)
         .claim("b", "2021-09-01", sector="MSZ", care_type="opname", code=ACSC)
         .claim("b", "2021-09-01", sector="MSZ", care_type="opname", code=ACSC, cost="-100.00")  # withdrawn
         .patient("c").claim("c", "2021-06-01", sector="MSZ", care_type="opname", code=ACSC))  # not in the cohort
    outcome = {"type": "acsc", "codes": [ACSC], "window": {"days": [0, 365]}}
    acsc = run(b, tmp_path, raw_study(INDEX, [outcome]))["acsc"]
    assert acsc.rows(named=True) == [{"year": 2021, "admissions": 2, "persons": 1}]


def test_referrals_top_and_acsc_of_an_incidence_cohort(tmp_path: Path) -> None:
    """The same outcomes in an incidence cohort: only the incident records count (not the prevalent one)."""
    b = (LinkedBuilder()
         .patient("new").episode("new", "T90", D).referral("new", "2021-04-01", icpc="T90")
         .contact("new", "2021-04-01", icpc="T90")
         .claim("new", "2021-05-01", sector="MSZ", care_type="opname", code=ACSC)
         .patient("known").episode("known", "T90", "2015-01-01").referral("known", "2021-04-01", icpc="T90")
         .contact("known", "2021-04-01", icpc="T90")
         .claim("known", "2021-05-01", sector="MSZ", care_type="opname", code=ACSC))
    cohort = {"type": "incidence", "years": [2021], "conditions": ["diabetes"], "washout_days": 365}
    outcomes = [{"type": "referrals", "window": {"days": [0, 365]}}, {"type": "top", "window": {"days": [0, 365]}},
                {"type": "acsc", "codes": [ACSC], "window": {"days": [0, 365]}}]
    tables = run(b, tmp_path, raw_study(cohort, outcomes))
    assert tables["referrals"].select("n", "N").row(0) == (1, 1)
    assert tables["top"].select("group", "contacts", "persons").rows() == [("T90", 1, 1)]
    assert tables["acsc"].select("admissions", "persons").row(0) == (1, 1)


@pytest.mark.parametrize(("outcome", "key", "words"), [
    ({"type": "referrals"}, "outcomes[0].window", "missing"),
    ({"type": "top", "n": 5}, "outcomes[0].window", "missing"),
    ({"type": "acsc", "codes": [ACSC]}, "outcomes[0].window", "missing"),
    ({"type": "acsc", "codes": [ACSC], "years": [2021], "window": {"days": [0, 30]}}, "outcomes[0].years",
     "the window after the index date"),
    ({"type": "acsc", "window": {"days": [0, 30]}}, "outcomes[0].codes", "empty code list"),
    ({"type": "referrals", "window": {"days": [30, 0]}}, "outcomes[0].window.days", "end >= start"),
])
def test_referrals_top_and_acsc_of_an_index_cohort_are_checked_before_data(outcome: dict, key: str,
                                                                          words: str) -> None:
    message = refused(raw_study(INDEX, [outcome]))
    assert message.startswith(f"study config: {key}:"), message
    assert words in message


@pytest.mark.parametrize("outcome", [{"type": "referrals", "window": {"years": [0, 1]}},
                                     {"type": "top", "window": {"years": [-1, 0]}},
                                     {"type": "acsc", "years": [2021], "codes": [ACSC], "window": {"years": [0, 0]}}])
def test_referrals_top_and_acsc_of_a_prevalence_cohort_take_no_window(outcome: dict) -> None:
    """In a prevalence cohort they are method.md sections 5-7: in the reference year (ACSC: its years)."""
    raw = raw_study({"type": "prevalence", "years": [2021], "conditions": ["diabetes"]}, [outcome])
    message = refused(raw)
    assert message.startswith("study config: outcomes[0].window:"), message
    assert "method.md" in message


# -- a. windows and contact bands in prevalence cohorts (relative to the reference year) -----------

PREVALENCE = {"type": "prevalence", "years": [2021], "conditions": ["diabetes"]}
CANCER = "0313:011"  # an MSZ code of cancer: not diabetes care


def _prevalent(b: LinkedBuilder, pid: str, **patient: Any) -> LinkedBuilder:
    return b.patient(pid, **patient).episode(pid, "T90", "2015-01-01")  # prevalent for diabetes in 2021


def test_contacts_of_a_prevalence_cohort_in_a_window_of_years(tmp_path: Path) -> None:
    """``{years: [1, 1]}``: 1 Jan (Y + 1) .. 31 Dec (Y + 1), both days in."""
    b = LinkedBuilder()
    for pid, day in (("dec31", "2021-12-31"), ("jan1", "2022-01-01"), ("last", "2022-12-31"), ("after", "2023-01-01")):
        _prevalent(b, pid).contact(pid, day, icpc="T90")
    outcome = {"type": "contacts", "disciplines": ["HA"], "window": {"years": [1, 1]}}
    care = run(b, tmp_path, raw_study(PREVALENCE, [outcome]))["care_use"]
    assert care.select("year", "condition", "discipline", "n", "N").rows() == [(2021, "diabetes", "HA", 2, 4)]


def test_contacts_of_a_prevalence_cohort_for_any_cause(tmp_path: Path) -> None:
    """``cause: all`` counts a hospital contact for another condition; ``cause: method`` does not."""
    b = _prevalent(LinkedBuilder(), "a").claim("a", "2021-05-01", sector="MSZ", code=CANCER)
    specific = {"type": "contacts", "disciplines": ["MSZ"]}
    assert run(b, tmp_path, raw_study(PREVALENCE, [specific]))["care_use"]["n"].to_list() == [0]
    every = {**specific, "cause": "all"}
    assert run(b, tmp_path / "all", raw_study(PREVALENCE, [every]))["care_use"]["n"].to_list() == [1]


def test_contact_bands_of_a_prevalence_cohort(tmp_path: Path) -> None:
    """Prevalent records by their number of contacts in ``{years: [-1, 0]}`` (1 Jan Y-1 .. 31 Dec Y);
    a record that is not prevalent is not in N."""
    b = LinkedBuilder()
    _prevalent(b, "none").contact("none", "2019-12-31").contact("none", "2022-01-01")  # both outside
    _prevalent(b, "one").contact("one", "2020-01-01")
    _prevalent(b, "three").contact("three", "2021-12-31").contact("three", "2020-06-01").contact("three", "2021-02-01")
    b.patient("healthy").contact("healthy", "2021-02-01")
    outcome = {"type": "contact_bands", "disciplines": ["HA"], "window": {"years": [-1, 0]}, "bands": [1, 2, 4]}
    bands = run(b, tmp_path, raw_study(PREVALENCE, [outcome]))["contact_bands"]
    assert bands.select("band", "persons", "N").rows() == [("0", 1, 3), ("1", 1, 3), ("2-3", 1, 3), ("4+", 0, 3)]


def test_costs_of_a_prevalence_cohort_in_a_window_of_years(tmp_path: Path) -> None:
    pytest.importorskip("cohort.costs")
    b = (_prevalent(LinkedBuilder(), "a")
         .claim("a", "2021-01-01", sector="MSZ", code=CANCER, cost="100.00")   # 1 Jan Y: in
         .claim("a", "2022-12-31", sector="MSZ", code=CANCER, cost="20.00")    # 31 Dec Y+1: in
         .claim("a", "2020-12-31", sector="MSZ", code=CANCER, cost="3.00")     # before
         .claim("a", "2023-01-01", sector="MSZ", code=CANCER, cost="7.00"))    # after
    outcome = {"type": "costs", "disciplines": ["MSZ"], "window": {"years": [0, 1]}}
    costs = run(b, tmp_path, raw_study(PREVALENCE, [outcome]))["costs"]
    assert costs.select("year", "condition", "sector", "persons", "total_cents").rows() == [
        (2021, "diabetes", "MSZ", 1, 12000)]


# -- c. the insured base population -----------------------------------------------------------------

DM = "0313:221"  # an MSZ code of diabetes in the catalogue


def _insured_only(b: LinkedBuilder, pid: str, **insured: Any) -> LinkedBuilder:
    """A person in the claims alone: insured rows (born 1960, female), no EHR record."""
    return b.insured(pid, birth=insured.pop("birth", "1960-01-01"), sex=insured.pop("sex", "F"), **insured)


def _prevalence_of(b: LinkedBuilder, tmp_path: Path, population: str, criteria: list | None = None) -> tuple[int, int]:
    raw = raw_study(PREVALENCE, [], population=population, criteria=criteria or [])
    table = run(b, tmp_path, raw)["prevalence"]
    return table["numerator"].item(), table["denominator"].item()


def test_insured_population_is_every_person_insured_in_the_year(tmp_path: Path) -> None:
    """``population: insured``: every person with an insured row for Y, with or without an EHR record
    (a linked record of the registered population is that person); not a record without one."""
    b = _prevalent(LinkedBuilder(), "ehr")                                     # registered, linked, insured
    _insured_only(b, "claims_only").claim("claims_only", "2021-05-01", sector="MSZ", code=DM)
    b.patient("not_insured_2021").insured("not_insured_2021", years=[2019, 2020])  # registered, X1 fails
    _insured_only(b, "insured_2022", years=[2022]).claim("insured_2022", "2021-05-01", sector="MSZ", code=DM)
    assert _prevalence_of(b, tmp_path / "insured", "insured") == (2, 2)
    assert _prevalence_of(b, tmp_path / "registered", "registered") == (1, 2)


@pytest.mark.parametrize(("criterion", "insured", "excluded"), [
    ({"rule": "X1"}, {}, 1),                                         # no usable link to an EHR record
    ({"rule": "linked", "method": "any"}, {}, 1),
    ({"rule": "insured"}, {}, 1),                                    # "linked with one insured row"
    ({"rule": "X4"}, {}, 0),                                         # no practice at all: not two
    ({"rule": "X5"}, {}, 1),                                         # not registered in Y
    ({"rule": "registered", "days": 30}, {}, 1),
    ({"rule": "X2"}, {}, 0),                                         # birth date from the insured row
    ({"rule": "X2"}, {"birth": None}, 1),
    ({"rule": "age", "min": 61}, {}, 0),                             # 2021 - 1960 = 61
    ({"rule": "age", "min": 62}, {}, 1),
    ({"rule": "sex", "values": ["M"]}, {}, 1),                       # sex from the insured row
    ({"rule": "X3"}, {"wlz_years": [2021]}, 1),                      # its own insured row's Wlz stay
    ({"rule": "not_wlz"}, {"wlz_years": [2020]}, 0),
    ({"rule": "X7"}, {"insurer": "0909"}, 1),                        # its insurer's claims are incomplete
    ({"rule": "X7"}, {}, 0),
])
def test_criteria_on_an_insured_person_without_an_ehr_record(tmp_path: Path, criterion: dict, insured: dict,
                                                             excluded: int) -> None:
    b = _insured_only(LinkedBuilder(), "a", **insured).insurer_year("0909", 2021, complete=False)
    tables = run(b, tmp_path, raw_study(PREVALENCE, [], population="insured",
                                        criteria=[{"name": "rule", **criterion}]))
    rows = tables["attrition"].filter(pl.col("condition") == "all")
    assert rows.select("step", "before", "excluded").rows() == [("base", 1, 0), ("rule", 1, excluded)]


def test_an_insured_person_without_an_ehr_record_enters_an_index_cohort_by_claims(tmp_path: Path) -> None:
    """The index date from its first claim of the condition; its hospital contacts in the window count;
    it is never incident (no registration over the wash-out)."""
    b = (_insured_only(LinkedBuilder(), "a").claim("a", "2021-03-01", sector="MSZ", code=DM)
         .claim("a", "2021-03-31", sector="MSZ", code=DM).claim("a", "2021-04-01", sector="MSZ", code=DM))
    outcome = {"type": "contact_bands", "disciplines": ["MSZ"], "window": {"days": [0, 30]}, "bands": [1, 2, 3]}
    tables = run(b, tmp_path, raw_study(INDEX, [outcome], population="insured"))
    assert tables["index_cohort"].select("numerator", "denominator").row(0) == (1, 1)
    bands = tables["contact_bands"]
    assert dict(zip(bands["band"], bands["persons"], strict=True)) == {"0": 0, "1": 0, "2": 1, "3+": 0}
    incidence = {"type": "incidence", "years": [2021], "conditions": ["diabetes"], "washout_days": 365}
    tables = run(b, tmp_path / "incidence", raw_study(incidence, [], population="insured"))
    assert tables["incidence"].select("numerator", "denominator").row(0) == (0, 1)


def test_unknown_population_is_refused_before_data() -> None:
    message = refused(raw_study(PREVALENCE, [], population="everyone"))
    assert message.startswith("study config: population:"), message
    assert "registered or insured" in message


def test_costs_of_an_insured_person_without_a_practice_are_in_the_region_no_practice(tmp_path: Path) -> None:
    """No EHR record, no practice: its region is the level ``no_practice``, where its prevalence and
    its costs are counted."""
    pytest.importorskip("cohort.costs")
    b = _insured_only(LinkedBuilder(), "a").claim("a", "2021-05-01", sector="MSZ", code=DM, cost="80.00")
    raw = raw_study(PREVALENCE, [{"type": "costs", "disciplines": ["MSZ"]}], population="insured", strata=["region"])
    tables = run(b, tmp_path, raw)
    assert tables["prevalence"].select("region", "numerator", "denominator").rows() == [("no_practice", 1, 1)]
    assert tables["costs"].select("region", "persons", "total_cents").rows() == [("no_practice", 1, 8000)]


def test_costs_of_an_unknown_stratum_are_counted_in_it(tmp_path: Path) -> None:
    """An unknown sex is a stratum of its own (docs/study-schema.md, 2026-12-05): the costs of a
    record of unknown sex are counted there (they were 0: a join on a null key)."""
    pytest.importorskip("cohort.costs")
    b = _prevalent(LinkedBuilder(), "a", sex=None).insured("a", sex=None)
    b.claim("a", "2021-05-01", sector="MSZ", code=DM, cost="80.00")
    tables = run(b, tmp_path, raw_study(PREVALENCE, [{"type": "costs", "disciplines": ["MSZ"]}], strata=["sex"]))
    assert tables["costs"].select("sex", "persons", "total_cents").rows() == [(None, 1, 8000)]
