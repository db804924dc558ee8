"""The exact reduce of a partitioned study (``cohort.reduce``), on hand-made partitions.

Each test splits a small hand-made input two ways: by person (what ``cohort.partitioned`` does) and
by row, with one person's rows in two partitions. United, the split by person gives the
unpartitioned result exactly; the split by row does not: the partition key is what makes the
reduce exact.
"""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from cohort.costs import cost_cells, merge_cost_tables
from cohort.members import Members, attrition
from cohort.reduce import additive
from cohort.study import _top_counts, top_ranked

YEAR = 2022
# Person a has two HA contacts for R05, person b one; b also one for K86.
EVENTS = pl.DataFrame({"patient_id": ["a", "a", "b", "b"], "discipline": ["HA"] * 4,
                       "code": ["R05", "R05", "R05", "K86"]})


def _top_of(parts: list[pl.DataFrame]) -> pl.DataFrame:
    counted = [_top_counts(p, YEAR) for p in parts]
    groups = additive([c[0] for c in counted], ["year", "discipline", "group"], ["contacts", "persons"])
    totals = additive([c[1] for c in counted], ["year", "discipline"], ["total_contacts"])
    return top_ranked(groups, totals, 15).sort("year", "discipline", "rank")


def test_top_list_of_person_partitions_is_the_whole_top_list() -> None:
    whole = _top_of([EVENTS])
    by_person = _top_of([EVENTS.filter(pl.col("patient_id") == p) for p in ("b", "a")])
    assert_frame_equal(by_person, whole)
    assert whole.filter(pl.col("group") == "R05")["persons"].to_list() == [2]


def test_top_list_of_row_partitions_counts_a_split_person_twice() -> None:
    """Person a's two contacts in two partitions: a is counted once in each, persons 3 instead of 2."""
    by_row = _top_of([EVENTS[0:1], EVENTS[1:]])
    assert by_row.filter(pl.col("group") == "R05")["persons"].to_list() == [3]
    assert not by_row.equals(_top_of([EVENTS]))


def test_top_list_is_ranked_after_the_sum_not_per_partition() -> None:
    """K86 leads in no partition's top 1 of the sum; a per-partition top 1 would keep a wrong group."""
    events = pl.DataFrame({"patient_id": ["a", "a", "b", "c", "c"], "discipline": ["HA"] * 5,
                           "code": ["R05", "R05", "K86", "K86", "K86"]})
    parts = [events.filter(pl.col("patient_id") == "a"), events.filter(pl.col("patient_id") != "a")]
    got = _top_of(parts)
    counted = [_top_counts(p, YEAR) for p in parts]
    assert top_ranked(counted[0][0], counted[0][1], 1)["group"].to_list() == ["R05"]  # partition 0 alone
    whole = top_ranked(*_top_counts(events, YEAR)[:2], 15).sort("rank")
    assert_frame_equal(got, whole)
    assert got["group"].to_list() == ["K86", "R05"]
    assert got["share"].to_list() == pytest.approx([0.6, 0.4])


UNITS = pl.LazyFrame({
    "p2": [1, 1, 1, 2, 3],
    "sector": ["MSZ"] * 5,
    "service_date": [date(YEAR, 3, 1), date(YEAR, 4, 1), date(YEAR, 5, 1), date(YEAR, 6, 1), date(YEAR, 7, 1)],
    "cost": [10.0, 20.0, 30.0, 45.0, 5.5],
})
COHORT = pl.DataFrame({"p2": [1, 2, 3], "year": [YEAR] * 3, "condition": ["diabetes"] * 3})


def _costs(units: pl.LazyFrame, cohort: pl.DataFrame) -> pl.DataFrame:
    return cost_cells(units, cohort, ["year", "condition"], sectors=["MSZ", "FT"])[0]


def test_costs_of_person_partitions_unite_to_the_whole() -> None:
    whole = _costs(UNITS, COHORT)
    parts = [_costs(UNITS.filter(pl.col("p2").is_in(ps)), COHORT.filter(pl.col("p2").is_in(ps)))
             for ps in ([2], [1, 3])]
    assert_frame_equal(merge_cost_tables(parts, ["year", "condition"]), whole)
    msz = whole.filter(pl.col("sector") == "MSZ").row(0, named=True)
    assert (msz["persons"], msz["total_cents"], msz["largest_cents"], msz["second_cents"]) == (3, 11050, 6000, 4500)


def test_costs_of_row_partitions_break_one_persons_contribution() -> None:
    """Person 1's three claims over two partitions: two contributors, and 45 euros looks largest."""
    parts = [_costs(UNITS.head(2), COHORT), _costs(UNITS.tail(3), COHORT)]
    merged = merge_cost_tables(parts, ["year", "condition"]).filter(pl.col("sector") == "MSZ").row(0, named=True)
    assert (merged["persons"], merged["largest_cents"]) == (4, 4500)


def _attrition_members(frames: list[pl.DataFrame]) -> Members:
    members = Members(())
    attrition(members, YEAR, [("all", pl.concat(frames))], ("X1", "X2"))
    return members


def test_member_parts_of_person_partitions_unite_in_the_unpartitioned_order() -> None:
    """Attrition keeps its chain's order (base, X1, X2), not the keys' order; counts keep key order."""
    base = pl.DataFrame({"person": [5, -3, 8, 1], "excluded_by": [None, "X2", "X1", None]},
                        schema={"person": pl.Int64, "excluded_by": pl.String})
    prevalence = pl.DataFrame({"year": [YEAR] * 4, "condition": ["diabetes", "asthma", "diabetes", "asthma"],
                               "person": [5, -3, 8, 1]})
    whole = _attrition_members([base])
    whole.add("prevalence", "numerator", prevalence)
    parts = []
    for rows in ([0, 3], [1, 2]):
        part = _attrition_members([base[rows]])
        part.add("prevalence", "numerator", prevalence[rows])
        parts.append(part.parts())
    united = Members.merged((), parts).frames()
    for table, frame in whole.frames().items():
        assert_frame_equal(united[table], frame, check_exact=True), table
    assert united["attrition"]["step"].to_list()[:4] == ["base"] * 4


def test_both_reducers_take_each_tables_cells_from_one_definition() -> None:
    """reduce_study and reduce_index_study sum a table by the same keys (cohort.reduce.CELLS), strata in place."""
    from cohort import reduce

    assert reduce.cells("care_use", ["sex", "age_band"]) == (
        ["year", "condition", "discipline", "sex", "age_band"], ["n", "N"])
    assert reduce.cells("prevalence", ["sex"]) == reduce.cells("incidence", ["sex"]) == reduce.cells(
        "index_cohort", ["sex"]) == (["year", "condition", "sex"], ["numerator", "denominator"])
    assert reduce.cells("referrals", ["sex"]) == (["year", "condition"], ["n", "N"])  # no strata
    summed = {"attrition", "care_use", "referrals", "acsc", "contact_bands", "fallback_links", "top_groups",
              "top_totals", "prevalence", "incidence", "index_cohort"}
    assert set(reduce.CELLS) == summed
    with pytest.raises(KeyError):
        reduce.cells("costs", [])  # not a sum: merge_cost_tables, keyed by reduce.COST_KEYS
    assert reduce.cost_keys(["sex"]) == ["year", "condition", "sex"]
