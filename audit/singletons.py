"""A4 (disclosure.md, "The auditor"): a person alone in a hidden cell fixes no other primary.

A primary cell whose true value is 1 is known to the person it counts; with that cell fixed at 1,
no other primary of its component may become exactly determined. The plain way (a region per
singleton, every primary asked in it: :func:`_one_by_one`) cost about 28 000 integer programs
(564 CPU s) on the tiny seed study stratified by age band and sex. Here solutions are shared
between singletons, and the answer is the same (tests/unit/test_audit_singletons.py):

- The true values ``t`` (the steward's record) solve every region "singleton ``s`` at 1". Any
  integer solution ``y`` of the component's equations with ``y_s = 1`` shows that every primary
  where ``y`` differs from ``t`` is not determined once ``s`` is known. All solutions found are
  kept (a pool) and asked first, for every singleton.
- Solutions with *every* singleton at 1 lie in each singleton's region: a primary that moves
  there moves for each singleton (found by pushing the sum of the primaries that every solution
  so far leaves at ``t`` down, then up, and asking a primary left alone).
- Solutions with a random half of the singletons at 1, pushing the others, show singletons
  moving while many others stay at 1.
- Per singleton, what the pool leaves open is pushed the same way in its own region, and a
  primary still left gets two feasibility programs (no objective): a solution with it below
  ``t``, one with it above (each ends with a solution, kept, or a proof that none exists; faster
  than its minimum and maximum). A primary exactly determined there is a finding unless it moves
  with the singleton (:meth:`~audit.intervals.FeasibleRegion.difference_fixed`).

Every solution is an exact ``scipy.optimize.milp`` optimum over the non-negative integers of the
component's own equations (only made narrower by bounds, so still a solution); a program that
does not end optimal (or, for a feasibility program, proven infeasible) fails the audit closed (:class:`~audit.errors.AuditError`). Where the true
values do not solve the equations (a consistency finding already) the plain way is taken.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

from audit.cells import CellKey, label
from audit.errors import AuditError
from audit.intervals import FeasibleRegion

__all__ = ["singleton_pairs"]

_TIME_LIMIT_S = 30.0
# Rounds of random halves of the singletons held at 1 (each two programs; see _shared).
_HALVES = 8
_OPTIMAL, _INFEASIBLE = 0, 2


class _Component:
    """One component of the region, its true values and the solutions found (the pool)."""

    def __init__(self, region: FeasibleRegion, cell: CellKey, truth: Mapping[CellKey, int]) -> None:
        self.keys, self.constraint, known = region.system(cell)
        self.index = {key: i for i, key in enumerate(self.keys)}
        self.truth = np.array([truth[key] for key in self.keys], dtype=float)
        self._pool = np.empty((64, self.truth.size))
        self._rows = 0
        self.keep(self.truth)
        self.known = known
        self.programs = 0

    @property
    def pool(self) -> np.ndarray:
        """The known solutions, one a row (the true values first)."""
        return self._pool[: self._rows]

    def keep(self, solution: np.ndarray) -> None:
        if self._rows == self._pool.shape[0]:
            self._pool = np.concatenate([self._pool, np.empty_like(self._pool)])
        self._pool[self._rows] = solution
        self._rows += 1

    def consistent(self) -> bool:
        """True when the true values solve the component's equations (else no move is defined)."""
        if self.constraint is None or (self.truth < 0).any():
            return False
        residual = self.constraint.A @ self.truth - self.constraint.lb
        return bool(np.abs(residual).max(initial=0.0) < 1e-9)

    def _milp(self, objective: np.ndarray, bounds: Bounds, constraints: list[LinearConstraint]) -> np.ndarray:
        self.programs += 1
        result = milp(objective, integrality=np.ones(objective.size), bounds=bounds, constraints=constraints,
                      options={"mip_rel_gap": 0.0, "time_limit": _TIME_LIMIT_S})
        if result.status != _OPTIMAL or result.x is None:
            msg = f"could not bound a primary with a singleton fixed (milp status {result.status}); failing closed"
            raise AuditError(msg)
        return np.round(result.x)

    def solve(self, objective: np.ndarray, fixed: np.ndarray, cap: np.ndarray | None = None) -> np.ndarray:
        """An integer solution minimising ``objective``, the ``fixed`` cells at their true values and
        the ``cap`` cells at most one above theirs; kept in the pool."""
        lb = np.where(fixed, self.truth, 0.0)
        ub = np.where(fixed, self.truth, np.inf)
        if cap is not None:
            ub = np.where(cap & ~fixed, self.truth + 1, ub)
        solution = self._milp(objective, Bounds(lb, ub), [self.constraint])
        self.keep(solution)
        return solution

    def same(self, cells: np.ndarray, fixed: np.ndarray) -> np.ndarray:
        """The ``cells`` at their true values in every known solution with the ``fixed`` cells at theirs."""
        pool = self.pool
        agree = (pool[:, fixed] == self.truth[fixed]).all(axis=1)
        return cells & (pool[agree] == self.truth).all(axis=0)

    def determined(self, cells: np.ndarray, fixed: np.ndarray) -> np.ndarray:
        """The ``cells`` that no solution with the ``fixed`` cells at their true values moves.

        Rounds push the sum of the cells that all solutions so far leave at their true values
        down, then up (capped), while a round separates any; a cell left is decided alone
        (:meth:`moves`).
        """
        left = self.same(cells, fixed)
        while left.any():
            before = int(left.sum())
            self.solve(np.where(left, 1.0, 0.0), fixed)
            self.solve(np.where(left, -1.0, 0.0), fixed, cap=left)
            left = self.same(cells, fixed)
            if int(left.sum()) == before:
                break
        for cell in np.flatnonzero(left):
            left[cell] = not self.moves(int(cell), fixed)
        return left

    def moves(self, cell: int, fixed: np.ndarray) -> bool:
        """Whether ``cell`` takes another value than its true one in some solution with ``fixed`` true.

        Known solutions answer first; otherwise a program each for a value below and above the
        true one.
        """
        pool = self.pool
        agree = (pool[:, fixed] == self.truth[fixed]).all(axis=1)
        if (pool[agree, cell] != self.truth[cell]).any():
            return True
        # Two feasibility programs (no objective): is there a solution with the cell below its
        # true value, or above it? Each ends with a solution (kept) or a proof that there is none,
        # and finds its answer several times faster than a minimum or maximum would.
        lb = np.where(fixed, self.truth, 0.0)
        ub = np.where(fixed, self.truth, np.inf)
        for low, high in ((0.0, self.truth[cell] - 1), (self.truth[cell] + 1, np.inf)):
            if high < low:
                continue
            lb_, ub_ = lb.copy(), ub.copy()
            lb_[cell], ub_[cell] = low, high
            self.programs += 1
            result = milp(np.zeros(self.truth.size), integrality=np.ones(self.truth.size), bounds=Bounds(lb_, ub_),
                          constraints=[self.constraint], options={"time_limit": _TIME_LIMIT_S})
            if result.status == _OPTIMAL and result.x is not None:
                self.keep(np.round(result.x))
                return True
            if result.status != _INFEASIBLE:
                msg = f"could not decide whether a primary moves with a singleton fixed (milp status {result.status}); failing closed"
                raise AuditError(msg)
        return False


