"""The worked examples of ``shared/spec/disclosure.md``, seen from the independent auditor's side.

Every example is checked in both modes of :mod:`audit.checks`: *release mode* (only what is
published) and *verification mode* (the true values are known, as in the engine's working folder).
For each example the pattern the spec calls correct passes (no blocking finding), and the pattern
that hides the primaries only fails with the check the spec names. T = 10, P = max(1, ⌈0.3·v⌉).
"""

from __future__ import annotations

import ast
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import pytest

import audit
from audit import (
    AuditTable,
    Equation,
    FeasibleRegion,
    InconsistentTableError,
    Percentage,
    PointChange,
    Policy,
    audit_ledger,
    audit_table,
    blocking,
    cell,
    crossed_equations,
    crossed_values,
    feasible_intervals,
    label,
)

# -- helpers ----------------------------------------------------------------------------------


def crossed_table(
    name: str,
    variables: Mapping[str, Sequence[str]],
    inner: Mapping[tuple[str, ...], int],
    hidden: Iterable,
) -> tuple[AuditTable, dict]:
    """A cross-classified table with all margins, released with ``hidden`` hidden; and its truth."""
    values = crossed_values(variables, inner)
    return AuditTable.from_values(name, crossed_equations(variables), values, hidden), values


def one_way(values: Sequence[int], hidden: Iterable[int]) -> tuple[AuditTable, dict]:
    """A 1-D table of categories a, b, c, ... with its total; ``hidden`` are category indices."""
    levels = "abcdefgh"[: len(values)]
    inner = {(level,): v for level, v in zip(levels, values, strict=True)}
    return crossed_table("one_way", {"cat": levels}, inner, [cell(cat=levels[i]) for i in hidden])


def checks(findings) -> set[str]:
    return {f.check for f in blocking(findings)}


def audit_both(table: AuditTable, truth: dict) -> tuple[set[str], set[str]]:
    """Blocking check ids in release mode and in verification mode."""
    return checks(audit_table(table)), checks(audit_table(table, truth=truth))


# -- 1-D tables with a published total --------------------------------------------------------

# values, the spec's pattern (indices of hidden categories)
ONE_WAY_CORRECT = [
    pytest.param([3, 8, 16, 23], [0, 1], id="3,8,16,23|50"),  # the primaries protect each other
    pytest.param([3, 12, 16, 23], [0, 1], id="3,12,16,23|54"),
    pytest.param([2, 3, 40, 55], [0, 1, 2], id="2,3,40,55|100"),
    pytest.param([1, 9, 30, 60], [0, 1, 2], id="1,9,30,60|100"),
    pytest.param([0, 4, 30, 60], [1, 2], id="0,4,30,60|94"),
]
# values, primaries-only pattern, the check that must fail it
ONE_WAY_PRIMARIES_ONLY = [
    pytest.param([3, 12, 16, 23], [0], "A1", id="3,12,16,23|54"),
    pytest.param([2, 3, 40, 55], [0, 1], "A3", id="2,3,40,55|100"),
    pytest.param([1, 9, 30, 60], [0, 1], "A4", id="1,9,30,60|100"),
    pytest.param([0, 4, 30, 60], [1], "A1", id="0,4,30,60|94"),
]


@pytest.mark.parametrize(("values", "correct"), ONE_WAY_CORRECT)
def test_audit_one_way_correct_pattern_passes_in_both_modes(values, correct):
    table, truth = one_way(values, correct)
    assert audit_both(table, truth) == (set(), set())


@pytest.mark.parametrize(("values", "primaries_only", "fails"), ONE_WAY_PRIMARIES_ONLY)
def test_audit_one_way_primaries_only_fails_with_the_named_check(values, primaries_only, fails):
    table, truth = one_way(values, primaries_only)
    assert fails in checks(audit_table(table, truth=truth))
    if fails != "A4":  # A4 needs to know which hidden cell is the singleton
        assert fails in checks(audit_table(table))


def test_audit_one_way_two_primaries_protect_each_other_within_0_to_11():
    table, _ = one_way([3, 8, 16, 23], [0, 1])
    intervals = feasible_intervals(table.equations, table.published, table.hidden)
    assert {label(k): (i.lo, i.hi) for k, i in intervals.items()} == {
        "cat=a": (0, 11),
        "cat=b": (0, 11),
    }


def test_audit_one_way_singleton_pattern_is_flagged_as_possible_in_release_mode():
    # 1, 9 hidden: only with the truth is A4 certain; release mode reports it as advisory.
    table, _ = one_way([1, 9, 30, 60], [0, 1])
    possible = [f for f in audit_table(table) if f.check == "A4-possible"]
    assert possible and all(f.advisory for f in possible)
    assert ("cat=a", "cat=b") in {f.cells for f in possible}


