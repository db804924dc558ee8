"""A singleton's own quantity under two names is not *another* primary (issue 11, item 7).

In a release stratified by age band and sex, the age rule ties cells of two conditions: the
frail elderly of 80+ hold everyone of 80+ with neck/back care, and their difference is an implied
complement (``in:frail_elderly:care_use``). With the men's cells published as zeros, the 80+
total is the women's cell and its complement is the women's complement: one person under two
names. Check A4 fixed the person in one name at 1, found the other name exact and asked for a
helping cell; none can make a quantity differ from itself, so the search gave up and the table was
withheld (seed 7 of the tiny preset: 5 of 7 tables). The auditor's rule is the spec's: a primary
that moves with the singleton (their difference is the same in every solution) is the singleton's
own cell. The engine now finds a pattern here, and the auditor's own integer programs pass it.

Where no pattern exists, the reason a table is withheld says so and shows the proof: no solution
moves the cell even with every cell that may be hidden hidden (the linear relaxation has none).
"""

from __future__ import annotations

import numpy as np

from audit import Equation, FeasibleRegion, cell
from audit.cells import label
from audit.checks import Policy as AuditPolicy
from audit.checks import check_a1, check_a2, check_a3, check_a4
from disclosure import Policy, Table, check, count_rule, protect, table_1d, table_2d

POLICY = Policy()  # T = 10, margin 30 %, zeros published


def _frail_and_neck_by_band_and_sex() -> tuple[Table, np.ndarray]:
    """Frail elderly (f) and neck/back (n) care by band x sex with all margins, and per cell the
    implied complement c = f - n (the age rule: every n of 80+ is an f). No man of 80+ has care."""
    parts = {"f": table_2d([[2, 0], [30, 25]], ["80+", "65-79"], ["F", "M"]),
             "n": table_2d([[1, 0], [12, 14]], ["80+", "65-79"], ["F", "M"])}
    values: list[int] = []
    labels: list[str] = []
    inner: list[bool] = []
    equations: list[tuple[int, tuple[int, ...]]] = []
    for name, part in parts.items():
        base = len(values)
        values += part.values.tolist()
        labels += [f"{name}:{label}" for label in part.labels]
        inner += part.inner.tolist()
        equations += [(base + total, tuple(base + c for c in children)) for total, children in part.equations]
    size = len(values)
    for i in range(size // 2):  # f = n + c, per cell
        equations.append((i, (size // 2 + i, len(values))))
        values.append(values[i] - values[size // 2 + i])
        labels.append(f"c:{labels[i][2:]}")
        inner.append(True)
    implicit = np.arange(len(values)) >= size
    return Table(np.array(values), tuple(labels), np.array(inner), tuple(equations)), implicit


def test_a4_a_singleton_under_two_names_is_one_quantity_and_the_tables_are_released() -> None:
    table, implicit = _frail_and_neck_by_band_and_sex()
    v = table.values
    primary = (v >= 1) & (v < POLICY.threshold)
    pattern = protect(table, primary, POLICY, implicit=implicit)
    assert pattern.releasable, pattern.reason
    assert not pattern.hidden[table.index("f:65-79,M")]  # a large cell stays published
    assert not check(table, pattern.hidden, primary, POLICY, implicit=implicit)

    # The auditor's integer programs, on what the pattern publishes (implied cells are unknowns).
    key = {i: cell(c=label) for i, label in enumerate(table.labels)}
    equations = [Equation(key[t], tuple(key[c] for c in children)) for t, children in table.equations]
    hidden = pattern.hidden | implicit
    region = FeasibleRegion(equations, {key[i]: int(v[i]) for i in np.flatnonzero(~hidden)},
                            [key[i] for i in np.flatnonzero(hidden)])
    primaries = {key[i]: int(v[i]) for i in np.flatnonzero(hidden & primary)}
    audit_policy = AuditPolicy(threshold=POLICY.threshold, margin_percent=round(POLICY.margin * 100))
    # A1 over the shown cells and the primaries (an implied cell of 0 or >= T may be exact).
    protected = {key[i] for i in np.flatnonzero(~implicit | primary)}
    findings = ([f for f in check_a1("t", region) if f.cells[0] in {label(k) for k in protected}]
                + check_a2("t", region, primaries, policy=audit_policy)
                + check_a3("t", region, equations, policy=audit_policy)
                + check_a4("t", region, primaries))
    assert not findings, findings
    # The pairs A4 let through are one quantity: the men's cells are published zeros.
    assert pattern.hidden[table.index("n:80+,F")] and pattern.hidden[table.index("n:80+,Total")]


def test_no_safe_pattern_names_the_rule_the_cell_and_the_proof() -> None:
    # 1, 9, 30, 60 where only the two primaries may be hidden (the others were published
    # earlier): 1 + 9 = 10 is known, so the 9 lies in [0, 10], short of its margin (A2).
    table = table_1d([1, 9, 30, 60], list("abcd"))
    may_hide = np.array([True, True, False, False, False])
    pattern = protect(table, count_rule(table.values, POLICY), POLICY, candidates=may_hide)
    assert not pattern.releasable
    assert pattern.reason.startswith("no cell left to hide that satisfies A2 at 'b'")
    assert "proven" in pattern.reason and "no safe pattern exists" in pattern.reason
    assert "9" not in pattern.reason.replace("'b'", "")  # labels, never values
