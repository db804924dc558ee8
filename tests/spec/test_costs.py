"""Claimed costs (issue 12): the cost table of a cohort, and the magnitude rules on its cells.

``shared/spec/disclosure.md``, "Primary rules": costs are published under the p %-rule (p = 10)
and (2, 90 %)-dominance, over at least T persons. Each test is a small table of patients and
their netted claim units (``method.md`` 9.4), or of per-cell statistics at and around the
thresholds.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from linked_builder import LinkedBuilder, study_config
from polars.testing import assert_frame_equal

from cohort.costs import COST_COLUMNS, cost_table
from cohort.study import run_study
from disclosure import Flags, Policy, magnitude_rule, magnitude_stats_rule
from extracts.errors import ConfigError
from release.layout import COSTS
from release.magnitudes import decide_magnitudes, nested_pairs

POLICY = Policy()  # T = 10, p = 10, dominance (2, 90)


def units(rows: list[tuple[str, str, date, float]]) -> pl.LazyFrame:
    """Netted claim units: person, sector, service date, cost in euros."""
    return pl.DataFrame(rows, schema={"p2": pl.String, "sector": pl.String, "service_date": pl.Date,
                                      "cost": pl.Decimal(12, 2)}, orient="row").lazy()


def cohort(rows: list[tuple[str, int, str]]) -> pl.LazyFrame:
    return pl.DataFrame(rows, schema={"p2": pl.String, "year": pl.Int64, "condition": pl.String},
                        orient="row").lazy()


# -- the cost table -----------------------------------------------------------------------------

def test_cost_table_sums_per_person_then_per_cell() -> None:
    #  person  sector  date        cost
    #  a       MSZ     2019-02-01  100.00   a's two units are one contributor: 150.00
    #  a       MSZ     2019-05-01   50.00
    #  b       MSZ     2019-03-01   70.25
    #  c       MSZ     2020-01-01  999.00   another year: not in the 2019 cell
    #  c       FT      2019-01-01   40.00
    #  d       MSZ     2019-01-01   10.00   not in the cohort
    claims = units([("a", "MSZ", date(2019, 2, 1), 100.0), ("a", "MSZ", date(2019, 5, 1), 50.0),
                    ("b", "MSZ", date(2019, 3, 1), 70.25), ("c", "MSZ", date(2020, 1, 1), 999.0),
                    ("c", "FT", date(2019, 1, 1), 40.0), ("d", "MSZ", date(2019, 1, 1), 10.0)])
    people = cohort([("a", 2019, "diabetes"), ("b", 2019, "diabetes"), ("c", 2019, "diabetes")])
    out = cost_table(claims, people, ["year", "condition"], sectors=["MSZ", "FT", "DT"])
    expected = pl.DataFrame(
        [(2019, "diabetes", "DT", 0, 0, None, 0, 0),
         (2019, "diabetes", "FT", 1, 4000, 40.0, 4000, 0),
         (2019, "diabetes", "MSZ", 2, 22025, 110.125, 15000, 7025)],
        schema={"year": pl.Int64, "condition": pl.String, "sector": pl.String, **COST_COLUMNS}, orient="row")
    assert_frame_equal(out, expected)


def test_cost_table_cells_follow_the_cohort_keys_and_windows() -> None:
    # One person in two cells (two conditions); a window per cohort row instead of the year.
    claims = units([("a", "MSZ", date(2021, 3, 1), 10.0), ("a", "MSZ", date(2022, 3, 1), 20.0)])
    people = pl.DataFrame({"p2": ["a", "a", None], "cond": ["x", "y", "y"],
                           "start": [date(2021, 1, 1), date(2021, 6, 1), date(2021, 1, 1)],
                           "end": [date(2021, 12, 31), date(2022, 5, 31), date(2021, 12, 31)]}).lazy()
    out = cost_table(claims, people, ["cond"], sectors=["MSZ"], window=("start", "end"))
    assert out.select("cond", "persons", "total_cents").rows() == [("x", 1, 1000), ("y", 1, 2000)]


def test_cost_table_refuses_a_cohort_without_its_keys() -> None:
    with pytest.raises(ValueError, match="cohort: expected columns"):
        cost_table(units([]), cohort([]), ["year", "stratum"], sectors=["MSZ"])


# -- the magnitude rules at and around their thresholds -----------------------------------------

def stats(cells: dict[str, list[int]]) -> tuple[list[str], Flags]:
    """Per cell its per-person contributions (cents) -> the rule's flags on (total, n, x1, x2)."""
    names = list(cells)
    total = [sum(v) for v in cells.values()]
    persons = [len(v) for v in cells.values()]
    top = [sorted(v, reverse=True) + [0, 0] for v in cells.values()]
    flags = magnitude_stats_rule(total, persons, [t[0] for t in top], [t[1] for t in top], POLICY)
    return names, flags


