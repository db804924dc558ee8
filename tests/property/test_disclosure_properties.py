"""Property tests of disclosure control (disclosure.md, "Secondary suppression", A1-A4).

For random small tables with all margins, the pattern :func:`disclosure.protect` returns
is re-checked here by code that shares nothing with the engine's solver: intervals by plain
enumeration of every integer solution (tiny tables), and by one integer program per bound over
*all* cells (``scipy.optimize.milp``, published cells pinned by their bounds; no components, no
witnesses, no LP shortcut). The table builders are checked against numpy sums first.
"""

from __future__ import annotations

import itertools
from fractions import Fraction
from math import ceil

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import Bounds, LinearConstraint, milp

from disclosure import Policy, Table, count_rule, protect, table_1d, table_2d, table_3d
from extracts.errors import ConfigError

_SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BIG = 10**6  # "unbounded" for the independent integer programs
BRUTE_LIMIT = 400_000  # enumerate only when the grid of hidden inner values is this small

counts = st.one_of(st.integers(0, 9), st.integers(10, 60), st.just(0))
thresholds = st.sampled_from([3, 5, 10])


@st.composite
def one_way(draw: st.DrawFn) -> np.ndarray:
    return np.array(draw(st.lists(counts, min_size=1, max_size=5)))


@st.composite
def three_way(draw: st.DrawFn) -> np.ndarray:
    shape = (2, 2, draw(st.integers(2, 3)))
    return np.array(draw(st.lists(counts, min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))).reshape(shape)


@st.composite
def two_way(draw: st.DrawFn) -> np.ndarray:
    rows, cols = draw(st.integers(2, 3)), draw(st.integers(2, 4))
    return np.array(draw(st.lists(st.lists(counts, min_size=cols, max_size=cols), min_size=rows, max_size=rows)))


# -- an independent reference ------------------------------------------------------------------


def _protection(v: int, policy: Policy) -> int:
    return max(1, ceil(Fraction(str(policy.margin)) * v))