def test_audit_one_way_zero_as_secondary_fails_a3():
    # Zeros stay published and are never secondaries: hiding 0 with 4 leaves a derivable sum of 4.
    table, truth = one_way([0, 4, 30, 60], [0, 1])
    assert "A3" in checks(audit_table(table, truth=truth))
    assert "A3" in checks(audit_table(table))


def test_audit_visible_small_count_is_flagged():
    table, _ = one_way([3, 12, 16, 23], [])
    findings = audit_table(table)
    assert [(f.check, f.cells) for f in blocking(findings)] == [("visible-count", ("cat=a",))]


# -- 2-D region × sex -------------------------------------------------------------------------

REGION_SEX = {"region": "ABCD", "sex": "MF"}
REGION_SEX_INNER = {
    ("A", "M"): 18, ("A", "F"): 2, ("B", "M"): 14, ("B", "F"): 19,
    ("C", "M"): 12, ("C", "F"): 10, ("D", "M"): 11, ("D", "F"): 14,
}  # fmt: skip
CHEAPEST = [cell(region=r, sex=s) for r in "AC" for s in "MF"]


def test_audit_region_sex_cheapest_pattern_passes_with_a_f_in_0_to_12():
    table, truth = crossed_table("region_sex", REGION_SEX, REGION_SEX_INNER, CHEAPEST)
    assert audit_both(table, truth) == (set(), set())
    region = FeasibleRegion(table.equations, table.published, sorted(table.hidden, key=label))
    interval = region.interval(cell(region="A", sex="F"))
    assert (interval.lo, interval.hi) == (0, 12)


def test_audit_region_sex_release_mode_a4_possible_is_advisory_only():
    # Were C-F a singleton, A-M would be 9: release mode cannot exclude that and says so, without
    # blocking; verification mode knows C-F is 10.
    table, _ = crossed_table("region_sex", REGION_SEX, REGION_SEX_INNER, CHEAPEST)
    possible = [f for f in audit_table(table) if f.check == "A4-possible"]
    assert ("region=C, sex=F", "region=A, sex=M") in {f.cells for f in possible}
    assert all(f.advisory for f in possible)


def test_audit_region_sex_primary_only_fails_a1():
    table, truth = crossed_table(
        "region_sex", REGION_SEX, REGION_SEX_INNER, [cell(region="A", sex="F")]
    )
    assert "A1" in checks(audit_table(table))
    assert {"A1", "A2"} <= checks(audit_table(table, truth=truth))


# -- 2-D 4 × 4: two hidden cells per row and column is not enough -----------------------------

GRID = {"row": "wxyz", "col": "abcd"}
GRID_VALUES = [[30, 47, 64, 89], [90, 124, 5, 31], [92, 100, 59, 85], [800, 991, 651, 685]]
GRID_HIDDEN = ["wa", "wb", "wc", "xa", "xc", "yb", "yd", "zb", "zd"]


def test_audit_4x4_pattern_with_two_hidden_per_line_is_flagged_because_w_b_is_47():
    inner = {(r, c): GRID_VALUES[i][j] for i, r in enumerate("wxyz") for j, c in enumerate("abcd")}
    hidden = [cell(row=rc[0], col=rc[1]) for rc in GRID_HIDDEN]
    for line in [*"wxyz", *"abcd"]:
        assert sum(line in rc for rc in GRID_HIDDEN) >= 2
    table, truth = crossed_table("grid", GRID, inner, hidden)
    wb = cell(row="w", col="b")
    interval = feasible_intervals(table.equations, table.published, table.hidden)[wb]
    assert (interval.lo, interval.hi) == (47, 47)
    for findings in (audit_table(table), audit_table(table, truth=truth)):
        assert ("A1", ("col=b, row=w",)) in {(f.check, f.cells) for f in blocking(findings)}


# -- 3-D sex × age × region, 2 × 2 × 2 --------------------------------------------------------

CUBE = {"sex": "MF", "age": "YO", "region": "NS"}
CUBE_INNER = {
    ("M", "Y", "N"): 12, ("M", "Y", "S"): 15, ("M", "O", "N"): 20, ("M", "O", "S"): 3,
    ("F", "Y", "N"): 14, ("F", "Y", "S"): 11, ("F", "O", "N"): 16, ("F", "O", "S"): 18,
}  # fmt: skip


def test_audit_3d_all_eight_inner_cells_hidden_passes():
    hidden = [cell(sex=s, age=a, region=r) for s, a, r in CUBE_INNER]
    table, truth = crossed_table("cube", CUBE, CUBE_INNER, hidden)
    assert audit_both(table, truth) == (set(), set())


