"""The worked examples of ``shared/spec/disclosure.md`` (T = 10), plus its primary rules.

Each secondary-suppression example is a small table written out as in the spec; the test
asserts the exact hidden set :func:`disclosure.protect` chooses and the intervals the
spec quotes. The 4 x 4 example is a pattern the check must *flag*.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from disclosure import secondary
from disclosure import (
    Policy,
    bounds,
    change_rule,
    check,
    count_rule,
    link_tables,
    magnitude_rule,
    n_of_n_rule,
    protect,
    table_1d,
    table_2d,
    table_3d,
)

POLICY = Policy()  # T = 10, margin 30 %, zeros published


def _hidden_labels(pattern) -> set[str]:
    return {pattern.table.labels[i] for i in np.flatnonzero(pattern.hidden)}


def _protect(table):
    pattern = protect(table, count_rule(table.values, POLICY), POLICY)
    assert pattern.releasable, pattern.reason
    return pattern


# -- 1-D tables with a published total ----------------------------------------------------------

ONE_WAY = [
    pytest.param([3, 8, 16, 23], {"a", "b"}, id="two_primaries_protect_each_other"),
    pytest.param([3, 12, 16, 23], {"a", "b"}, id="lone_primary_needs_the_smallest_secondary"),
    pytest.param([2, 3, 40, 55], {"a", "b", "c"}, id="a3_hidden_sum_5_is_derivable"),
    pytest.param([1, 9, 30, 60], {"a", "b", "c"}, id="a4_singleton_knows_itself"),
    pytest.param([0, 4, 30, 60], {"b", "c"}, id="zero_stays_published_never_secondary"),
]


@pytest.mark.parametrize(("values", "expected"), ONE_WAY)
def test_one_way_table_hides_exactly_the_spec_cells(values: list[int], expected: set[str]) -> None:
    table = table_1d(values, list("abcd"))
    pattern = _protect(table)
    assert _hidden_labels(pattern) == expected
    assert check(table, pattern.hidden, count_rule(table.values, POLICY).hidden, POLICY) == []
    reasons = dict(zip(table.labels, pattern.reasons, strict=True))
    assert all(reasons[c] == ("primary:count" if 1 <= v < 10 else "secondary")
               for c, v in zip("abcd", values, strict=True) if c in expected)


def test_one_way_two_primaries_each_lie_in_0_to_11() -> None:
    pattern = _protect(table_1d([3, 8, 16, 23], list("abcd")))
    assert pattern.lower[:2].tolist() == [0, 0]
    assert pattern.upper[:2].tolist() == [11, 11]


def test_one_way_lone_primary_alone_is_exactly_54_minus_51() -> None:
    table = table_1d([3, 12, 16, 23], list("abcd"))
    only_primary = np.isin(table.labels, ["a"])
    lo, hi = bounds(table, only_primary)
    assert (lo[0], hi[0]) == (3, 3)
    assert {v.rule for v in check(table, only_primary, only_primary, POLICY)} == {"A1", "A3"}


def test_one_way_hidden_sum_below_t_is_an_a3_violation() -> None:
    table = table_1d([2, 3, 40, 55], list("abcd"))
    two = np.isin(table.labels, ["a", "b"])
    assert [(v.rule, v.cell) for v in check(table, two, two, POLICY)] == [("A3", "Total")]


def test_one_way_singleton_fixed_at_1_determines_the_9() -> None:
    table = table_1d([1, 9, 30, 60], list("abcd"))
    two = np.isin(table.labels, ["a", "b"])
    lo, hi = bounds(table, two, known=["a"])
    assert (lo[1], hi[1]) == (9, 9)
    assert "A4" in {v.rule for v in check(table, two, two, POLICY)}


# -- 2-D, region x sex ---------------------------------------------------------------------------


def test_region_by_sex_cheapest_pattern_hides_a_and_c_and_a_f_lies_in_0_to_12() -> None:
    table = table_2d([[18, 2], [14, 19], [12, 10], [11, 14]], list("ABCD"), ["M", "F"])
    pattern = _protect(table)
    assert _hidden_labels(pattern) == {"A,M", "A,F", "C,M", "C,F"}
    af = table.index("A,F")
    assert (pattern.lower[af], pattern.upper[af]) == (0, 12)
    assert pattern.reasons[af] == "primary:count"
    assert pattern.counts_by_reason() == {"primary:count": 1, "secondary": 3}


# -- 2-D, 4 x 4: a pattern with two hidden cells per line that still discloses -----------------

GRID = [[30, 47, 64, 89], [90, 124, 5, 31], [92, 100, 59, 85], [800, 991, 651, 685]]
GRID_PATTERN = ["w,a", "w,b", "w,c", "x,a", "x,c", "y,b", "y,d", "z,b", "z,d"]


def test_grid_pattern_is_flagged_because_w_b_is_exactly_47() -> None:
    table = table_2d(GRID, list("wxyz"), list("abcd"))
    hidden = np.isin(table.labels, GRID_PATTERN)
    lo, hi = bounds(table, hidden)
    wb = table.index("w,b")
    assert (lo[wb], hi[wb]) == (47, 47)
    found = check(table, hidden, count_rule(table.values, POLICY).hidden, POLICY)
    assert ("A1", "w,b") in {(v.rule, v.cell) for v in found}


def test_grid_protect_finds_a_pattern_that_passes() -> None:
    table = table_2d(GRID, list("wxyz"), list("abcd"))
    pattern = _protect(table)
    assert pattern.hidden[table.index("x,c")]
    assert check(table, pattern.hidden, count_rule(table.values, POLICY).hidden, POLICY) == []
    assert np.all(pattern.upper[pattern.hidden] - pattern.lower[pattern.hidden] >= 1)


# -- 3-D, sex x age x region ---------------------------------------------------------------------


def test_cube_primary_m_o_s_hides_all_8_inner_cells() -> None:
    cube = np.array([[[12, 15], [20, 3]], [[14, 11], [16, 18]]])  # sex x age x region
    table = table_3d(cube, [["M", "F"], ["Y", "O"], ["N", "S"]])
    pattern = _protect(table)
    assert pattern.hidden[table.inner].all()
    assert _hidden_labels(pattern) == {table.labels[i] for i in np.flatnonzero(table.inner)}
    mos = table.index("M,O,S")
    assert pattern.lower[mos] <= 2 and pattern.upper[mos] >= 4


# -- two releases: one quantity, one version -----------------------------------------------------


def test_linked_tables_refuse_a_margin_in_two_versions() -> None:
    by_sex = table_2d([[18, 2], [14, 19]], ["A", "B"], ["M", "F"])
    shown_total = table_1d([18, 33], ["A", "B"])  # "A" recomputed from the visible cells only
    with pytest.raises(ValueError, match="two versions"):
        link_tables({"by_sex": by_sex, "regions": shown_total}, [("by_sex:A,Total", "regions:A")])


def test_linked_tables_are_suppressed_consistently() -> None:
    by_sex = table_2d([[18, 2], [14, 19], [12, 10], [11, 14]], list("ABCD"), ["M", "F"])
    regions = table_1d([20, 33, 22, 25], list("ABCD"))
    same = [(f"by_sex:{r},Total", f"regions:{r}") for r in [*"ABCD", "Total"]]
    linked = link_tables({"by_sex": by_sex, "regions": regions}, same)
    pattern = _protect(linked)
    af = linked.index("by_sex:A,F")
    assert pattern.hidden[af] and pattern.upper[af] - pattern.lower[af] >= 2
    regions_ids = linked.parts["regions"]
    by_sex_totals = linked.parts["by_sex"][[by_sex.index(f"{r},Total") for r in "ABCD"]]
    assert (pattern.hidden[regions_ids[:4]] == pattern.hidden[by_sex_totals]).all()


# -- primary rules -------------------------------------------------------------------------------


def test_count_rule_hides_1_to_9_and_never_zero() -> None:
    flags = count_rule(pl.Series([0, 1, 9, 10, 250]), POLICY)
    assert flags.hidden.tolist() == [False, True, True, False, False]
    assert flags.reasons.tolist() == ["", "primary:count", "primary:count", "", ""]


def test_n_of_n_complement_and_percentage_rules() -> None:
    #          n:  5   12  12  0   40  10
    #          N: 50   15  40  5   40  9+1
    result = n_of_n_rule([5, 12, 12, 0, 40, 10], [50, 15, 40, 5, 40, 10], POLICY)
    assert result.count.reasons.tolist() == ["primary:count", "primary:complement", "", "", "", ""]
    assert result.total.hidden.tolist() == [False, False, False, True, False, False]
    assert result.percentage.hidden.tolist() == [True, True, False, True, False, False]


def test_change_is_hidden_when_either_percentage_is() -> None:
    flags = change_rule([True, False, False], [False, True, False])
    assert flags.hidden.tolist() == [True, True, False]
    assert set(flags.reasons.tolist()) == {"primary:change", ""}


def test_magnitudes_p_percent_dominance_and_contributors() -> None:
    rows = (
        [("few", p, 100.0) for p in range(3)]
        + [("p_rule", p, x) for p, x in enumerate([1000.0, 900.0] + [5.0] * 18)]  # rest 90 < 10 % of 1000
        + [("dominated", p, x) for p, x in enumerate([500.0, 450.0] + [12.0] * 8)]  # top 2 = 90.8 %
        + [("safe", p, 100.0) for p in range(20)]
        + [("safe", 0, 50.0)]  # two claims of one person count as one contributor
    )
    frame = pl.DataFrame(rows, schema=["cell", "person", "cost"], orient="row")
    out = magnitude_rule(frame, POLICY, cell="cell", value="cost", contributor="person")
    reasons = dict(zip(out["cell"], out["reason"], strict=True))
    assert reasons == {"dominated": "primary:dominance", "few": "primary:contributors",
                       "p_rule": "primary:p-percent", "safe": ""}
    assert out.filter(pl.col("cell") == "safe")["contributors"].item() == 20


# -- fail closed ---------------------------------------------------------------------------------


def test_no_safe_pattern_releases_nothing_and_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    # 1, 9, 30, 60 needs a repair step; with no helping cell available the table is withheld.
    monkeypatch.setattr(secondary._Solver, "helper", lambda *_: np.array([], dtype=np.int64))
    table = table_1d([1, 9, 30, 60], list("abcd"))
    pattern = protect(table, count_rule(table.values, POLICY), POLICY)
    assert not pattern.releasable and pattern.hidden.all()
    assert "no cell left to hide" in pattern.reason and "'b'" in pattern.reason
    assert "9" not in pattern.reason.replace("'b'", "")  # labels, never values
    assert pattern.reasons[:2] == ("primary:count", "primary:count")
    assert set(pattern.reasons[2:]) == {"unreleasable"}


# -- boundaries ----------------------------------------------------------------------------------


def test_disclosure_package_never_imports_the_auditor() -> None:
    package = Path(__file__).resolve().parents[2] / "disclosure"
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n == "audit" or n.startswith("audit.") or ".audit" in n for n in names), path