def _milp_intervals(table: Table, hidden: np.ndarray, known: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Min and max of each hidden cell over all non-negative integer solutions (one MILP each).

    A maximum that grows with the box (solved in two boxes) is unbounded.
    """
    n = table.values.size
    a = np.zeros((len(table.equations), n))
    for e, (total, children) in enumerate(table.equations):
        a[e, total] = 1
        a[e, list(children)] = -1
    lo, hi = table.values.astype(float), table.values.astype(float)
    for j in np.flatnonzero(hidden):
        found = []
        for sign, box in ((1, BIG), (-1, BIG), (-1, 2 * BIG)):
            lb = np.where(hidden, 0, table.values).astype(float)
            ub = np.where(hidden, box, table.values).astype(float)
            if known is not None:
                lb[known] = ub[known] = table.values[known]
            c = np.zeros(n)
            c[j] = sign
            res = milp(c, integrality=np.ones(n), bounds=Bounds(lb, ub), constraints=LinearConstraint(a, 0, 0))
            assert res.status == 0
            found.append(round(res.x[j]))
        lo[j] = found[0]
        hi[j] = np.inf if found[2] != found[1] else found[1]
    return lo, hi


def _brute_intervals(table: Table, hidden: np.ndarray, known: int | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """The same by enumerating every assignment of the hidden inner cells (margins follow)."""
    hidden = hidden.copy()
    if known is not None:
        hidden[known] = False  # the intruder knows it: it acts as published
    free = [j for j in np.flatnonzero(table.inner) if hidden[j]]
    caps = []
    for j in free:
        bound = [table.values[t] for t, ch in table.equations if j in ch and not hidden[t]]
        caps.append(min(bound) if bound else 3 * int(table.values.sum()) + 3)
    if np.prod([c + 1 for c in caps], dtype=float) > BRUTE_LIMIT:
        return None
    grid = np.array(list(itertools.product(*[range(c + 1) for c in caps])), dtype=np.int64)
    x = np.tile(table.values, (grid.shape[0], 1))
    if free:
        x[:, free] = grid
    for _ in range(3):  # hidden margins are sums of cells one level finer (depth <= 2 here)
        for total, children in table.equations:
            if hidden[total]:
                x[:, total] = x[:, list(children)].sum(axis=1)
    ok = np.all([x[:, t] == x[:, list(ch)].sum(axis=1) for t, ch in table.equations], axis=0)
    ok &= (x[:, ~hidden] == table.values[~hidden]).all(axis=1)
    sols = x[ok]
    assert sols.shape[0] >= 1  # the true table is a solution
    return sols.min(axis=0).astype(float), sols.max(axis=0).astype(float)


def _assert_safe(table: Table, hidden: np.ndarray, primary: np.ndarray, policy: Policy, intervals) -> None:
    v, t = table.values, policy.threshold
    lo, hi = intervals(table, hidden)
    if lo is None:
        return
    assert not np.any(~hidden & (v >= 1) & (v < t)), "a published count is 1..T-1"
    assert primary[hidden | primary].sum() == primary.sum() and np.all(hidden[primary])
    for j in np.flatnonzero(hidden):
        assert hi[j] - lo[j] >= 1, f"A1 at {table.labels[j]}"
    for j in np.flatnonzero(primary):
        p = _protection(int(v[j]), policy)
        assert lo[j] <= max(0, v[j] - p) and hi[j] >= v[j] + p, f"A2 at {table.labels[j]}"
    for total, children in table.equations:
        if not hidden[total]:
            s = sum(int(v[c]) for c in children if hidden[c])
            assert s == 0 or s >= t, f"A3 at {table.labels[total]}"
    for s in np.flatnonzero(primary & (v == 1)):
        lo_s, hi_s = intervals(table, hidden, known=s)
        if lo_s is None:
            continue
        for j in np.flatnonzero(primary):
            # A primary that moves with the singleton (x_j - x_s the same in every solution: a
            # total over it and published zeros) is the singleton's own quantity (the auditor's
            # rule, audit.checks.check_a4): knowing it tells no one else's count.
            assert j == s or hi_s[j] - lo_s[j] >= 1 or _difference_fixed(table, hidden, j, s), f"A4 at {table.labels[j]}"


def _difference_fixed(table: Table, hidden: np.ndarray, j: int, s: int) -> bool:
    """Is x_j - x_s the same in every non-negative integer solution (one MILP per direction)?"""
    n = table.values.size
    a = np.zeros((len(table.equations), n))
    for e, (total, children) in enumerate(table.equations):
        a[e, total] = 1
        a[e, list(children)] = -1
    lb = np.where(hidden, 0, table.values).astype(float)
    ub = np.where(hidden, BIG, table.values).astype(float)
    c = np.zeros(n)
    c[j], c[s] = 1, -1
    found = []
    for sign in (1, -1):
        res = milp(sign * c, integrality=np.ones(n), bounds=Bounds(lb, ub), constraints=LinearConstraint(a, 0, 0))
        assert res.status == 0
        found.append(round(res.x[j] - res.x[s]))
    return found[0] == found[1]


def _protect_and_check(table: Table, threshold: int, *, brute: bool = True) -> None:
    policy = Policy(threshold=threshold)
    primary = count_rule(table.values, policy).hidden
    pattern = protect(table, primary, policy)
    if not pattern.releasable:  # fail closed: nothing is shown (only A4 can be unsatisfiable here)
        assert "A4" in pattern.reason and pattern.hidden.all()
        return
    secondary = np.array([r == "secondary" for r in pattern.reasons])
    assert not np.any(secondary & (table.values == 0)), "a zero became a secondary"
    assert np.array_equal(pattern.hidden, primary | secondary)
    _assert_safe(table, pattern.hidden, primary, policy, _milp_intervals)
    lo, hi = _milp_intervals(table, pattern.hidden)
    assert np.array_equal(lo, pattern.lower) and np.array_equal(hi, pattern.upper)
    if brute:
        _assert_safe(table, pattern.hidden, primary, policy, lambda *a, **k: _brute_intervals(*a, **k) or (None, None))


# -- properties ------------------------------------------------------------------------------


@_SETTINGS
@given(values=one_way(), threshold=thresholds)
def test_one_way_protected_pattern_passes_a1_to_a4(values: np.ndarray, threshold: int) -> None:
    _protect_and_check(table_1d(values), threshold)


@_SETTINGS
@given(matrix=two_way(), threshold=thresholds)
def test_two_way_protected_pattern_passes_a1_to_a4(matrix: np.ndarray, threshold: int) -> None:
    _protect_and_check(table_2d(matrix), threshold)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cube=three_way(), threshold=thresholds)
def test_three_way_protected_pattern_passes_a1_to_a4(cube: np.ndarray, threshold: int) -> None:
    # Three dimensions are where an LP audit can pass a table the integers disclose.
    _protect_and_check(table_3d(cube), threshold, brute=False)


@settings(max_examples=15, deadline=None)
@given(matrix=two_way())
def test_builder_margins_are_numpy_sums(matrix: np.ndarray) -> None:
    table = table_2d(matrix)
    r, c = matrix.shape
    ext = table.values.reshape(r + 1, c + 1)
    assert np.array_equal(ext[:r, :c], matrix)
    assert np.array_equal(ext[:r, c], matrix.sum(axis=1)) and np.array_equal(ext[r, :c], matrix.sum(axis=0))
    assert ext[r, c] == matrix.sum() and table.inner.sum() == r * c


# -- Policy.stricter ---------------------------------------------------------------------------

STEWARD = Policy(threshold=10, margin=0.3, publish_zeros=False, rounding=5, p_percent=10.0,
                 dominance_n=2, dominance_k=90.0)

overrides = st.fixed_dictionaries({}, optional={
    "threshold": st.integers(1, 30),
    "margin": st.sampled_from([0.0, 0.1, 0.3, 0.5, 1.0]),
    "publish_zeros": st.booleans(),
    "rounding": st.one_of(st.none(), st.integers(1, 20)),
    "p_percent": st.sampled_from([1.0, 10.0, 25.0]),
    "dominance_n": st.integers(1, 5),
    "dominance_k": st.sampled_from([50.0, 90.0, 99.0]),
})


def _looser(key: str, value: object) -> bool:
    steward = getattr(STEWARD, key)
    return {
        "threshold": lambda: value < steward,
        "margin": lambda: value < steward,
        "publish_zeros": lambda: value and not steward,
        "rounding": lambda: value is None or value < steward,
        "p_percent": lambda: value < steward,
        "dominance_n": lambda: value < steward,
        "dominance_k": lambda: value > steward,
    }[key]()


@settings(max_examples=200, deadline=None)
@given(overrides)
def test_stricter_accepts_tighter_and_names_every_looser_key(over: dict) -> None:
    looser = sorted(k for k, v in over.items() if _looser(k, v))
    if not looser:
        policy = STEWARD.stricter(over)
        assert all(getattr(policy, k) == v for k, v in over.items())
        return
    with pytest.raises(ConfigError) as info:
        STEWARD.stricter(over)
    message = str(info.value)
    for key in looser:
        assert f"{key}:" in message
    for key in set(over) - set(looser):
        assert f"{key}:" not in message


def test_stricter_refuses_unknown_and_mistyped_keys() -> None:
    with pytest.raises(ConfigError, match="threshhold"):
        Policy().stricter({"threshhold": 20})
    with pytest.raises(ConfigError, match="threshold: expected an integer"):
        Policy().stricter({"threshold": "20"})


def test_protection_is_exact_at_the_boundary() -> None:
    assert [Policy().protection(v) for v in (1, 3, 4, 10, 20, 30)] == [1, 1, 2, 3, 6, 9]
