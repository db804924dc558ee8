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

    The hidden cells fall apart into *components*: cells that no chain of equations connects
    vary independently, so each bound is an integer program over one component only, and the
    bound of a sum is the sum of its parts' bounds per component. A component of one cell that
    an equation pins is solved by that equation directly.

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
        self.milps = 0
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
        rows, rhs = self._propagate(*self._build_rows())
        self._components(rows, rhs)
        self._cache: dict[tuple[CellKey, ...], Interval] = {}
        self._witnesses: dict[int, list[np.ndarray]] = {}
        self._supports: dict[int, np.ndarray] = {}
        self._seeded: set[int] = set()
        self._diversified: set[int] = set()
        self._check_feasible()

    def _build_rows(self) -> tuple[list[dict[int, int]], list[int]]:
        """Equations as rows ``a x = b`` over the hidden cells; published cells move to ``b``."""
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
        return rows, rhs

    def _propagate(self, rows: list[dict[int, int]], rhs: list[int]) -> tuple[list[dict[int, int]], list[int]]:
        """Pin every cell an equation with one unknown left determines, and substitute it.

        A release with domain relations ties most cells together through complements that its
        published cells pin (N - n with both shown). Left in, such a pinned cell glues its
        equations into one large component, and every bound becomes a large program; taken out
        (its value moves to the right-hand side), components stay small. The pinned cells keep
        one equation each (``x = value``), so they are one-cell components as before.
        """
        rows = [dict(r) for r in rows]
        rhs = [float(b) for b in rhs]
        by_cell: dict[int, set[int]] = {}
        for r, row in enumerate(rows):
            for c in row:
                by_cell.setdefault(c, set()).add(r)
        value: dict[int, float] = {}
        pins: set[int] = set()
        todo = [r for r, row in enumerate(rows) if len(row) == 1]
        while todo:
            r = todo.pop()
            if len(rows[r]) != 1:
                continue
            ((c, a),) = rows[r].items()
            x = rhs[r] / a
            rows[r] = {}
            pins.add(r)
            if c in value:
                if abs(value[c] - x) > 1e-9:
                    msg = (f"no values of the hidden cells satisfy the equations with the published values "
                           f"(two equations give {label(self.hidden[c])!r} two values)")
                    raise InconsistentTableError(msg)
                continue
            value[c] = x
            for other in by_cell.get(c, set()) - {r}:
                if c in rows[other]:
                    rhs[other] -= rows[other].pop(c) * x
                    if len(rows[other]) == 1:
                        todo.append(other)
        out_rows, out_rhs = [], []
        for r, (row, b) in enumerate(zip(rows, rhs, strict=True)):
            if row:
                out_rows.append(row)
                out_rhs.append(int(round(b)) if abs(b - round(b)) < 1e-9 else b)
            elif r not in pins and abs(b) > 1e-9:
                msg = ("the published cells contradict the equations: substituting the cells they determine "
                       "leaves an equation that does not add up")
                raise InconsistentTableError(msg)
        for c, x in value.items():
            out_rows.append({c: 1})
            out_rhs.append(int(round(x)) if abs(x - round(x)) < 1e-9 else x)
        return out_rows, out_rhs

    def _components(self, rows: list[dict[int, int]], rhs: list[int]) -> None:
        """Split the hidden cells into independent components, each with its own constraint."""
        n = len(self.hidden)
        parent = list(range(n))

        def find(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        for row in rows:
            cols = list(row)
            for c in cols[1:]:
                a, b = find(cols[0]), find(c)
                if a != b:
                    parent[max(a, b)] = min(a, b)
        self._comp_of = np.array([find(i) for i in range(n)], dtype=np.int64)
        members: dict[int, list[int]] = {}
        for i, c in enumerate(self._comp_of):
            members.setdefault(int(c), []).append(i)
        by_comp: dict[int, list[int]] = {}
        for r, row in enumerate(rows):
            by_comp.setdefault(int(self._comp_of[next(iter(row))]), []).append(r)
        self._members = {c: np.array(m, dtype=np.int64) for c, m in members.items()}
        # Cells tied by a row x_a - x_b = constant move together (their difference is fixed).
        self._tie = list(range(n))
        for row in rows:
            if len(row) == 2 and sorted(row.values()) == [-1, 1]:
                a, b = (self._tied(c) for c in row)
                self._tie[max(a, b)] = min(a, b)
        self._local = np.empty(n, dtype=np.int64)
        for m in self._members.values():
            self._local[m] = np.arange(m.size)
        self._rows: dict[int, tuple[list[dict[int, int]], list[int]]] = {
            c: ([rows[r] for r in rs], [rhs[r] for r in rs]) for c, rs in by_comp.items()}
        self._constraints: dict[int, LinearConstraint | None] = {}

    def _tied(self, i: int) -> int:
        while self._tie[i] != i:
            self._tie[i] = self._tie[self._tie[i]]
            i = self._tie[i]
        return i

    def _constraint(self, comp: int) -> LinearConstraint | None:
        if comp not in self._constraints:
            rows, rhs = self._rows.get(comp, ([], []))
            if not rows:
                self._constraints[comp] = None
            else:
                local = self._local
                data = [v for row in rows for v in row.values()]
                indices = [int(local[c]) for row in rows for c in row]
                indptr = np.cumsum([0, *(len(row) for row in rows)])
                matrix = csr_array(
                    (np.array(data, dtype=float), np.array(indices), indptr),
                    shape=(len(rows), self._members[comp].size),
                )
                b = np.array(rhs, dtype=float)
                self._constraints[comp] = LinearConstraint(matrix, b, b)
        return self._constraints[comp]

    def _pinned(self, comp: int) -> float | None:
        """The value of a one-cell component that an equation pins (None otherwise)."""
        rows, rhs = self._rows.get(comp, ([], []))
        if self._members[comp].size != 1 or not rows:
            return None
        (coefficient,) = rows[0].values()
        return rhs[0] / coefficient

    def _solve(self, comp: int, objective: np.ndarray) -> tuple[int, float]:
        pinned = self._pinned(comp)
        if pinned is not None:
            return _OPTIMAL, float(objective[0] * pinned)
        self.milps += 1
        result = milp(
            objective,
            # Integer, never the LP relaxation: in 3-D tables the LP can let a cell move that the
            # integers fix (module docstring). A zero gap makes each bound exact, not approximate.
            integrality=np.full(objective.size, 1 if self.integral else 0),
            bounds=Bounds(0, np.inf),
            constraints=self._constraint(comp),
            options={"mip_rel_gap": 0.0, "time_limit": _TIME_LIMIT_S},
        )
        if result.x is not None:
            self._witnesses.setdefault(comp, []).append(np.round(result.x) if self.integral else result.x)
        return result.status, (result.fun if result.fun is not None else math.nan)

    def _support(self, comp: int) -> np.ndarray:
        """The component's cells that are unbounded above (the support of its recession cone).

        Found by LPs over the cone ``{d >= 0 : A d = 0}`` (boxed at 1), each maximising the cells not
        yet found: every round adds at least one cell, and an optimum of 0 ends the search.
        """
        if comp in self._supports:
            return self._supports[comp]
        size = self._members[comp].size
        found = np.zeros(size, dtype=bool)
        constraint = self._constraint(comp)
        if constraint is None:
            found[:] = True
        elif self._pinned(comp) is None:
            cone = LinearConstraint(constraint.A, 0.0, 0.0)
            while not found.all():
                self.milps += 1
                result = milp(-(~found).astype(float), bounds=Bounds(0, 1), constraints=cone)
                if result.status != _OPTIMAL:
                    msg = f"could not decide boundedness (milp status {result.status}); failing closed"
                    raise AuditError(msg)
                if -result.fun <= 1e-9:
                    break
                found |= result.x > 1e-9
        self._supports[comp] = found
        return found

    def _seed(self, comp: int) -> list[np.ndarray]:
        """Integer solutions of the component to compare cells by (found once, kept as witnesses).

        A program with random positive costs (bounded below, so always solvable) and one with the
        opposite costs on the cells bounded above: solutions that differ in a cell prove it is not
        determined, without bounding it exactly.
        """
        if comp not in self._seeded:
            self._seeded.add(comp)
            size = self._members[comp].size
            if self._pinned(comp) is None:
                weights = np.random.default_rng(comp).integers(1, 100, size).astype(float)
                self._value(*self._solve(comp, weights), what="a witness")
                weights = np.where(self._support(comp), 0.0, -weights)
                if weights.any():
                    self._value(*self._solve(comp, weights), what="a witness")
                    # Two more with mixed signs: in a large component (domain relations tie the
                    # care use of every condition in an age band together) a cell at one bound in
                    # both solutions above is common, and would cost an exact bound of its own.
                    rng = np.random.default_rng(comp + 1)
                    for _ in range(2):
                        mixed = np.where(rng.random(size) < 0.5, weights, -weights)
                        self._value(*self._solve(comp, mixed), what="a witness")
        return self._witnesses.get(comp, [])

    def _diversify(self, comp: int) -> None:
        """More witnesses, once per component: push up, then down, the sum of the cells that every
        witness so far agrees on, until a round separates none. Each solution that moves one of
        them proves it undetermined; checking many cells one by one (A4 in a release with domain
        relations) then needs an exact program only for the cells that are really determined."""
        if comp in self._diversified or self._pinned(comp) is not None:
            return
        self._diversified.add(comp)
        bounded = ~self._support(comp)
        while True:
            witnesses = self._seed(comp)
            if not witnesses:
                return
            stack = np.array(witnesses)
            same = (stack == stack[0]).all(axis=0) & bounded
            if not same.any():
                return
            before = int(same.sum())
            for sign in (-1.0, 1.0):
                self._value(*self._solve(comp, np.where(same, sign, 0.0)), what="a witness")
            stack = np.array(self._seed(comp))
            if int(((stack == stack[0]).all(axis=0) & bounded).sum()) == before:
                return

    def _unbounded(self, comp: int, objective: np.ndarray) -> bool:
        """True when ``objective @ x`` (non-negative weights) has no upper bound over the solutions.

        Decided on the recession cone ``{d >= 0 : A d = 0}`` (:meth:`_support`): HiGHS may report
        an unbounded MILP only as "unbounded or infeasible". By Meyer's theorem the integer hull of
        a rational polyhedron, when not empty (checked at construction), has the same recession
        cone, so the answer holds for integers too.
        """
        if self._pinned(comp) is not None:
            return False
        return bool((self._support(comp) & (objective > 0)).any())

    def _check_feasible(self) -> None:
        for comp, members in self._members.items():
            pinned = self._pinned(comp)
            if pinned is not None:
                rows, rhs = self._rows[comp]
                values = [b / next(iter(r.values())) for r, b in zip(rows, rhs, strict=True)]
                ok = all(abs(v - pinned) < 1e-9 for v in values) and pinned >= -1e-9
                if self.integral:
                    ok = ok and abs(pinned - round(pinned)) < 1e-9
                status = _OPTIMAL if ok else _INFEASIBLE
            else:
                status, _ = self._solve(comp, np.zeros(members.size))
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
            return round(fun)
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
        per_comp: dict[int, list[int]] = {}
        for cell in key:
            i = self._index[cell]
            per_comp.setdefault(int(self._comp_of[i]), []).append(i)
        lo = hi = 0.0
        for comp, columns in per_comp.items():
            objective = np.zeros(self._members[comp].size)
            objective[self._local[columns]] = 1.0
            what = f"{len(key)} cell(s)"
            lo += self._value(*self._solve(comp, objective), what=f"{what} from below")
            if self._unbounded(comp, objective):
                hi = math.inf
            elif hi != math.inf:
                hi += -self._value(*self._solve(comp, -objective), what=f"{what} from above")
        interval = Interval(lo, hi)
        self._cache[key] = interval
        return interval

    def fixed(self, cells: Iterable[CellKey]) -> float | None:
        """The value of a sum of hidden cells if it is the same in every solution, else None.

        Cheaper than :meth:`bounds` when the answer is None: a cell unbounded above, or two
        known integer solutions that differ in the sum, settle it without an exact bound.
        """
        key = tuple(sorted(dict.fromkeys(cells), key=repr))
        if key in self._cache:
            interval = self._cache[key]
            return interval.lo if interval.exact else None
        per_comp: dict[int, list[int]] = {}
        for cell in key:
            i = self._index[cell]
            per_comp.setdefault(int(self._comp_of[i]), []).append(i)
        common = {}
        for comp, columns in per_comp.items():
            local = self._local[columns]
            if self._pinned(comp) is not None:
                continue
            if self._support(comp)[local].any():
                return None
            sums = {float(w[local].sum()) for w in self._seed(comp)}
            if len(sums) > 1:
                return None
            common[comp] = sums.pop() if sums else None
        for comp in common:
            self._diversify(comp)
        for comp, columns in per_comp.items():
            if comp in common and len({float(w[self._local[columns]].sum()) for w in self._seed(comp)}) > 1:
                return None
        for comp, value in common.items():
            if value is None:
                continue
            # One program at a time: a minimum or a maximum away from the witnesses' common
            # value settles it (a cell that is not determined usually takes one program, not two).
            objective = np.zeros(self._members[comp].size)
            objective[self._local[per_comp[comp]]] = 1.0
            for sign in (1.0, -1.0):
                found = sign * self._value(*self._solve(comp, sign * objective), what=f"{len(key)} cell(s)")
                if found != value:
                    return None
        if all(value is not None for value in common.values()):
            # Every component's part is pinned or has equal minimum and maximum: the sum is fixed.
            total = sum(common.values()) + sum(self._pinned(c) for c in per_comp if c not in common)
            self._cache[key] = Interval(total, total)
            return total
        interval = self.bounds(key)
        return interval.lo if interval.exact else None

    def difference_fixed(self, a: CellKey, b: CellKey) -> bool:
        """True when ``a - b`` is the same in every solution (the two move together).

        Then knowing ``a`` tells ``b`` and nothing more: with zeros published, a margin over one
        non-zero cell *is* that cell (A4 must not count it as another primary).
        """
        ia, ib = self._index[a], self._index[b]
        if self._tied(ia) == self._tied(ib):
            return True
        ca, cb = int(self._comp_of[ia]), int(self._comp_of[ib])
        if ca != cb:
            return self.fixed((a,)) is not None and self.fixed((b,)) is not None
        if self._pinned(ca) is not None:
            return True
        la, lb = int(self._local[ia]), int(self._local[ib])
        if len({float(w[la] - w[lb]) for w in self._seed(ca)}) > 1:
            return False
        objective = np.zeros(self._members[ca].size)
        objective[la], objective[lb] = 1.0, -1.0
        cone = LinearConstraint(self._constraint(ca).A, 0.0, 0.0)
        for sign in (1.0, -1.0):
            self.milps += 1
            ray = milp(-sign * objective, bounds=Bounds(0, 1), constraints=cone)
            if ray.status != _OPTIMAL:
                msg = f"could not decide boundedness (milp status {ray.status}); failing closed"
                raise AuditError(msg)
            if -ray.fun > 1e-9:
                return False
        low = self._value(*self._solve(ca, objective), what="a difference")
        high = -self._value(*self._solve(ca, -objective), what="a difference")
        return low == high

    def pinned(self, cell: CellKey) -> float | None:
        """The value of a hidden cell that one equation with one unknown left determines (no program)."""
        return self._pinned(int(self._comp_of[self._index[cell]]))

    def sum_under(self, equation: Equation) -> float | None:
        """The sum of an equation's undetermined hidden children if it is the same in every solution.

        Children that an equation pins (a complement N - n of shown counts) count as known: the
        sum that matters is that of the others (issue 11, item 6: 63 - 57 - 0 leaves 6 persons in
        two hidden complements). Under a published total the sum is the total less the known
        children: exact, with no program to solve. Under a hidden total it is decided by
        :meth:`fixed`. None when no child is left undetermined.
        """
        children = [c for c in equation.children if c in self._index]
        pinned = {c: self.pinned(c) for c in children}
        free = [c for c in children if pinned[c] is None]
        if not free:
            return None
        if equation.total in self.published:
            return float(self.published[equation.total]
                         - sum(self.published[c] for c in equation.children if c not in self._index)
                         - sum(v for v in pinned.values() if v is not None))
        return self.fixed(free)

    def reaches(self, cell: CellKey, low: float, high: float) -> bool:
        """True when the cell's interval covers ``[low, high]`` (A2: the protection interval).

        Known solutions answer most cases; an exact bound is computed only for a side they leave
        open.
        """
        i = self._index[cell]
        comp, local = int(self._comp_of[i]), int(self._local[i])
        if self._pinned(comp) is None:
            values = [w[local] for w in self._seed(comp)]
            down = bool(values) and min(values) <= low
            up = bool(self._support(comp)[local]) or (bool(values) and max(values) >= high)
            if down and up:
                return True
        interval = self.interval(cell)
        return interval.lo <= low and interval.hi >= high

    def interval(self, cell: CellKey) -> Interval:
        """Feasible interval of one hidden cell."""
        return self.bounds((cell,))

    def intervals(self) -> dict[CellKey, Interval]:
        """Feasible interval of every hidden cell, in the order the cells were given."""
        return {cell: self.interval(cell) for cell in self.hidden}

    def component(self, cell: CellKey) -> tuple[CellKey, ...]:
        """The hidden cells that vary together with ``cell`` (its component), itself included."""
        comp = int(self._comp_of[self._index[cell]])
        return tuple(self.hidden[i] for i in self._members[comp])

    def component_id(self, cell: CellKey) -> int:
        """A number that names the component of ``cell`` (equal for cells that vary together)."""
        return int(self._comp_of[self._index[cell]])

    def system(self, cell: CellKey) -> tuple[tuple[CellKey, ...], LinearConstraint | None, list[np.ndarray]]:
        """The component of ``cell`` as equations: its cells, ``A x = b`` over them in that order
        (None for a cell an equation pins), and the integer solutions found so far."""
        comp = self.component_id(cell)
        keys = tuple(self.hidden[i] for i in self._members[comp])
        constraint = None if self._pinned(comp) is not None else self._constraint(comp)
        return keys, constraint, list(self._witnesses.get(comp, [])) if self.integral else []

    def fix(self, values: Mapping[CellKey, int]) -> FeasibleRegion:
        """The region with some hidden cells fixed at given values (A4: a singleton knows it's 1).

        The new region holds only the fixed cells' components (the other cells do not move when
        these are fixed); ask it about cells of those components only (:meth:`component`).

        Raises:
            InconsistentTableError: No solution has those values.
        """
        extra = [key for key in values if key not in self._index]
        if extra:
            msg = f"{label(extra[0])!r} is not a hidden cell of this region"
            raise KeyError(msg)
        comps = {int(self._comp_of[self._index[key]]) for key in values}
        keep = {self.hidden[i] for c in comps for i in self._members[c]}
        equations = [e for e in self.equations if any(k in keep for k in e.cells)]
        cells = {k for e in equations for k in e.cells}
        # Cells of those equations outside the components are pinned (taken out by _propagate).
        pinned = {}
        for k in cells:
            if k in self._index and k not in keep:
                value = self._pinned(int(self._comp_of[self._index[k]]))
                if value is None:
                    keep.add(k)
                else:
                    pinned[k] = int(round(value))
        return FeasibleRegion(
            equations,
            {**{k: v for k, v in self.published.items() if k in cells}, **pinned, **values},
            [key for key in self.hidden if key in keep and key not in values],
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