def singleton_pairs(region: FeasibleRegion, truth: Mapping[CellKey, int],
                    primaries: Mapping[CellKey, int]) -> tuple[list[tuple[CellKey, CellKey]], int]:
    """Pairs (singleton, primary) where the singleton at 1 determines the primary exactly (A4).

    Args:
        region: The release's feasible region.
        truth: True values of every hidden cell (the steward's record).
        primaries: The primary cells (not slack), with their true values; those of value 1 are
            the singletons.

    Returns:
        The pairs, sorted by labels, and the number of integer programs solved. A primary that
        moves with the singleton (their difference is fixed) is the singleton's own cell, not a
        pair.

    Raises:
        AuditError: A program did not end optimal (fail closed).
    """
    by_comp: dict[int, list[CellKey]] = {}
    for key in primaries:
        by_comp.setdefault(region.component_id(key), []).append(key)
    pairs: list[tuple[CellKey, CellKey]] = []
    programs = 0
    for members in by_comp.values():
        singletons = [k for k in members if primaries[k] == 1]
        if not singletons or len(members) < 2:
            continue
        comp = _Component(region, singletons[0], truth)
        found = _shared(region, comp, singletons, members) if comp.consistent() else None
        if found is None:
            found, n = _one_by_one(region, singletons, members)
            programs += n
        pairs += found
        programs += comp.programs
    return sorted(pairs, key=lambda p: (label(p[0]), label(p[1]))), programs


def _shared(region: FeasibleRegion, comp: _Component, singletons: list[CellKey],
            members: list[CellKey]) -> list[tuple[CellKey, CellKey]]:
    size = comp.truth.size
    single = np.zeros(size, dtype=bool)
    single[[comp.index[k] for k in singletons]] = True
    primary = np.zeros(size, dtype=bool)
    primary[[comp.index[k] for k in members]] = True
    for solution in comp.known:
        comp.keep(solution)
    # Every singleton at 1: a primary that moves there moves for each singleton.
    open_ = comp.determined(primary & ~single, single)
    # Singletons move, if at all, with others: solutions with a random half of them at 1 that push
    # the rest up, then down, serve every pair (s, k) with s in the half and k moved.
    open_ |= single
    rng = np.random.default_rng(len(singletons))
    for _ in range(_HALVES if len(singletons) > 1 else 0):
        half = single & (rng.random(size) < 0.5)
        rest = single & ~half
        if rest.any():
            comp.solve(np.where(rest, 1.0, 0.0), half)
            comp.solve(np.where(rest, -1.0, 0.0), half, cap=rest)
    pairs = []
    for s in singletons:
        fixed = np.zeros(size, dtype=bool)
        fixed[comp.index[s]] = True
        cells = open_ & ~fixed
        for i in np.flatnonzero(comp.determined(cells, fixed)):
            if not region.difference_fixed(s, comp.keys[i]):
                pairs.append((s, comp.keys[i]))
    return pairs


def _one_by_one(region: FeasibleRegion, singletons: list[CellKey],
                members: list[CellKey]) -> tuple[list[tuple[CellKey, CellKey]], int]:
    """The plain way, for a component whose true values do not solve its equations (a consistency
    finding already): a region per singleton, each primary asked in it."""
    pairs, programs = [], 0
    for s in singletons:
        known, near = region.fix({s: 1}), set(region.component(s))
        for k in members:
            if k != s and k in near and not region.difference_fixed(s, k) and known.fixed((k,)) is not None:
                pairs.append((s, k))
        programs += known.milps
    return pairs, programs
