"""Secondary suppression (disclosure.md, "Secondary suppression"): :func:`protect`.

:func:`protect` chooses the cells to hide around the primaries of a
:class:`~disclosure.tables.Table`:

1. **Elimination** in the style of Statistics Norway's GaussSuppression
   (:mod:`disclosure.elimination`): candidates in order of descending value, so small
   cells become the secondaries.
2. **Exact bounds** with integer programs and the checks A1-A4 (:mod:`disclosure.solver`).
3. A **repair loop** hides the cheapest helping cells (cost = value, so small cells first) until
   the checks pass; a **pruning pass** publishes again, in order of descending value, every
   secondary whose removal keeps the checks passing.

Beyond the cells a table shows, a release knows three other kinds (:mod:`release`):

- *implicit* cells: quantities never shown but implied by what is (the complement N - n of an
  "n of N" pair, the remainder of a top list). They are unknowns; one of 1..T-1 is a primary and
  protected like any other, one of 0 or >= T may be derived freely.
- cells that may not become secondaries (``candidates``): quantities an earlier release
  published, or columns the release rule keeps visible.
- cells hidden in advance (``hidden``): quantities an earlier release hid stay hidden, and A1
  holds for them too.

No safe pattern (the repair loop runs out of cells, a bound is not proven in time) means nothing
is released: the :class:`Pattern` is ``releasable=False``, every cell hidden, with a reason (fail
closed). Messages name cells by label, never by value.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from disclosure.elimination import Span, gauss, nullspace
from disclosure.policy import Policy
from disclosure.primary import Flags
from disclosure.solver import Failure, Solver, Unsafe, Violation
from disclosure.tables import Table

# The solver under its historical name (tests replace its methods to force a failure).
_Solver = Solver

__all__ = ["Pattern", "bounds", "check", "protect"]


@dataclass(frozen=True, eq=False)
class Pattern:
    """The outcome of :func:`protect`.

    Attributes:
        table: the protected table.
        hidden: True for every hidden cell.
        reasons: per cell, "" when published, else ``"primary:..."``, ``"secondary"``,
            ``"policy:zero"`` (zeros hidden by policy) or ``"unreleasable"``.
        lower, upper: the exact integer interval of every hidden cell (the value itself for a
            published cell; ``inf`` when unbounded; NaN when not releasable).
        releasable: False when no safe pattern was found: nothing of the table may be released.
        reason: why the table is not releasable ("" otherwise).
        milp_count: number of integer programs solved (``scipy.optimize.milp``).
        lp_count: number of linear programs solved (accepted only when their optimum is integral).
    """

    table: Table
    hidden: np.ndarray
    reasons: tuple[str, ...]
    lower: np.ndarray
    upper: np.ndarray
    releasable: bool
    reason: str = ""
    milp_count: int = 0
    lp_count: int = 0

    def counts_by_reason(self) -> dict[str, int]:
        """Number of hidden cells per reason."""
        out: dict[str, int] = {}
        for r in self.reasons:
            if r:
                out[r] = out.get(r, 0) + 1
        return dict(sorted(out.items()))



def _repair(solver: Solver, hidden: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """Hide the cheapest helping cells until A1-A4 pass; raise Unsafe when none is left.

    For A3 the helper is the smallest published child that lifts the hidden sum to T (else the
    total). For A1, A2 and A4 one integer program finds the cheapest set of published cells
    (cost = value, so small cells first) along which the failing cell can make its move; in one
    dimension that set is the single smallest helping cell.
    """
    hidden = hidden.copy()
    while found := solver.failures(hidden):
        f = found[0]
        if f.rule == "A3" and f.implied:
            # A determined implied total over a small hidden sum: let the total move (as for A1).
            ev = solver.evaluate(hidden)
            helping = solver.helper(ev, Failure("A1", f.j), candidate)
            if helping.size == 0:
                helping = solver.helper(ev, Failure("A1", f.j, -1), candidate)
        elif f.rule == "A3":
            e = next(e for e in solver.a3(hidden) if solver.totals[e] == f.j)
            near = solver.a[[e]].indices
            near = near[candidate[near] & ~hidden[near]]
            loose = hidden & ~solver.determined(hidden)
            row = solver.children[[e]]
            counted = loose if int((row @ loose.astype(np.int64))[0]) else hidden  # as Solver.a3 sums
            gap = solver.policy.threshold - int((row @ np.where(counted, solver.v, 0))[0])
            enough = near[(solver.v[near] >= gap) | (near == f.j)]
            helping = enough[np.lexsort((enough, solver.cost[enough]))][:1]
        else:
            ev = solver.evaluate(hidden)
            helping = solver.helper(ev, f, candidate)
            if helping.size == 0 and (f.rule == "A4" or not solver.primary[f.j]):  # any move by 1 will do
                helping = solver.helper(ev, replace(f, sign=-f.sign), candidate)
        if helping.size == 0:
            raise Unsafe(_evidence(solver, f, hidden, candidate))
        hidden[helping] = True
    return hidden


def _evidence(solver: Solver, f: Failure, hidden: np.ndarray, candidate: np.ndarray) -> str:
    """Why no cell helps: the rule, the cell (and the singleton assumed known), and whether it is
    proven that no pattern exists (labels only, never values).

    For A1, A2 and A4 the proof is the linear relaxation over every hidden cell and every cell
    that may still be hidden: with no move there, no integer solution moves the cell, whatever
    else is hidden (the cells that may not be hidden stay: published zeros, top-list rows, cells
    of earlier releases). Otherwise the search ran out of time or of cheap helpers.
    """
    v = solver.violation(f)
    known = f" with '{v.known}' known" if v.known else ""
    msg = f"no cell left to hide that satisfies {v.rule} at '{v.cell}'{known}"
    if f.rule == "A3":
        return f"{msg}: no hidden child and no published child that may be hidden lifts the hidden sum to T"
    ev = solver.evaluate(hidden)
    fixed = ((f.singleton, 1),) if f.singleton >= 0 else ()
    signs = (f.sign,) if f.rule == "A2" else (1, -1)
    movable = hidden | candidate
    if all(solver._move(ev, f.j, fixed, sign=sign, amount=f.amount, movable=movable, mode="relaxed") is None
           for sign in signs):
        what = "by its protection margin" if f.rule == "A2" else "at all"
        return (f"{msg}: proven, no solution moves it {what} even if all {int(movable.sum())} cells that may be "
                "hidden are hidden (no safe pattern exists)")
    return f"{msg}: no helping cell found within the time limit (a pattern may exist)"


def _prune(solver: Solver, basis: np.ndarray, hidden: np.ndarray, secondary: np.ndarray) -> np.ndarray:
    """Publish again every secondary not needed, largest first."""
    hidden = hidden.copy()
    span = Span(basis)
    for c in np.flatnonzero(~hidden):
        span.publish(c, span.pivot(c))
    for c in np.flatnonzero(secondary)[np.argsort(-solver.cost[secondary], kind="stable")]:
        piv = span.pivot(c)
        if piv is None or span.determines(piv, np.flatnonzero(hidden & (solver.t.cells != c))):
            continue  # publishing c would determine a hidden cell exactly (A1)
        comp = solver.evaluate(hidden).comp
        trial = hidden.copy()
        trial[c] = False
        near = np.flatnonzero(abs(solver.a[np.flatnonzero(abs(solver.a_csc[:, [c]]).sum(axis=1))]).sum(axis=0))
        around = np.flatnonzero(trial & (comp == comp[c]))
        around = around[np.argsort(~np.isin(around, near), kind="stable")]  # likely failures first
        if not solver.failures(trial, cells=around):
            hidden = trial
            span.publish(c, piv)
    return hidden


def _mask(value: npt.ArrayLike | None, n: int, name: str, default: bool) -> np.ndarray:
    if value is None:
        return np.full(n, default)
    mask = np.asarray(value, dtype=bool)
    if mask.shape != (n,):
        msg = f"protect: expected {name} as a mask of {n} cells, got {mask.size}"
        raise ValueError(msg)
    return mask


def _primary(table: Table, primary_mask: npt.ArrayLike | Flags, reasons: Sequence[str] | None,
             policy: Policy, exempt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    v, n = table.values, table.values.size
    if isinstance(primary_mask, Flags):
        reasons = list(primary_mask.reasons) if reasons is None else reasons
        primary_mask = primary_mask.hidden
    primary = np.asarray(primary_mask, dtype=bool)
    if primary.shape != v.shape:
        msg = f"protect: expected a primary mask of {n} cells, got {primary.size}"
        raise ValueError(msg)
    if np.any(primary & (v == 0)):
        msg = f"protect: {int(np.sum(primary & (v == 0)))} zero cells are marked primary; zeros never are"
        raise ValueError(msg)
    small = (v >= 1) & (v < policy.threshold) & ~exempt
    why = np.array([(reasons[i] if reasons is not None and reasons[i] else "primary") for i in range(n)], dtype=object)
    why[small & ~primary] = "primary:count"
    return primary | small, why


def protect(
    table: Table,
    primary_mask: npt.ArrayLike | Flags,
    policy: Policy,
    *,
    reasons: Sequence[str] | None = None,
    implicit: npt.ArrayLike | None = None,
    candidates: npt.ArrayLike | None = None,
    hidden: npt.ArrayLike | None = None,
    weights: npt.ArrayLike | None = None,
    exempt: npt.ArrayLike | None = None,
    milp_time_limit: float = 60.0,
    intervals: bool = True,
) -> Pattern:
    """Choose secondary suppressions so that the table passes A1-A4 (disclosure.md).

    Counts of 1..T-1 are primary whatever the mask says (fail safe). Zeros are published and
    never secondaries, or hidden with reason ``"policy:zero"`` when the policy does not publish
    zeros (then A1 protects them too).

    Args:
        table: the table (or linked tables) to protect.
        primary_mask: primary cells, a boolean array or :class:`~disclosure.primary.Flags`.
        policy: the disclosure policy.
        reasons: the primary reason per cell (default from the Flags, else ``"primary"``).
        implicit: cells never published (complements, remainders): always hidden; protected
            when primary, free otherwise (reason ``"implicit"``).
        candidates: cells that may become secondaries (default: every non-zero cell that is
            neither primary nor implicit); the others are published unless hidden anyway.
        hidden: cells hidden in advance (reason ``"hidden"`` unless primary); A1 holds for them.
        weights: how much each cell matters (default 1): hiding a cell costs its value times its
            weight, so cells of higher weight are published first and become secondaries last.
        exempt: implicit cells that count no persons (a slack such as contacts - persons of a
            row): never primary whatever their value, free unknowns.
        milp_time_limit: seconds per integer program; an unproven bound fails closed.
        intervals: compute the exact interval of every hidden cell (``lower``, ``upper``); False
            leaves them NaN. The checks A1-A4 are complete without them (each requirement is met
            by an integer solution or the pattern fails): a release, which publishes no
            intervals, skips their integer programs.

    Returns:
        The :class:`Pattern`; ``releasable=False`` (everything hidden) when no safe pattern exists.
    """
    v, n = table.values, table.values.size
    implicit_ = _mask(implicit, n, "implicit", False)
    exempt_ = _mask(exempt, n, "exempt", False) & implicit_
    primary, why = _primary(table, primary_mask, reasons, policy, exempt_)
    before = _mask(hidden, n, "hidden", False) & ~implicit_
    zeros_hidden = (v == 0) & (not policy.publish_zeros)
    candidate = ~primary & (v > 0) & ~implicit_ & ~before & _mask(candidates, n, "candidates", True)
    free = implicit_ & ~primary & ~zeros_hidden
    protected = primary | zeros_hidden | before
    # Earlier-hidden cells and hidden zeros are not primaries: A1 holds for them, not A2.
    cost = v.astype(float) * (1.0 if weights is None else np.asarray(weights, dtype=float))
    solver = Solver(table, primary, policy, milp_time_limit, free=free, cost=cost, exempt=exempt_)
    try:
        basis = nullspace(table)
        chosen = gauss(basis, cost, protected, candidate, unknown=implicit_ | before)
        chosen = _repair(solver, chosen, candidate)
        chosen = _prune(solver, basis, chosen, chosen & candidate)
        if late := solver.failures(chosen):
            v0 = solver.violation(late[0])
            msg = f"{v0.rule} fails at '{v0.cell}' after pruning"
            raise Unsafe(msg)
        if intervals:
            lo, hi, proven = solver.intervals(chosen)
        else:
            lo, hi, proven = np.where(chosen, np.nan, v), np.where(chosen, np.nan, v), True
        if not proven:
            msg = "a bound was not proven within the time limit"
            raise Unsafe(msg)
    except Unsafe as exc:
        out = np.where(primary, why, "unreleasable")
        nan = np.full(n, np.nan)
        return Pattern(table, np.ones(n, dtype=bool), tuple(out.tolist()), nan, nan, False, str(exc),
                       solver.milps, solver.lps)
    out = np.where(
        primary, why,
        np.where(zeros_hidden & chosen, "policy:zero",
                 np.where(implicit_, "implicit",
                          np.where(before, "hidden", np.where(chosen, "secondary", "")))))
    return Pattern(table, chosen, tuple(out.tolist()), lo, hi, True, "", solver.milps, solver.lps)


def bounds(table: Table, hidden: npt.ArrayLike, *, known: Iterable[str] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Exact integer intervals [lower, upper] of the hidden cells (published cells: their value).

    Args:
        table: the table.
        hidden: boolean mask of hidden cells.
        known: labels of hidden cells an intruder knows (a singleton knows itself): they are
            treated as published.

    Raises:
        ValueError: when a bound cannot be proven (no integer solution, or a time limit).
    """
    hidden = np.asarray(hidden, dtype=bool).copy()
    for label in known:
        hidden[table.index(label)] = False
    solver = Solver(table, np.zeros(hidden.size, dtype=bool), Policy(), 60.0)
    try:
        lo, hi, proven = solver.intervals(hidden)
    except Unsafe as exc:
        raise ValueError(str(exc)) from None
    if not proven:
        msg = "bounds: a bound was not proven within the time limit"
        raise ValueError(msg)
    return lo, hi


def check(table: Table, hidden: npt.ArrayLike, primary: npt.ArrayLike, policy: Policy, *,
          implicit: npt.ArrayLike | None = None) -> list[Violation]:
    """Every violation of A1-A4 by a pattern (the engine's own check; the auditor is separate).

    Also reports, as rule ``"count"``, any published cell with a value in 1..T-1. Implicit
    cells (never published) are hidden; those that are not primary may be determined.
    """
    n = table.values.size
    implicit_ = _mask(implicit, n, "implicit", False)
    hidden, primary = np.asarray(hidden, dtype=bool) | implicit_, np.asarray(primary, dtype=bool)
    v = table.values
    found = [Violation("count", table.labels[j], "published count of 1..T-1")
             for j in np.flatnonzero(~hidden & (v >= 1) & (v < policy.threshold))]
    solver = Solver(table, primary, policy, 60.0, free=implicit_)
    return found + [solver.violation(f) for f in solver.failures(hidden, first=False)]