@pytest.mark.parametrize(
    "hidden",
    [
        pytest.param(
            [cell(sex="M", age="O", region="S"), cell(sex="M", age="O"),
             cell(sex="M", region="S"), cell(age="O", region="S")],
            id="M-O-S and its three 2-D margins",
        ),
        pytest.param(
            [cell(sex=s, age="O", region=r) for s in "MF" for r in "NS"],
            id="the old-age face: a 2-D rectangle is not enough in 3-D",
        ),
    ],
)  # fmt: skip
def test_audit_3d_pattern_short_of_the_whole_cube_fails_a1(hidden):
    table, truth = crossed_table("cube", CUBE, CUBE_INNER, hidden)
    assert "A1" in checks(audit_table(table))
    assert "A1" in checks(audit_table(table, truth=truth))


# -- integer program versus LP relaxation -----------------------------------------------------

# A 3 × 3 × 3 table with every margin and 27 hidden cells (inner cells and margins), found by a
# randomised search over closed patterns and then pruned. Its only non-negative integer completion
# is the true table, yet the LP relaxation has a half-integral vertex: the hidden 2-D margin
# a=1, b=3 (a singleton) is exactly 1 in integers while the LP lets it range over [1, 2].
LP_GAP = {"a": "123", "b": "123", "c": "123"}
LP_GAP_INNER = {
    ("1", "1", "1"): 1, ("1", "1", "2"): 1, ("1", "2", "1"): 2, ("1", "2", "2"): 2,
    ("1", "3", "3"): 1, ("2", "2", "1"): 2, ("2", "2", "2"): 2, ("2", "2", "3"): 1,
    ("2", "3", "1"): 1, ("2", "3", "2"): 1, ("3", "1", "1"): 1, ("3", "2", "3"): 1,
    ("3", "3", "1"): 2, ("3", "3", "2"): 1,
}  # fmt: skip
LP_GAP_HIDDEN = [
    "a=1", "a=1, b=2", "a=1, b=2, c=2", "a=1, b=2, c=3", "a=1, b=3", "a=1, b=3, c=2", "a=1, c=3",
    "a=2", "a=2, b=3", "a=2, b=3, c=2", "a=2, c=2", "a=3", "a=3, b=1", "a=3, b=1, c=1",
    "a=3, b=2, c=2", "a=3, b=2, c=3", "a=3, b=3, c=1", "a=3, b=3, c=3", "a=3, c=2", "b=1",
    "b=1, c=1", "b=2", "b=2, c=2", "b=3, c=1", "b=3, c=3", "c=2", "c=3",
]  # fmt: skip


def _parse(text: str):
    return cell(**dict(part.split("=") for part in text.split(", ")))


def test_audit_lp_relaxation_would_pass_a_3d_singleton_the_integer_program_pins():
    hidden = [_parse(h) for h in LP_GAP_HIDDEN]
    table, truth = crossed_table("lp_gap", LP_GAP, LP_GAP_INNER, hidden)
    target = cell(a="1", b="3")
    assert truth[target] == 1
    ordered = sorted(table.hidden, key=label)
    lp = FeasibleRegion(table.equations, table.published, ordered, integral=False).interval(target)
    ip = FeasibleRegion(table.equations, table.published, ordered).interval(target)
    # LP: even after rounding its bounds inward, the cell could be 1 or 2 (A1 would pass it).
    assert math.ceil(lp.lo - 1e-9) == 1 and math.floor(lp.hi + 1e-9) == 2
    assert (ip.lo, ip.hi) == (1, 1)
    assert ("A1", ("a=1, b=3",)) in {(f.check, f.cells) for f in audit_table(table)}


# -- two releases (A5) ------------------------------------------------------------------------

REGION_TOTALS = {"A": 20, "B": 33, "C": 22, "D": 25}


def one_way_regions() -> AuditTable:
    inner = {(r,): v for r, v in REGION_TOTALS.items()}
    table, _ = crossed_table("regions", {"region": "ABCD"}, inner, [])
    return table


def test_audit_ledger_two_releases_together_give_a_f_2():
    # Release 1 is safe alone: A-F hidden with the A, F and grand totals, so nothing bounds it.
    hidden = [cell(region="A", sex="F"), cell(region="A"), cell(sex="F"), cell()]
    first, truth = crossed_table("region_sex", REGION_SEX, REGION_SEX_INNER, hidden)
    assert checks(audit_table(first)) == set()
    second = one_way_regions()
    assert checks(audit_table(second)) == set()
    for ledger in (audit_ledger(second, [first]), audit_ledger(second, [first], truth=truth)):
        found = {(f.check, f.cells, f.message.split(" ")[0]) for f in blocking(ledger)}
        assert ("A5", ("region=A, sex=F",), "A1") in found
        assert ("A5", ("region=A",), "hidden") in found  # hidden in release 1, published in 2


