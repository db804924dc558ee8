"""Study schema 2 (``docs/study-schema.md``): each criterion, cohort type and window boundary on a
small table of patients, and every check made before data is read.

Each test builds a linked layout (``tests/linked_builder.py``) with the rows its rule needs and runs
the schema 2 study through :func:`cohort.compile.run_compiled`. Persons are registered from birth at
practice P1 and insured every year unless a test says otherwise; studies list only the criteria
under test, so that nothing else decides.
"""

from __future__ import annotations

import re
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
DM = "0313:221"  # an MSZ code of diabetes in the catalogue
CANCER = "0313:011"  # an MSZ code of cancer


def raw_study(*, type: str = "prevalence", years: list[int] | None = None, conditions: Any = ("diabetes",),  # noqa: A002
              criteria: list | None = None, outcomes: list | None = None, **cohort: Any) -> dict[str, Any]:
    return {"schema": 2, "name": "spec", "cohort": {"type": type, "years": years or [2019],
                                                    "conditions": list(conditions), **cohort},
            "criteria": criteria or [], "outcomes": outcomes or []}


def run(b: LinkedBuilder, tmp_path: Path, raw: dict[str, Any]) -> dict[str, pl.DataFrame]:
    return run_compiled(b.write(tmp_path), parse_study_v2(raw, CATALOGUE))


def steps(tables: dict[str, pl.DataFrame], condition: str = "all") -> dict[str, int]:
    """step -> excluded, of the attrition chain of ``condition``."""
    rows = tables["attrition"].filter(pl.col("condition") == condition)
    return dict(zip(rows["step"], rows["excluded"], strict=True))


def kept(b: LinkedBuilder, tmp_path: Path, criterion: dict[str, Any], **study: Any) -> int:
    """How many base records the single ``criterion`` keeps (the chain's last ``after``)."""
    tables = run(b, tmp_path, raw_study(criteria=[criterion], **study))
    return tables["attrition"].filter(pl.col("condition") == "all")["after"].to_list()[-1]


def one_patient(**patient: Any) -> LinkedBuilder:
    return LinkedBuilder().patient("a", **patient)


# -- has / has not a condition in a window (years relative to the reference year) ---------------

CANCER_BEFORE = {"name": "prior_cancer", "rule": "has", "condition": "cancer", "window": {"years": [-5, -1]}}


@pytest.mark.parametrize(("start", "end", "inside"), [
    ("2014-01-01", "2014-01-01", True),   # the window's first day (1 Jan Y-5)
    ("2013-06-01", "2013-12-31", False),  # ends the day before the window
    ("2018-12-31", None, True),           # the window's last day (31 Dec Y-1), open episode
    ("2019-01-01", None, False),          # starts in the reference year: after the window
    ("2010-01-01", None, True),           # an open episode started before: a record on every day
])
def test_has_condition_episode_at_window_boundary(tmp_path: Path, start: str, end: str | None, inside: bool) -> None:
    b = one_patient().episode("a", "A79", start, end)
    assert kept(b, tmp_path, CANCER_BEFORE) == int(inside)
    assert kept(b, tmp_path / "not", {**CANCER_BEFORE, "rule": "has_not"}) == int(not inside)


@pytest.mark.parametrize(("day", "inside"), [("2014-01-01", True), ("2013-12-31", False), ("2018-12-31", True),
                                             ("2019-01-01", False)])
def test_has_condition_claim_at_window_boundary(tmp_path: Path, day: str, inside: bool) -> None:
    b = one_patient().claim("a", day, sector="MSZ", code=CANCER)
    assert kept(b, tmp_path, CANCER_BEFORE) == int(inside)


def test_has_condition_claim_withdrawn_is_no_record(tmp_path: Path) -> None:
    b = (one_patient().claim("a", "2016-03-01", sector="MSZ", code=CANCER, cost="100.00")
         .claim("a", "2016-03-01", sector="MSZ", code=CANCER, cost="-100.00"))
    assert kept(b, tmp_path, CANCER_BEFORE) == 0


def test_has_condition_claim_of_unlinked_record_is_no_record(tmp_path: Path) -> None:
    b = LinkedBuilder().patient("a", p2=None).claim(None, "2016-03-01", sector="MSZ", code=CANCER)
    assert kept(b, tmp_path, CANCER_BEFORE) == 0


