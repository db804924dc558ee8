"""Feasible intervals of hidden cells under additive equations (disclosure.md, "The auditor").

A released table is a set of cells tied by additive equations ``total = child_1 + ... + child_k``
(margins, attrition chains, shares with their total). Published cells are known constants; hidden
cells are unknown **non-negative integers** (they count persons). An attacker who knows only the
release can narrow each hidden cell to the set of values that some solution of the equations gives
it; this module computes that set's hull ``[lo, hi]`` per hidden cell, and the hull of any sum of
hidden cells (for A3).

Why an integer program and not its LP relaxation: the LP relaxation bounds the convex hull of the
*real* solutions, which can be strictly wider than the hull of the *integer* ones. In tables of
three or more dimensions the relaxed polytope has fractional vertices, so a cell can be fixed at
one value in every integer solution while the LP still lets it move; an LP-based audit (as
tau-ARGUS's) would pass a table that discloses (tests/spec/test_audit_examples.py holds a
3 × 3 × 3 case: a hidden margin of 1 that the LP puts in [1, 2]). So every bound here is an exact
``scipy.optimize.milp`` optimum with ``integrality=1`` and a zero MIP gap. ``integral=False``
exists only to demonstrate the difference; an audit must never use it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import csr_array

from audit.cells import CellKey, label
from audit.errors import AuditError, InconsistentTableError

# Each bound is one small MILP; a table the auditor cannot bound in this time fails closed.
_TIME_LIMIT_S = 30.0
# milp status codes (scipy.optimize.milp) used here: 0 optimal, 2 infeasible.
_OPTIMAL, _INFEASIBLE = 0, 2


@dataclass(frozen=True)
class Equation:
    """One additive equation of a table: ``total = sum(children)``.

    Attributes:
        total: Key of the total cell.
        children: Keys of the cells that add up to it.
    """

    total: CellKey
    children: tuple[CellKey, ...]

    def __post_init__(self) -> None:
        if not self.children:
            msg = f"equation for total {label(self.total)!r} has no children; expected one or more"
            raise ValueError(msg)

    @property
    def cells(self) -> tuple[CellKey, ...]:
        """The total followed by its children."""
        return (self.total, *self.children)


@dataclass(frozen=True)
class Interval:
    """The hull ``[lo, hi]`` of a hidden quantity's feasible values.

    Attributes:
        lo: Smallest feasible value.
        hi: Largest feasible value; ``math.inf`` when no equation bounds it.
    """

    lo: float
    hi: float

    @property
    def exact(self) -> bool:
        """True when the quantity has one feasible value (``hi - lo < 1``: A1 fails)."""
        return self.hi - self.lo < 1

    def __contains__(self, value: object) -> bool:
        return isinstance(value, int | float) and self.lo <= value <= self.hi


class FeasibleRegion:
    """The non-negative integer solutions of a set of equations, given the published cells.

    Built once per table (or per set of tables for A5); bounds are computed on demand and cached.
    Construction checks that some solution exists and raises
    :class:`~audit.errors.InconsistentTableError` otherwise.

    Args:
        equations: The additive equations over the cells.
        published: Values of the published cells.
        hidden: Keys of the hidden cells (the unknowns).
        integral: Keep True. False solves the LP relaxation instead (only to show why not).

    Raises:
        ValueError: A cell is both published and hidden, or an equation names a cell that is
            neither.
        InconsistentTableError: The published values admit no non-negative (integer) solution.
    """

    def __init__(
        self,
        equations: Sequence[Equation],
        published: Mapping[CellKey, int],
        hidden: Iterable[CellKey],
        *,
        integral: bool = True,
    ) -> None:
        self.equations = tuple(equations)
        self.published = dict(published)
        self.hidden = tuple(dict.fromkeys(hidden))
        self.integral = integral
        both = [key for key in self.hidden if key in self.published]
        if both:
            msg = f"{len(both)} cell(s) are both published and hidden, e.g. {label(both[0])!r}"
            raise ValueError(msg)
        self._index = {key: i for i, key in enumerate(self.hidden)}
        unknown = [
            key
            for equation in self.equations
            for key in equation.cells
            if key not in self._index and key not in self.published
        ]
        if unknown:
            msg = (
                f"{len(unknown)} cell(s) in the equations are neither published nor hidden, "
                f"e.g. {label(unknown[0])!r}"
            )
            raise ValueError(msg)
        self._constraint = self._build_constraint()
        self._cache: dict[tuple[CellKey, ...], Interval] = {}
        self._check_feasible()

    def _build_constraint(self) -> LinearConstraint | None:
        """Equations as ``A x = b`` over the hidden cells; published cells move to ``b``."""
        rows: list[dict[int, int]] = []
        rhs: list[int] = []
        for equation in self.equations:
            coefficients: dict[int, int] = {}
            constant = 0  # sum of published terms of (total - children)
            for key, sign in ((equation.total, 1), *((child, -1) for child in equation.children)):
                if key in self._index:
                    column = self._index[key]
                    coefficients[column] = coefficients.get(column, 0) + sign
                else:
                    constant += sign * int(self.published[key])
            coefficients = {c: v for c, v in coefficients.items() if v != 0}
            if not coefficients:
                if constant != 0:
                    msg = (
                        f"the published cells contradict the equation for total "
                        f"{label(equation.total)!r}: it does not equal the sum of its children"
                    )
                    raise InconsistentTableError(msg)
                continue
            rows.append(coefficients)
            rhs.append(-constant)
        if not rows:
            return None
        data = [v for row in rows for v in row.values()]
        indices = [c for row in rows for c in row]
        indptr = np.cumsum([0, *(len(row) for row in rows)])
        matrix = csr_array(
            (np.array(data, dtype=float), np.array(indices), indptr),
            shape=(len(rows), len(self.hidden)),
        )
        b = np.array(rhs, dtype=float)
        return LinearConstraint(matrix, b, b)

    def _solve(self, objective: np.ndarray) -> tuple[int, float]:
        if not self.hidden:
            return _OPTIMAL, 0.0
        result = milp(
            objective,
            # Integer, never the LP relaxation: in 3-D tables the LP can let a cell move that the
            # integers fix (module docstring). A zero gap makes each bound exact, not approximate.
            integrality=np.full(len(self.hidden), 1 if self.integral else 0),
            bounds=Bounds(0, np.inf),
            constraints=self._constraint,
            options={"mip_rel_gap": 0.0, "time_limit": _TIME_LIMIT_S},
        )
        return result.status, (result.fun if result.fun is not None else math.nan)

    def _unbounded(self, objective: np.ndarray) -> bool:
        """True when ``objective @ x`` has no upper bound over the solutions.

        Decided on the recession cone ``{d >= 0 : A d = 0}`` by an LP: HiGHS may report an
        unbounded MILP only as "unbounded or infeasible". By Meyer's theorem the integer hull of a
        rational polyhedron, when not empty (checked at construction), has the same recession
        cone, so the answer holds for integers too.
        """
        if self._constraint is None:
            return bool(objective.any())
        cone = LinearConstraint(self._constraint.A, 0.0, 0.0)
        result = milp(-objective, bounds=Bounds(0, 1), constraints=cone)
        if result.status != _OPTIMAL:
            msg = f"could not decide boundedness (milp status {result.status}); failing closed"
            raise AuditError(msg)
        return -result.fun > 1e-9

    def _check_feasible(self) -> None:
        status, _ = self._solve(np.zeros(len(self.hidden)))
        if status == _INFEASIBLE:
            kind = "integer" if self.integral else "real"
            msg = (
                f"no non-negative {kind} values of the {len(self.hidden)} hidden cell(s) satisfy "
                f"the {len(self.equations)} equation(s) with the published values"
            )
            raise InconsistentTableError(msg)
        if status != _OPTIMAL:
            msg = f"could not decide feasibility (milp status {status}); failing closed"
            raise AuditError(msg)

    def _value(self, status: int, fun: float, what: str) -> float:
        if status != _OPTIMAL:
            msg = f"could not bound {what} (milp status {status}); failing closed"
            raise AuditError(msg)
        if self.integral:
            # Integer optimum of an integer objective: round off solver tolerance only.
            return int(round(fun))
        return float(fun)

    def bounds(self, cells: Iterable[CellKey]) -> Interval:
        """Feasible interval of the sum of some hidden cells (a single cell is a sum of one).

        Args:
            cells: Keys of hidden cells.

        Returns:
            The hull of the sum's values over all solutions.

        Raises:
            KeyError: A key is not a hidden cell.
        """
        key = tuple(sorted(dict.fromkeys(cells), key=repr))
        if key in self._cache:
            return self._cache[key]
        missing = [cell for cell in key if cell not in self._index]
        if missing:
            msg = f"{label(missing[0])!r} is not a hidden cell of this region"
            raise KeyError(msg)
        objective = np.zeros(len(self.hidden))
        objective[[self._index[cell] for cell in key]] = 1.0
        lo = self._value(*self._solve(objective), what=f"{len(key)} cell(s) from below")
        if self._unbounded(objective):
            hi = math.inf
        else:
            hi = -self._value(*self._solve(-objective), what=f"{len(key)} cell(s) from above")
        interval = Interval(lo, hi)
        self._cache[key] = interval
        return interval

    def interval(self, cell: CellKey) -> Interval:
        """Feasible interval of one hidden cell."""
        return self.bounds((cell,))

    def intervals(self) -> dict[CellKey, Interval]:
        """Feasible interval of every hidden cell, in the order the cells were given."""
        return {cell: self.interval(cell) for cell in self.hidden}

    def fix(self, values: Mapping[CellKey, int]) -> FeasibleRegion:
        """The region with some hidden cells fixed at given values (A4: a singleton knows it's 1).

        Raises:
            InconsistentTableError: No solution has those values.
        """
        extra = [key for key in values if key not in self._index]
        if extra:
            msg = f"{label(extra[0])!r} is not a hidden cell of this region"
            raise KeyError(msg)
        return FeasibleRegion(
            self.equations,
            {**self.published, **values},
            [key for key in self.hidden if key not in values],
            integral=self.integral,
        )


def feasible_intervals(
    equations: Sequence[Equation],
    published: Mapping[CellKey, int],
    hidden: Iterable[CellKey],
    *,
    integral: bool = True,
) -> dict[CellKey, Interval]:
    """Feasible interval ``[lo, hi]`` of each hidden cell over non-negative integers.

    Args:
        equations: Additive equations ``total = sum(children)`` over the cells.
        published: Values of the published cells.
        hidden: Keys of the hidden cells.
        integral: Keep True; False bounds the LP relaxation (see the module docstring).

    Returns:
        One interval per hidden cell.

    Raises:
        InconsistentTableError: The published values are inconsistent with the equations.
    """
    return FeasibleRegion(equations, published, hidden, integral=integral).intervals()