def test_audit_ledger_refuses_a_margin_published_in_two_versions():
    # The spec's bug: release 1's margins were summed over the visible cells only (A shows 18).
    values = crossed_values(REGION_SEX, REGION_SEX_INNER)
    af = cell(region="A", sex="F")
    shown = {k: v for k, v in values.items() if k != af}
    for margin in (cell(region="A"), cell(sex="F"), cell()):
        shown[margin] -= values[af]
    first = AuditTable("region_sex", crossed_equations(REGION_SEX), shown, frozenset({af}))
    # Alone, read at its labels, release 1 already pins A-F (at 0), and its totals contradict
    # the true values.
    assert "A1" in checks(audit_table(first))
    assert "consistency" in checks(audit_table(first, truth=values))
    ledger = audit_ledger(one_way_regions(), [first])
    two_versions = {f.cells for f in ledger if f.check == "A5" and "two versions" in f.message}
    assert ("region=A",) in two_versions


# -- consistency, percentages -----------------------------------------------------------------


def test_audit_intervals_inconsistent_published_values_raise_and_are_a_finding():
    equation = Equation(total="t", children=("a", "b", "c"))
    with pytest.raises(InconsistentTableError):
        feasible_intervals([equation], {"t": 10, "a": 6, "b": 6}, ["c"])
    with pytest.raises(InconsistentTableError):
        feasible_intervals([equation], {"t": 10, "a": 6, "b": 4, "c": 1}, [])
    table = AuditTable("t", (equation,), {"t": 10, "a": 6, "b": 6}, frozenset({"c"}))
    assert "consistency" in checks(audit_table(table))


def test_audit_intervals_unbounded_cell_has_infinite_upper_bound():
    equation = Equation(total="t", children=("a", "b"))
    intervals = feasible_intervals([equation], {"a": 12}, ["t", "b"])
    assert intervals["b"].lo == 0 and intervals["b"].hi == math.inf
    assert intervals["t"].lo == 12 and not intervals["t"].exact


@pytest.mark.parametrize(
    ("counts", "hidden", "shown", "change_shown", "expected"),
    [
        ({"n1": 12, "N1": 40, "n2": 15, "N2": 50}, [], (True, True), True, set()),
        ({"n1": 12, "N1": 40, "n2": 15, "N2": 50}, [], (True, False), True, {"point-change"}),
        ({"n1": 12, "N1": 40, "n2": 15, "N2": 50}, ["n1"], (True, True), False, {"percentage"}),
        ({"n1": 12, "N1": 40, "n2": 15, "N2": 20}, [], (True, True), True, {"complement"}),
        ({"n1": 12, "N1": 40, "n2": 0, "N2": 50}, [], (True, True), False, {"percentage"}),
    ],
    ids=["both-shown", "pp-change-with-hidden-pct", "pct-of-hidden-count", "complement-5",
         "numerator-0"],
)  # fmt: skip
def test_audit_percentage_rules(counts, hidden, shown, change_shown, expected):
    percentages = (Percentage("p1", "n1", "N1", shown[0]), Percentage("p2", "n2", "N2", shown[1]))
    table = AuditTable(
        "pct", (), {k: v for k, v in counts.items() if k not in hidden}, frozenset(hidden),
        percentages=percentages, changes=(PointChange("pp", "p1", "p2", change_shown),),
    )  # fmt: skip
    assert checks(audit_table(table, policy=Policy())) == expected


# -- independence ----------------------------------------------------------------------------

ENGINE = {"extracts", "pseudonymisation", "linkage", "cohort", "disclosure", "release", "pipeline"}


def test_audit_imports_nothing_from_the_engine():
    root = Path(__file__).resolve().parents[2] / "audit"
    found = set()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    assert not found & ENGINE
    assert found <= {"audit", "__future__", "collections", "dataclasses", "itertools", "math",
                     "re", "numpy", "polars", "pyarrow", "scipy", "datetime", "hashlib", "json", "os",
                     "pathlib", "sys", "time", "fractions", "contextlib", "errno", "tempfile"}  # fmt: skip


def test_audit_public_api_is_exactly_all():
    public = {name for name in vars(audit) if not name.startswith("_")}
    modules = {"cells", "channels", "persons", "checks", "errors", "files", "floor", "identifiers", "inputs",
               "intervals", "tables",
               "annotations", "magnitudes", "output", "release", "required", "singletons", "structure", "verdict"}
    assert public - modules == set(audit.__all__)
    assert list(audit.__all__) == sorted(audit.__all__)