def test_has_adhoc_code_list_matches_icpc_and_claims(tmp_path: Path) -> None:
    b = (LinkedBuilder().patient("a").patient("b").patient("c")
         .episode("a", "K8601", "2019-02-01")  # a sub-code: base K86
         .claim("b", "2019-03-01", sector="FT", code="1234")
         .episode("c", "K87", "2019-02-01"))
    codes = {"icpc": ["K86"], "claims": {"FT": ["1234"]}}
    assert kept(b, tmp_path, {"name": "htn", "rule": "has", "codes": codes, "window": {"years": [0, 0]}}) == 2


# -- age, sex, registration, insurance, Wlz, link ---------------------------------------------

@pytest.mark.parametrize(("birth", "inside"), [("1944-12-31", True), ("1943-12-31", False), ("1979-01-01", True),
                                               ("1980-01-01", False), (None, False)])
def test_age_range_reference_year_inclusive_bounds(tmp_path: Path, birth: str | None, inside: bool) -> None:
    b = one_patient(birth=birth)
    assert kept(b, tmp_path, {"name": "aged", "rule": "age", "min": 40, "max": 75}) == int(inside)


@pytest.mark.parametrize(("sex", "inside"), [("F", True), ("M", False), ("X", False), (None, False)])
def test_sex_criterion(tmp_path: Path, sex: str | None, inside: bool) -> None:
    b = LinkedBuilder().patient("a", sex=sex).insured("a", sex=None)
    assert kept(b, tmp_path, {"name": "women", "rule": "sex", "values": ["F"]}) == int(inside)


@pytest.mark.parametrize(("start", "inside"), [("2018-01-01", True), ("2018-01-02", False)])
def test_registered_days_before_reference_year(tmp_path: Path, start: str, inside: bool) -> None:
    b = one_patient().registered("a", "P1", start)
    assert kept(b, tmp_path, {"name": "reg", "rule": "registered", "days": 365}) == int(inside)


def test_registered_gap_of_one_day_fails_continuity(tmp_path: Path) -> None:
    joined = one_patient().registered("a", "P1", "2010-01-01", "2018-06-30").registered("a", "P2", "2018-07-01")
    gap = one_patient().registered("a", "P1", "2010-01-01", "2018-06-29").registered("a", "P2", "2018-07-01")
    criterion = {"name": "reg", "rule": "registered", "days": 365}
    assert (kept(joined, tmp_path / "j", criterion), kept(gap, tmp_path / "g", criterion)) == (1, 0)


def test_insured_with_complete_insurer(tmp_path: Path) -> None:
    b = (LinkedBuilder().patient("a").patient("b").insured("b", insurer="0202").insurer_year("0202", 2019, complete=False)
         .patient("c", p2=None))
    assert kept(b, tmp_path, {"name": "ins", "rule": "insured"}) == 1
    assert kept(b, tmp_path / "any", {"name": "ins", "rule": "insured", "complete_insurer": False}) == 2


def test_not_wlz_excludes_a_stay_in_the_year(tmp_path: Path) -> None:
    b = LinkedBuilder().patient("a").patient("b").insured("b", wlz_years=[2019]).patient("c").insured("c", wlz_years=[2018])
    assert kept(b, tmp_path, {"name": "home", "rule": "not_wlz"}) == 2


@pytest.mark.parametrize("method", ["bsn", "any"])
def test_linked_criterion(tmp_path: Path, method: str) -> None:
    b = LinkedBuilder().patient("a").patient("b", p2=None)
    assert kept(b, tmp_path, {"name": "linked", "rule": "linked", "method": method}) == 1


@pytest.mark.parametrize(("fallback", "kept_records"), [(None, 2), ("include", 2), ("exclude", 1)])
def test_x1_counts_a_fallback_link_as_linked_unless_told_to_exclude_it(tmp_path: Path, fallback: str | None,
                                                                        kept_records: int) -> None:
    # issue 13: a record the TTP linked without its BSN is linked (X1 passes) by default;
    # {rule: X1, fallback: exclude} is method.md's literal X1, linkage on the BSN only.
    b = LinkedBuilder().patient("ok").patient("fb", bsn_status="missing", link_method="probabilistic")
    x1 = {"name": "X1", "rule": "X1"} | ({"fallback": fallback} if fallback else {})
    assert kept(b, tmp_path, x1) == kept_records


