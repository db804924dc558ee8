"""Study schema 2: points where the engine and the DuckDB reference disagreed, each on a small table.

Found by the differential test (``tests/integration/test_study_differential_v2.py``) and decided
against ``docs/study-schema.md``; each test states the rule it pins down.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from linked_builder import CONDITIONS_YAML, LinkedBuilder, p2_of

from cohort.compile import run_compiled
from cohort.schema import parse_study_v2
from extracts.codelists import load_catalogue

CATALOGUE = load_catalogue(CONDITIONS_YAML)


def _run(b: LinkedBuilder, tmp_path: Path, raw: dict) -> dict[str, pl.DataFrame]:
    return run_compiled(b.write(tmp_path), parse_study_v2(raw, CATALOGUE))


def test_stratified_care_use_of_an_index_cohort_has_the_cells_of_its_cohort_table(tmp_path: Path) -> None:
    """``care_use`` is stratified as the cohort table is: a stratum without cohort records gets n = N = 0.

    docs/study-schema.md: strata "stratify the cohort table and the contacts and costs outcomes";
    a prevalence study lists every stratum of its population in ``prevalence`` and ``care_use``
    alike. Here the man is in the population (a row of ``index_cohort`` with numerator 0) but not in
    the cohort; his stratum was missing from ``care_use`` (and so from ``care_use_change``).
    """
    b = (LinkedBuilder().patient("woman", sex="F").episode("woman", "T90", "2021-03-01")
         .contact("woman", "2021-03-10", icpc="T90").patient("man", sex="M"))
    raw = {"schema": 2, "name": "spec", "cohort": {"type": "index", "years": [2021], "conditions": ["diabetes"]},
           "outcomes": [{"type": "contacts", "disciplines": ["HA"], "window": {"days": [0, 30]}}], "strata": ["sex"]}
    tables = _run(b, tmp_path, raw)
    cohort = tables["index_cohort"].sort("sex")
    assert cohort.select("sex", "numerator", "denominator").rows() == [("F", 1, 1), ("M", 0, 1)]
    care = tables["care_use"].sort("sex")
    assert care.select("sex", "n", "N").rows() == [("F", 1, 1), ("M", 0, 0)]


def _excluded(tables: dict[str, pl.DataFrame], step: str) -> int:
    rows = tables["attrition"].filter((pl.col("condition") == "all") & (pl.col("step") == step))
    return rows["excluded"].item()


def _prevalence(criteria: list[dict]) -> dict:
    return {"schema": 2, "name": "spec", "cohort": {"type": "prevalence", "years": [2021], "conditions": ["diabetes"]},
            "criteria": criteria}


@pytest.mark.parametrize("rule", ["X3", "not_wlz"])
@pytest.mark.parametrize("case", ["two insured rows", "sex conflict"])
def test_wlz_of_an_unusable_link_is_not_used(tmp_path: Path, rule: str, case: str) -> None:
    """X3 / not_wlz read the insured row only through a usable link.

    docs/study-schema.md, Population: "Attributes from claims are used only for records whose link
    is usable (the X1 test passes), whatever the criteria". A record whose link fails X1 (two
    insured rows for Y; a sex conflict) has no Wlz attribute, so a criterion placed before X1 does
    not exclude it for a Wlz stay (X1 excludes it afterwards).
    """
    b = LinkedBuilder()
    if case == "two insured rows":
        b.patient("a").insured("a", wlz_years=[2021]).insured("a", years=[2021], insurer="0202", wlz_years=[2021])
    else:
        b.patient("a", sex="M").insured("a", sex="F", wlz_years=[2021])
    tables = _run(b, tmp_path, _prevalence([{"name": "wlz", "rule": rule}, {"name": "X1", "rule": "X1"}]))
    assert (_excluded(tables, "wlz"), _excluded(tables, "X1")) == (0, 1)


@pytest.mark.parametrize("case", ["shared pseudonym", "two insured rows", "sex conflict", "no pseudonym"])
def test_x7_before_x1_treats_an_unusable_link_as_no_known_insurer(tmp_path: Path, case: str) -> None:
    """X7 excludes a record whose insurer for Y is not known to be complete; through an unusable link
    no insurer is known (as for a record without a pseudonym), so X7 placed first excludes it."""
    b = LinkedBuilder()
    if case == "shared pseudonym":
        b.patient("a", p2=p2_of("s")).patient("b", p2=p2_of("s")).insured("s")
    elif case == "two insured rows":
        b.patient("a").insured("a").insured("a", years=[2021], insurer="0202")
    elif case == "sex conflict":
        b.patient("a", sex="M").insured("a", sex="F")
    else:
        b.patient("a", p2=None)
    tables = _run(b, tmp_path, _prevalence([{"name": "X7", "rule": "X7"}, {"name": "X1", "rule": "X1"}]))
    base = tables["attrition"].filter(pl.col("step") == "base")["before"][0]
    assert (_excluded(tables, "X7"), _excluded(tables, "X1")) == (base, 0)


@pytest.mark.parametrize("cohort_type", ["prevalence", "index"])
def test_records_of_unknown_sex_are_counted_in_their_own_stratum(tmp_path: Path, cohort_type: str) -> None:
    """With ``strata: [sex]``, a record whose sex is unknown (EHR and claims) is a stratum of its own:
    counted in the numerator and in care use's N there, as in the denominator (it was dropped from
    every count but the denominator: a join on a null key)."""
    b = LinkedBuilder()
    for pid, sex in (("woman", "F"), ("unknown", None)):
        b.patient(pid, sex=sex, p2=None).episode(pid, "T90", "2021-03-01").contact(pid, "2021-03-10", icpc="T90")
    outcome = {"type": "contacts", "disciplines": ["HA"]}
    if cohort_type == "index":
        outcome["window"] = {"days": [0, 30]}
    raw = {"schema": 2, "name": "spec", "cohort": {"type": cohort_type, "years": [2021], "conditions": ["diabetes"]},
           "outcomes": [outcome], "strata": ["sex"]}
    tables = _run(b, tmp_path, raw)
    table = tables["prevalence" if cohort_type == "prevalence" else "index_cohort"]
    assert table.sort("sex", nulls_last=True).select("sex", "numerator", "denominator").rows() == [
        ("F", 1, 1), (None, 1, 1)]
    care = tables["care_use"].sort("sex", nulls_last=True)
    assert care.select("sex", "n", "N").rows() == [("F", 1, 1), (None, 1, 1)]


def test_stratified_care_use_of_a_prevalence_cohort_is_a_full_grid(tmp_path: Path) -> None:
    """``care_use`` of a prevalence study has a row for every stratum of the study population, 0 of 0
    where nobody has the condition (docs/guide-researcher.md: "Every table is a full grid"); a
    stratum without any prevalent person was missing."""
    b = (LinkedBuilder().patient("woman", sex="F").episode("woman", "T90", "2015-01-01")
         .contact("woman", "2021-03-10", icpc="T90").patient("man", sex="M"))
    tables = _run(b, tmp_path, {**_prevalence([]), "outcomes": [{"type": "contacts", "disciplines": ["HA"]}],
                                "strata": ["sex"]})
    assert tables["prevalence"].sort("sex").select("sex", "numerator", "denominator").rows() == [("F", 1, 1), ("M", 0, 1)]
    assert tables["care_use"].sort("sex").select("sex", "n", "N").rows() == [("F", 1, 1), ("M", 0, 0)]