CELLS = {
    # one person holds 91 % of the cell: the second-largest estimates the largest closely
    "one_person_91_percent": [9100] + [100] * 9,
    # dominance exactly at 90 % (passes) and just above (fails); the p %-rule holds in both
    "dominance_at": [1800, 1800] + [50] * 8,
    "dominance_above": [1801, 1800] + [50] * 8,
    # nine persons: too few whatever their costs
    "nine_persons": [100] * 9,
    "ten_persons": [100] * 10,
    "zero": [],
}


def test_magnitude_cells_at_and_around_the_thresholds() -> None:
    names, flags = stats(CELLS)
    reasons = dict(zip(names, flags.reasons.tolist(), strict=True))
    assert reasons == {
        "one_person_91_percent": "primary:p-percent",
        "dominance_at": "",
        "dominance_above": "primary:dominance",
        "nine_persons": "primary:contributors",
        "ten_persons": "",
        "zero": "",
    }


def test_p_percent_rule_exactly_at_its_threshold_passes_it() -> None:
    # Ten persons: x1 = 5000, x2 = 4000, the other eight share exactly 500 = 10 % of x1 ("at") or
    # 499 ("below"). At p = 10 the p %-rule passes at its threshold, and (2, 90)-dominance, the
    # stricter rule there (x1 + x2 is 94.7 %), hides the cell instead.
    cells = {"at": [5000, 4000] + [62, 63] * 4, "below": [5000, 4000] + [62, 62] + [62, 63] * 3}
    cells["below"][2] = 61
    names, flags = stats(cells)
    assert dict(zip(names, flags.reasons.tolist(), strict=True)) == {"at": "primary:dominance",
                                                                     "below": "primary:p-percent"}


def test_stats_rule_agrees_with_the_contributor_rule() -> None:
    rows = [(cell, i, x) for cell, values in CELLS.items() for i, x in enumerate(values)]
    frame = pl.DataFrame(rows, schema=["cell", "person", "cost"], orient="row")
    by_lists = magnitude_rule(frame, POLICY, cell="cell", value="cost", contributor="person")
    names, flags = stats({k: v for k, v in CELLS.items() if v})
    assert dict(zip(names, flags.reasons.tolist(), strict=True)) == dict(
        zip(by_lists["cell"], by_lists["reason"], strict=True))


def test_dominance_with_more_than_two_contributors_is_bounded_from_x1_and_x2() -> None:
    # (3, 90)-dominance from x1, x2 alone: x1 + 2 * x2 bounds the top three from above (fail closed)
    policy = Policy(dominance_n=3)
    values = [3000, 3000, 100] + [100] * 9  # top three 6100 of 7200 = 84.7 %; bound 9000 > 90 %
    flags = magnitude_stats_rule([sum(values)], [12], [3000], [3000], policy)
    assert flags.reasons.tolist() == ["primary:dominance"]
    exact = magnitude_stats_rule([sum(values)], [12], [3000], [3000], policy, top_sum=[6100])
    assert exact.reasons.tolist() == [""]


def test_stats_rule_refuses_inconsistent_statistics() -> None:
    with pytest.raises(ValueError, match="x2 exceeds x1"):
        magnitude_stats_rule(np.array([100]), [10], [10], [20], POLICY)


# -- the study's optional costs table -----------------------------------------------------------

def test_study_reports_costs_of_prevalent_persons_per_sector(tmp_path: Path) -> None:
    #  a: diabetic, MSZ 100.00 + 20.50 in 2019 (one unit netted to 0 is no unit), FT 30.00 in 2018
    #  b: diabetic, no claims                      c: not diabetic, MSZ 500.00
    b = (LinkedBuilder().patient("a").episode("a", "T90", "2010-01-01").patient("b").episode("b", "T90", "2010-01-01")
         .patient("c")
         .claim("a", "2019-03-01", sector="MSZ", code="0303:032", cost="100.00")
         .claim("a", "2019-04-01", sector="MSZ", code="0303:032", cost="20.50")
         .claim("a", "2019-05-01", sector="MSZ", code="0303:033", cost="40.00")
         .claim("a", "2019-05-01", sector="MSZ", code="0303:033", cost="-40.00")
         .claim("a", "2018-06-01", sector="FT", code="1234", cost="30.00")
         .claim("c", "2019-03-01", sector="MSZ", code="0303:032", cost="500.00"))
    config = study_config(lenient=True, reference_years=[2019], costs={"sectors": ["FT", "MSZ"]})
    costs = run_study(b.write(tmp_path), config)["costs"].filter(pl.col("condition") == "diabetes")
    assert costs.select("sector", "persons", "total_cents", "largest_cents", "second_cents").rows() == [
        ("FT", 0, 0, 0, 0), ("MSZ", 1, 12050, 12050, 0)]