def test_x1_fallback_takes_include_or_exclude_only() -> None:
    with pytest.raises(ConfigError, match=r"criteria\[0\]\.fallback"):
        parse_study_v2(raw_study(criteria=[{"name": "X1", "rule": "X1", "fallback": "maybe"}]), CATALOGUE)


def test_schema_1_linkage_fallback_converts_to_the_x1_setting() -> None:
    from cohort.convert import to_schema2  # noqa: PLC0415

    raw = {"name": "s", "reference_years": [2019], "disciplines": {"diabetes": ["HA"]},
           "linkage": {"fallback": "exclude"}}
    x1 = next(c for c in to_schema2(raw)["criteria"] if c["rule"] == "X1")
    assert x1["fallback"] == "exclude"
    assert "fallback" not in next(c for c in to_schema2({**raw, "linkage": None})["criteria"] if c["rule"] == "X1")
    from cohort.convert import load_study  # noqa: PLC0415

    with pytest.raises(ConfigError, match=r"^study config: linkage\.fallback"):
        load_study({**raw, "linkage": {"fallback": "maybe"}}, CATALOGUE)


def test_criteria_order_decides_attribution(tmp_path: Path) -> None:
    b = LinkedBuilder().patient("a", birth=None, sex="M").insured("a", birth=None)
    sex, x2 = {"name": "women", "rule": "sex", "values": ["F"]}, {"name": "X2", "rule": "X2"}
    assert steps(run(b, tmp_path, raw_study(criteria=[sex, x2])))["women"] == 1
    assert steps(run(b, tmp_path / "r", raw_study(criteria=[x2, sex])))["X2"] == 1


# -- incidence: wash-out and registration over it ------------------------------------------------

INCIDENCE = {"type": "incidence", "years": [2021], "washout_days": 730}  # wash-out of 2021-03-01: 2019-03-02..2021-02-28


def incident(b: LinkedBuilder, tmp_path: Path, **extra: Any) -> int:
    tables = run(b, tmp_path, raw_study(**INCIDENCE, **extra))
    return tables["incidence"]["numerator"].sum()


@pytest.mark.parametrize(("earlier", "expected"), [("2019-03-01", 1), ("2019-03-02", 0), ("2020-12-31", 0)])
def test_incidence_earlier_claim_at_washout_boundary(tmp_path: Path, earlier: str, expected: int) -> None:
    b = one_patient().episode("a", "T90", "2021-03-01").claim("a", earlier, sector="MSZ", code=DM)
    assert incident(b, tmp_path) == expected


def test_incidence_open_episode_from_before_is_not_incident(tmp_path: Path) -> None:
    assert incident(one_patient().episode("a", "T90", "2018-05-01"), tmp_path) == 0


@pytest.mark.parametrize(("start", "expected"), [("2019-03-02", 1), ("2019-03-03", 0)])
def test_incidence_needs_registration_over_the_washout(tmp_path: Path, start: str, expected: int) -> None:
    b = one_patient().registered("a", "P1", start).episode("a", "T90", "2021-03-01")
    assert incident(b, tmp_path) == expected


def test_incidence_index_from_first_claim_and_attrition_entry(tmp_path: Path) -> None:
    b = (LinkedBuilder().patient("new").claim("new", "2021-05-01", sector="MSZ", code=DM)
         .patient("old").episode("old", "T90", "2020-01-01", "2020-02-01").claim("old", "2021-05-01", sector="MSZ", code=DM)
         .patient("none"))
    tables = run(b, tmp_path, raw_study(**INCIDENCE))
    assert tables["incidence"].select("numerator", "denominator").row(0) == (1, 3)
    assert steps(tables, "diabetes") == {"base": 0, "entry": 1}


# -- index-date cohorts: criteria and outcomes in days relative to the index date ------------------

INDEX = {"type": "index", "years": [2021]}


@pytest.mark.parametrize(("end", "expected"), [("2021-02-28", 0), (None, 0), ("2016-03-02", 0), ("2016-03-01", 1)])
def test_index_has_not_cancer_days_before(tmp_path: Path, end: str | None, expected: int) -> None:
    # index 2021-03-01; window [d-1825, d-1] = 2016-03-02 .. 2021-02-28
    b = one_patient().episode("a", "T90", "2021-03-01").episode("a", "A79", "2015-01-01", end)
    criterion = {"name": "no_cancer", "rule": "has_not", "condition": "cancer", "window": {"days": [-1825, -1]}}
    tables = run(b, tmp_path, raw_study(**INDEX, criteria=[criterion]))
    assert tables["index_cohort"]["numerator"].sum() == expected


def test_index_cancer_starting_on_index_day_is_outside_days_before(tmp_path: Path) -> None:
    b = one_patient().episode("a", "T90", "2021-03-01").episode("a", "A79", "2021-03-01")
    criterion = {"name": "no_cancer", "rule": "has_not", "condition": "cancer", "window": {"days": [-1825, -1]}}
    assert run(b, tmp_path, raw_study(**INDEX, criteria=[criterion]))["index_cohort"]["numerator"].sum() == 1


@pytest.mark.parametrize(("birth", "expected"), [("1981-03-01", 1), ("1981-03-02", 0)])
def test_index_age_in_completed_years_on_index_date(tmp_path: Path, birth: str, expected: int) -> None:
    b = one_patient(birth=birth).episode("a", "T90", "2021-03-01")
    criterion = {"name": "adult40", "rule": "age", "min": 40, "at": "index"}
    assert run(b, tmp_path, raw_study(**INDEX, criteria=[criterion]))["index_cohort"]["numerator"].sum() == expected


@pytest.mark.parametrize(("day", "counted"), [("2021-02-28", False), ("2021-03-01", True), ("2022-03-01", True),
                                              ("2022-03-02", False)])
def test_followup_contacts_window_days_inclusive(tmp_path: Path, day: str, counted: bool) -> None:
    # index 2021-03-01; follow-up [d, d+365] = 2021-03-01 .. 2022-03-01 (a diabetes claim in 2021
    # would itself be the index: the contact is another condition's, counted all-cause)
    b = one_patient().episode("a", "T90", "2021-03-01").claim("a", day, sector="MSZ", code=CANCER)
    outcome = {"type": "contacts", "disciplines": ["MSZ"], "window": {"days": [0, 365]}, "cause": "all"}
    care = run(b, tmp_path, raw_study(**INDEX, outcomes=[outcome]))["care_use"]
    assert care.select("n", "N").row(0) == (int(counted), 1)


def test_followup_contacts_condition_specific_and_all_cause(tmp_path: Path) -> None:
    b = one_patient().episode("a", "T90", "2021-03-01").claim("a", "2021-04-01", sector="MSZ", code=CANCER)
    specific = {"type": "contacts", "disciplines": ["MSZ"], "window": {"days": [0, 365]}}
    assert run(b, tmp_path, raw_study(**INDEX, outcomes=[specific]))["care_use"]["n"].item() == 0
    every = {**specific, "cause": "all"}
    assert run(b, tmp_path / "all", raw_study(**INDEX, outcomes=[every]))["care_use"]["n"].item() == 1


def test_contact_bands_count_persons_per_band(tmp_path: Path) -> None:
    b = LinkedBuilder()
    for pid, n in (("a", 0), ("b", 1), ("c", 3), ("d", 12)):
        b.patient(pid).episode(pid, "T90", "2021-03-01")
        for k in range(n):
            b.contact(pid, f"2021-04-{k + 1:02d}", icpc="A01")
    outcome = {"type": "contact_bands", "disciplines": ["HA"], "window": {"days": [0, 365]}}
    bands = run(b, tmp_path, raw_study(**INDEX, outcomes=[outcome]))["contact_bands"]
    assert dict(zip(bands["band"], bands["persons"], strict=True)) == {"0": 1, "1": 1, "2-4": 1, "5-9": 0, "10+": 1}
    assert bands["N"].unique().to_list() == [4]


# -- checks before any data is read ----------------------------------------------------------------