def test_study_without_costs_has_no_costs_table(tmp_path: Path) -> None:
    b = LinkedBuilder().patient("a").episode("a", "T90", "2010-01-01")
    assert "costs" not in run_study(b.write(tmp_path), study_config(lenient=True, reference_years=[2019]))


@pytest.mark.parametrize(
    ("costs", "key", "rule"),
    [
        ({"sectors": ["MSZ", "HA"]}, "costs.sectors.HA", "no claimed costs"),
        ({"sectors": ["HAP"]}, "costs.sectors.HAP", "no claimed costs"),
        ({"sectors": ["XYZ"]}, "costs.sectors.XYZ", "not a sector"),
        ({"sectors": []}, "costs.sectors", "non-empty list"),
        ({"sectors": ["MSZ", "MSZ"]}, "costs.sectors", "each sector once"),
        ({"sector": ["MSZ"]}, "costs", "one key, sectors"),
        (["MSZ"], "costs", "one key, sectors"),
    ],
)
def test_config_cost_outcome_on_a_sector_without_costs_names_key_rule_and_expectation(
        costs: object, key: str, rule: str) -> None:
    with pytest.raises(ConfigError, match=rf"study config: {re.escape(key)}: expected .*{rule}") as info:
        study_config(costs=costs)
    assert info.value.exit_code == 2


# -- nested cells: the costs of a condition contain those of a condition it contains ------------

def decided(cells: list[list[int]], pairs: list[tuple[int, int]]) -> list[str]:
    """The engine's reason per row for cells of per-person cents (rows in order), nested by ``pairs``."""
    rows = [{"persons": len(v), "total_cents": sum(v), "largest_cents": max(v, default=0),
             "second_cents": sorted(v)[-2] if len(v) > 1 else 0} for v in cells]
    stats = pl.DataFrame(rows, schema={"persons": pl.Int64, "total_cents": pl.Int64, "largest_cents": pl.Int64,
                                       "second_cents": pl.Int64})
    hidden = np.array([0 < len(v) < 10 for v in cells])
    _, status, reasons = decide_magnitudes(stats, hidden, np.array(pairs, dtype=np.int64).reshape(-1, 2),
                                           POLICY, COSTS)["total"]
    return [str(r) if s else "" for r, s in zip(reasons, status, strict=True)]


def test_nested_a_hidden_part_hides_the_whole_that_would_bound_it() -> None:
    part = [91_000] + [1_000] * 9  # one person holds 91 %
    whole = part + [1_000] * 20
    assert decided([whole, part], [(0, 1)]) == ["secondary:magnitude", "primary:p-percent"]


def test_nested_a_difference_of_few_persons_or_one_dominant_person_hides_the_whole() -> None:
    part = [1_000] * 12
    assert decided([part + [1_000] * 5, part], [(0, 1)]) == ["secondary:magnitude", ""]  # five persons more
    # ten persons more, one of whom holds 92.7 % of their costs (the whole alone passes: 83 %)
    assert decided([part + [100_000] + [1_000] * 9, part], [(0, 1)]) == ["secondary:magnitude", ""]


def test_nested_a_large_difference_of_alike_persons_shows_both() -> None:
    part = [1_000] * 12
    assert decided([part + [1_000] * 30, part], [(0, 1)]) == ["", ""]
    assert decided([part, part], [(0, 1), (1, 0)]) == ["", ""]  # equal definitions: the same persons


def test_nested_pairs_come_from_part_of_relations_of_the_persons_quantity() -> None:
    frame = pl.DataFrame({"year": [2019, 2019, 2019], "condition": ["a", "b", "b"], "sector": ["MSZ", "MSZ", "FT"]})
    relation = {"type": "part_of", "part": "cost_persons", "whole": "cost_persons", "where": {"condition": "b"},
                "drop": [], "set": {"condition": "a"}, "complement": "in:a:cost_persons"}
    other = {**relation, "part": "care_use", "whole": "care_use"}
    pairs = nested_pairs(frame, ("year", "condition", "sector"), [relation, other], "cost_persons")
    assert pairs.tolist() == [[0, 1]]  # (a, MSZ) holds (b, MSZ); (b, FT) has no whole in the table