def refused(raw: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        parse_study_v2(raw, CATALOGUE)
    return str(info.value)


@pytest.mark.parametrize(("raw", "key", "words"), [
    (raw_study(criteria=[{"name": "a", "rule": "X9"}]), "criteria[0].rule", "unknown criterion"),
    (raw_study(criteria=[{**CANCER_BEFORE, "window": {"years": [-1, -5]}}]), "criteria[0].window.years", "end >= start"),
    (raw_study(criteria=[{"name": "c", "rule": "has", "codes": {"icpc": []}, "window": {"years": [0, 0]}}]),
     "criteria[0].codes", "empty code list"),
    (raw_study(criteria=[{"name": "c", "rule": "has", "codes": {"claims": {"MSZ": []}}, "window": {"years": [0, 0]}}]),
     "criteria[0].codes.claims.MSZ", "empty code list"),
    (raw_study(outcomes=[{"type": "costs", "disciplines": ["HA"]}]), "outcomes[0].disciplines", "no claimed costs"),
    (raw_study(conditions=["gout"]), "cohort.conditions[0]", "unknown condition"),
    (raw_study(criteria=[{**CANCER_BEFORE, "condition": "gout"}]), "criteria[0].condition", "unknown condition"),
    (raw_study(outcomes=[{"type": "contacts", "disciplines": ["XX"]}]), "outcomes[0].disciplines", "unknown discipline"),
    (raw_study(criteria=[{**CANCER_BEFORE, "window": {"days": [-10, -1]}}]), "criteria[0].window.days",
     "needs an index date"),
    (raw_study(**INDEX, criteria=[{**CANCER_BEFORE, "window": {"days": [-10, -1]}}, {"name": "X1", "rule": "X1"}]),
     "criteria[1]", "after those relative to the reference year"),
    (raw_study(criteria=[{"name": "X1", "rule": "X1"}, {"name": "X1", "rule": "X2"}]), "criteria[1].name", "used twice"),
    (raw_study(criteria=[{"name": "entry", "rule": "X1"}]), "criteria[0].name", "a step of every chain"),
    (raw_study(criteria=[{"name": "a", "rule": "age", "min": 75, "max": 40}]), "criteria[0].max", "max >= min"),
    (raw_study(criteria=[{"name": "a", "rule": "age", "min": 40, "unit": "y"}]), "criteria[0].unit", "unknown key"),
    (raw_study(**INDEX, outcomes=[{"type": "referrals"}]), "outcomes[0].window", "missing"),
    (raw_study(**INDEX, outcomes=[{"type": "contacts", "disciplines": ["MSZ"]}]), "outcomes[0].window", "missing"),
    (raw_study(type="cohortish"), "cohort.type", "unknown cohort type"),
    # An ad-hoc code list under a catalogue condition's name: two definitions of one name (the seed
    # engine wrote both, duplicate rows the release refused; the ledger relates releases by name).
    (raw_study(conditions=[{"name": "diabetes", "codes": {"icpc": ["T90"]}}]), "cohort.conditions[0].name",
     "a condition of the catalogue"),
    (raw_study(years=[2030]), "cohort.years", "outside the extracts"),
    (raw_study(**INDEX, conditions=["frail_elderly"]), "", ""),  # frail elderly has codes (P70): accepted
])
def test_study_refused_before_data_is_read(raw: dict[str, Any], key: str, words: str) -> None:
    if not key:
        assert parse_study_v2(raw, CATALOGUE).cohort_type == "index"
        return
    message = refused(raw)
    assert message.startswith(f"study config: {key}:"), message
    assert words in message


def test_refusal_names_no_value_of_data(tmp_path: Path) -> None:
    # Nothing is read: a study refused on a linked folder that does not exist fails on the config.
    raw = raw_study(criteria=[{**CANCER_BEFORE, "window": {"years": [0, -1]}}])
    with pytest.raises(ConfigError):
        run_compiled(tmp_path / "missing", parse_study_v2(raw, CATALOGUE))


def test_linked_bsn_only_refuses_links_of_another_method(tmp_path: Path) -> None:
    linked = LinkedBuilder().patient("a").patient("b").patient("c").write(tmp_path)
    patients = pl.read_parquet(linked / "ehr" / "patients.parquet")
    methods = {"a": "bsn", "b": "probabilistic", "c": None}
    patients.with_columns(pl.col("patient_id").replace_strict(methods, return_dtype=pl.String).alias("link_method")
                          ).write_parquet(linked / "ehr" / "patients.parquet")

    def after(method: str) -> int:
        study = parse_study_v2(raw_study(criteria=[{"name": "linked", "rule": "linked", "method": method}]), CATALOGUE)
        return run_compiled(linked, study)["attrition"]["after"].to_list()[1]

    assert (after("bsn"), after("any")) == (1, 3)  # an unknown method is not a BSN link


@pytest.mark.parametrize(("claim_year", "lookback", "prevalent"), [(2019, 0, 1), (2018, 0, 0), (2018, 1, 1),
                                                                    (2017, 1, 0)])
def test_prevalence_of_adhoc_code_list_claims_lookback(tmp_path: Path, claim_year: int, lookback: int,
                                                       prevalent: int) -> None:
    b = one_patient().claim("a", f"{claim_year}-06-01", sector="MSZ", code="0320:999")
    condition = {"name": "my_heart", "codes": {"claims": {"MSZ": ["0320:999"]}}, "lookback_years": lookback}
    tables = run(b, tmp_path, raw_study(conditions=[condition]))
    assert tables["prevalence"].select("numerator", "denominator").row(0) == (prevalent, 1)


@pytest.mark.parametrize(("schema1", "key"), [
    ({"reference_years": [2030]}, "reference_years"),
    ({"top_n": 0}, "top_n"),
    ({"practice_sufficiency": {"min_weeks": 60}}, "practice_sufficiency.min_weeks"),
    ({"costs": {"sectors": ["HA"]}}, "costs.sectors"),
])
def test_schema1_refusal_names_the_schema1_key(schema1: dict[str, Any], key: str) -> None:
    from cohort.convert import load_study

    raw = {"name": "x", "reference_years": [2019], "disciplines": {"diabetes": ["HA"]}, **schema1}
    with pytest.raises(ConfigError, match=rf"^study config: {re.escape(key)}:"):
        load_study(raw, CATALOGUE)


@pytest.mark.parametrize(("start", "expected"), [("2020-03-01", 1), ("2020-03-02", 0)])
def test_index_registered_days_before_the_index_date(tmp_path: Path, start: str, expected: int) -> None:
    # index 2021-03-01 (2020 is a leap year): the 365 days before it are 2020-03-01 .. 2021-02-28
    b = one_patient().registered("a", "P1", start).episode("a", "T90", "2021-03-01")
    criterion = {"name": "reg", "rule": "registered", "days": 365, "relative_to": "index"}
    assert run(b, tmp_path, raw_study(**INDEX, criteria=[criterion]))["index_cohort"]["numerator"].sum() == expected


# -- claimed costs (cohort.costs, a module of its own) ----------------------------------------------

COSTS = {"type": "costs", "disciplines": ["MSZ"], "window": {"days": [0, 365]}}


def test_costs_outcome_refused_before_data_when_the_cost_module_is_absent(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from cohort import compile as compiled

    real = importlib.util.find_spec
    monkeypatch.setattr(compiled.importlib.util, "find_spec", lambda name: None if name == "cohort.costs" else real(name))
    study = parse_study_v2(raw_study(**INDEX, outcomes=[COSTS]), CATALOGUE)
    with pytest.raises(ConfigError, match=r"^study config: outcomes.costs: claimed costs need the cost module"):
        run_compiled(tmp_path / "no-linked-folder-is-read", study)


def test_costs_in_the_followup_window_of_each_cohort_member(tmp_path: Path) -> None:
    pytest.importorskip("cohort.costs")
    b = (one_patient().episode("a", "T90", "2021-03-01")
         .claim("a", "2021-03-01", sector="MSZ", code=CANCER, cost="100.00")    # the index day: in
         .claim("a", "2022-03-01", sector="MSZ", code=CANCER, cost="20.00")     # d + 365: in
         .claim("a", "2022-03-02", sector="MSZ", code=CANCER, cost="7.00")      # d + 366: out
         .claim("a", "2021-02-28", sector="MSZ", code=CANCER, cost="3.00"))     # d - 1: out
    costs = run(b, tmp_path, raw_study(**INDEX, outcomes=[COSTS]))["costs"]
    assert costs.select("sector", "persons", "total_cents").row(0) == ("MSZ", 1, 12000)
