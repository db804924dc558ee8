"""Secondary suppression over tables with additive equations (disclosure.md, "Secondary suppression").

A :class:`Table` is a vector of non-negative integer cells and a list of additive equations
(``total = sum(children)``), built for 1-, 2- and 3-D tables with all margins by
:func:`table_1d`, :func:`table_2d`, :func:`table_3d` (:func:`table_nd` in general) and joined by
:func:`link_tables` when tables released together share a quantity (the same N in several
tables is one variable, so it is suppressed consistently).

:func:`protect` chooses the cells to hide around the primaries:

1. **Elimination** in the style of Statistics Norway's GaussSuppression: candidates are taken in
   order of descending value (so small cells become the secondaries); a candidate is hidden when
   publishing it would make a protected cell a linear combination of published cells. The algebra
   is exact, over the integers modulo the prime 2**31 - 1 (a false "independent" needs the prime
   to divide a minor of a 0/1 matrix; the integer bounds below would still catch it).
2. **Exact bounds** with integer programs (``scipy.optimize.milp``): a hidden cell's interval is
   the min and max of its value over the non-negative integers satisfying every equation with the
   published cells fixed. In three dimensions the LP relaxation can move a cell the integers pin,
   so an LP bound is never trusted: an LP optimum counts only when it is itself integral.
3. **Checks** A1-A4 of the audit (:func:`check`); a **repair loop** hides the cheapest helping
   cells (cost = value, so small cells first) until they pass; a **pruning pass** publishes
   again, in order of descending value, every secondary whose removal keeps the checks passing.

No safe pattern (the repair loop runs out of cells, a bound is not proven in time) means nothing
is released: the :class:`Pattern` is ``releasable=False``, every cell hidden, with a reason (fail
closed). Messages name cells by label, never by value.

Speed (issue 5: a 10 x 8 x 5 table with all margins in well under 10 s). Programs are solved per
connected component of the hidden cells and over the hidden cells only. A check "cell j can
reach v_j + d" is answered by a *witness*, a full integer solution; witnesses are minimal moves
(min |y| with A y = 0), so they are sparse and stay valid when other cells are published again,
and a requirement a stored witness already meets costs nothing. Outer bounds from single
equations reject impossible targets at once. An LP optimum is used only when it is integral and
checked exactly (then it *is* the integer optimum); otherwise ``milp`` decides. Pruning first
rejects, by the exact algebra, removals that would determine a hidden cell linearly.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, linprog, milp
from scipy.sparse.csgraph import connected_components

from cohort.disclosure.policy import Policy
from cohort.disclosure.primary import Flags

__all__ = [
    "Pattern",
    "Table",
    "Violation",
    "bounds",
    "check",
    "link_tables",
    "protect",
    "table_1d",
    "table_2d",
    "table_3d",
    "table_nd",
]

_PRIME = 2_147_483_647  # 2**31 - 1: the product of two residues fits in int64
_UNBOUNDED = np.iinfo(np.int64).max // 4  # "no outer bound" in the integer bound arrays
TOTAL = "Total"


# -- tables ------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Table:
    """Cells with non-negative integer values and additive equations between them.

    Attributes:
        values: cell values, int64, one per cell (cell id = position).
        labels: one unique label per cell (``"A,F"``, ``"A,Total"``, ``"Total,Total"``).
        inner: True for inner cells, False for margins.
        equations: ``(total, children)`` pairs of cell ids: value[total] = sum(value[children]).
        parts: for linked tables, the cell ids of each member table, in its own cell order.
    """

    values: np.ndarray
    labels: tuple[str, ...]
    inner: np.ndarray
    equations: tuple[tuple[int, tuple[int, ...]], ...]
    parts: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        values = np.asarray(self.values)
        if values.ndim != 1 or values.dtype.kind not in "iu":
            msg = "Table: expected a 1-D array of integer cell values"
            raise ValueError(msg)
        if np.any(values < 0):
            msg = f"Table: expected non-negative counts, found {int(np.sum(values < 0))} negative cells"
            raise ValueError(msg)
        object.__setattr__(self, "values", values.astype(np.int64))
        object.__setattr__(self, "inner", np.asarray(self.inner, dtype=bool))
        if len(self.labels) != values.size or self.inner.shape != values.shape or len(set(self.labels)) != values.size:
            msg = f"Table: expected {values.size} unique labels and inner flags, one per cell"
            raise ValueError(msg)
        for total, children in self.equations:
            if not all(0 <= c < values.size for c in (total, *children)) or total in children:
                msg = f"Table: equation of '{self.labels[total]}' refers to unknown cells"
                raise ValueError(msg)
            if values[total] != values[list(children)].sum():
                msg = f"Table: '{self.labels[total]}' is not the sum of its {len(children)} children"
                raise ValueError(msg)

    @property
    def cells(self) -> np.ndarray:
        """Cell ids, 0..n-1."""
        return np.arange(self.values.size)

    def index(self, label: str) -> int:
        """The id of the cell with this label."""
        try:
            return self.labels.index(label)
        except ValueError:
            msg = f"Table: no cell labelled '{label}'"
            raise KeyError(msg) from None

    def matrix(self) -> sparse.csr_array:
        """The equations as a sparse matrix M with M @ values == 0 (+1 total, -1 children)."""
        rows, cols, data = [], [], []
        for e, (total, children) in enumerate(self.equations):
            rows += [e] * (1 + len(children))
            cols += [total, *children]
            data += [1.0] + [-1.0] * len(children)
        return sparse.csr_array((data, (rows, cols)), shape=(len(self.equations), self.values.size))


def table_nd(array: npt.ArrayLike, labels: Sequence[Sequence[str]] | None = None) -> Table:
    """A table of any dimension with every margin: each cell with a total coordinate is the sum
    of the cells one level finer along that coordinate.

    Args:
        array: the inner counts, one axis per classifying variable.
        labels: category labels per axis (default ``"0"``, ``"1"``, ...); margins are ``"Total"``.
    """
    inner = np.asarray(array)
    if inner.dtype.kind not in "iu" or inner.ndim < 1 or 0 in inner.shape:
        msg = "table: expected a non-empty integer array"
        raise ValueError(msg)
    shape = inner.shape
    if labels is None:
        labels = [[str(i) for i in range(s)] for s in shape]
    if len(labels) != inner.ndim or any(len(lab) != s for lab, s in zip(labels, shape, strict=True)):
        msg = f"table: expected labels for each of the {inner.ndim} axes, one per category"
        raise ValueError(msg)
    ext_shape = tuple(s + 1 for s in shape)
    ext = np.zeros(ext_shape, dtype=np.int64)
    ext[tuple(slice(0, s) for s in shape)] = inner
    ids = np.arange(ext.size).reshape(ext_shape)
    equations: list[tuple[int, tuple[int, ...]]] = []
    for axis, s in enumerate(shape):
        total_ix = tuple(s if a == axis else slice(None) for a in range(inner.ndim))
        parts_ix = tuple(slice(0, s) if a == axis else slice(None) for a in range(inner.ndim))
        ext[total_ix] = ext[parts_ix].sum(axis=axis)
        totals = np.take(ids, s, axis=axis).ravel()
        children = np.moveaxis(np.take(ids, range(s), axis=axis), axis, -1).reshape(-1, s)
        equations += zip(totals.tolist(), map(tuple, children.tolist()), strict=True)
    is_inner = np.zeros(ext_shape, dtype=bool)
    is_inner[tuple(slice(0, s) for s in shape)] = True
    names = [",".join(p) for p in itertools.product(*[[*map(str, lab), TOTAL] for lab in labels])]
    return Table(ext.ravel(), tuple(names), is_inner.ravel(), tuple(equations))


def table_1d(values: npt.ArrayLike, labels: Sequence[str] | None = None) -> Table:
    """A 1-D table and its total (labels ``"A"``, ..., ``"Total"``)."""
    return table_nd(np.asarray(values), None if labels is None else [labels])


def table_2d(matrix: npt.ArrayLike, row_labels: Sequence[str] | None = None, col_labels: Sequence[str] | None = None) -> Table:
    """A 2-D table with row totals, column totals and the grand total (labels ``"row,col"``)."""
    m = np.asarray(matrix)
    if m.ndim != 2:
        msg = "table_2d: expected a 2-D matrix"
        raise ValueError(msg)
    rows = row_labels if row_labels is not None else [str(i) for i in range(m.shape[0])]
    cols = col_labels if col_labels is not None else [str(j) for j in range(m.shape[1])]
    return table_nd(m, [rows, cols])


def table_3d(array: npt.ArrayLike, labels: Sequence[Sequence[str]] | None = None) -> Table:
    """A 3-D table with its three 2-D margins, three 1-D margins and the grand total."""
    a = np.asarray(array)
    if a.ndim != 3:
        msg = "table_3d: expected a 3-D array"
        raise ValueError(msg)
    return table_nd(a, labels)


def link_tables(tables: Mapping[str, Table], same: Iterable[tuple[str, str]]) -> Table:
    """Join tables released together into one, so they are suppressed consistently.

    Args:
        tables: member tables by name; cell labels become ``"name:label"``.
        same: pairs of labels (``("ages:Total", "sexes:Total")``) that are the same quantity
            and so one variable: the same N in two tables, a margin published twice.

    Raises:
        ValueError: when a label is unknown or two cells said to be the same differ in value
            (a margin must never be published in two versions).
    """
    labels = [f"{name}:{lab}" for name, t in tables.items() for lab in t.labels]
    where = {lab: i for i, lab in enumerate(labels)}
    values = np.concatenate([t.values for t in tables.values()])
    inner = np.concatenate([t.inner for t in tables.values()])
    parent = list(range(len(labels)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in same:
        for lab in (a, b):
            if lab not in where:
                msg = f"link_tables: no cell labelled '{lab}'"
                raise ValueError(msg)
        if values[where[a]] != values[where[b]]:
            msg = f"link_tables: '{a}' and '{b}' are one quantity but differ (a margin published in two versions)"
            raise ValueError(msg)
        ra, rb = root(where[a]), root(where[b])
        parent[max(ra, rb)] = min(ra, rb)
    roots = np.array([root(i) for i in range(len(labels))])
    keep = np.flatnonzero(roots == np.arange(len(labels)))
    new_id = np.empty(len(labels), dtype=np.int64)
    new_id[keep] = np.arange(keep.size)
    new_id = new_id[roots]
    merged_inner = np.ones(keep.size, dtype=bool)
    np.logical_and.at(merged_inner, new_id, inner)
    equations, seen, parts, offset = [], set(), {}, 0
    for name, t in tables.items():
        ids = new_id[offset : offset + t.values.size]
        parts[name] = ids
        for total, children in t.equations:
            eq = (int(ids[total]), tuple(sorted(int(ids[c]) for c in children)))
            if eq not in seen:
                seen.add(eq)
                equations.append(eq)
        offset += t.values.size
    return Table(values[keep], tuple(labels[i] for i in keep), merged_inner, tuple(equations), parts)


# -- patterns and checks -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Violation:
    """A failed check: the rule (A1-A4), the cell or total it concerns (a label), and why.

    ``known`` names the singleton assumed known for an A4 violation ("" otherwise).
    """

    rule: str
    cell: str
    message: str
    known: str = ""


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


class _Unsafe(Exception):
    """No safe pattern: the table must not be released (fail closed)."""


@dataclass(eq=False)
class _Eval:
    """One candidate pattern: hidden cells, their components, outer bounds and valid witnesses."""

    hidden: np.ndarray
    comp: np.ndarray  # component id per cell, -1 for published cells
    lb: np.ndarray  # outer bounds from single equations: lb <= any feasible value <= ub
    ub: np.ndarray
    rows: np.ndarray  # ids of the witnesses (pool rows) feasible for this pattern


@dataclass(frozen=True, slots=True)
class _Failure:
    """A failed requirement: cell j must move by ``amount`` in direction ``sign`` (s fixed at 1)."""

    rule: str
    j: int
    sign: int = 1
    amount: int = 1
    singleton: int = -1


class _Solver:
    """Exact integer bounds and checks A1-A4 for patterns of one table.

    A requirement "cell j can reach v_j + sign * amount" is met by a *witness*: a full integer
    vector that satisfies every equation, is non-negative and agrees with the published cells.
    Witnesses are found as minimal moves y (A y = 0, min |y|), so they are sparse and stay valid
    when other cells are published again; an LP optimum is accepted only when it is integral
    (then it is the integer optimum too), otherwise the integer program decides.
    """

    def __init__(self, table: Table, primary: np.ndarray, policy: Policy, time_limit: float) -> None:
        self.t, self.v, self.policy, self.time_limit = table, table.values, policy, time_limit
        self.primary = primary
        self.a = table.matrix()
        self.a_csc = self.a.tocsc()
        ch = (self.a < 0).astype(np.int64).tocsr()
        self.children = ch
        self.entry_eq = np.repeat(np.arange(ch.shape[0]), np.diff(ch.indptr))
        self.entry_cell = ch.indices
        self.totals = np.array([e[0] for e in table.equations], dtype=np.int64)
        # No artificial box: a cell is unbounded above exactly when the LP is (a rational ray
        # scales to an integer one), and a box would cut intervals where they matter.
        p = np.array([policy.protection(int(x)) for x in self.v])
        self.down = np.minimum(self.v, p)  # A2: lo <= max(0, v - P), i.e. a move down by min(v, P)
        self.up = p
        self.pool = np.empty((64, self.v.size), dtype=np.int64)
        self.pool[0] = self.v
        self.npool = 1
        self.cache: dict[tuple, object] = {}
        self.lps = self.milps = 0

    # witnesses and evaluation contexts
    def _remember(self, ev: _Eval, witness: np.ndarray) -> None:
        if self.npool == self.pool.shape[0]:
            if self.npool >= 8192:
                return
            self.pool = np.vstack([self.pool, np.empty_like(self.pool)])
        self.pool[self.npool] = witness
        ev.rows = np.append(ev.rows, self.npool)
        self.npool += 1

    def evaluate(self, hidden: np.ndarray) -> _Eval:
        h = np.flatnonzero(hidden)
        comp = np.full(self.v.size, -1)
        if h.size:
            inc = abs(self.a_csc[:, h])
            _, labels = connected_components((inc.T @ inc) != 0, directed=False)
            comp[h] = labels
        hv = np.where(hidden, self.v, 0)
        sums = self.children @ hv  # hidden children's sum per equation
        lb, ub = np.zeros(self.v.size, dtype=np.int64), np.full(self.v.size, _UNBOUNDED, dtype=np.int64)
        open_total = ~hidden[self.totals]
        sel = open_total[self.entry_eq]
        np.minimum.at(ub, self.entry_cell[sel], sums[self.entry_eq[sel]])
        np.maximum.at(lb, self.totals[~open_total], (self.v[self.totals] - sums)[~open_total])
        pub = np.flatnonzero(~hidden)
        ok = ~(self.pool[: self.npool][:, pub] != self.v[pub]).any(axis=1)
        return _Eval(hidden, comp, lb, ub, np.flatnonzero(ok))

    def _column(self, ev: _Eval, j: int, fixed: tuple[tuple[int, int], ...]) -> np.ndarray:
        rows = ev.rows
        for cell, value in fixed:
            rows = rows[self.pool[rows, cell] == value]
        return self.pool[rows, j]

    # programs over one component, in moves y from the true values
    def _system(self, cells: np.ndarray) -> tuple[sparse.csr_array, np.ndarray]:
        """The equations touching ``cells``, restricted to them, and their rows."""
        sub = self.a_csc[:, cells]
        rows = np.flatnonzero(abs(sub).sum(axis=1))
        return sub[rows].tocsr(), rows

    def _move(self, ev: _Eval, j: int, fixed: tuple[tuple[int, int], ...], *, sign: int, amount: int,
              cost: np.ndarray | None = None, movable: np.ndarray | None = None, mode: str = "exact",
              ) -> np.ndarray | None:
        """A move y (A y = 0, v + y >= 0) with sign * y_j >= amount and minimal cost |y|.

        Moves are over the hidden cells of j's component, or over ``movable`` cells. An LP
        optimum is accepted when integral; otherwise ``mode`` decides: "exact" asks the integer
        program for any integer move (a check), "relaxed" returns the fractional LP move (a
        repair heuristic, never a check), "integer" asks the integer program with a time limit.

        Returns:
            The move as a full vector (float when relaxed), or None when there is none (or the
            time-limited integer program found none).
        """
        cells = np.flatnonzero(ev.comp == ev.comp[j]) if movable is None else np.flatnonzero(movable)
        k, pos = cells.size, np.searchsorted(cells, j)
        sub, _ = self._system(cells)
        mat = sparse.hstack([sub, -sub]).tocsr()
        x = self.v[cells]
        lo, hi = np.zeros(2 * k), np.concatenate([np.full(k, np.inf), x])
        for cell, _ in fixed:
            at = np.searchsorted(cells, cell)
            if at < k and cells[at] == cell:
                hi[at] = hi[k + at] = 0
        up, down = (pos, k + pos) if sign > 0 else (k + pos, pos)
        hi[down], lo[up] = 0, amount
        if lo[up] > hi[up]:
            return None
        c = np.ones(2 * k) if cost is None else np.concatenate([cost[cells], cost[cells]])
        zero = np.zeros(mat.shape[0])
        res = linprog(c, A_eq=mat, b_eq=zero, bounds=np.c_[lo, hi], method="highs")
        self.lps += 1
        if res.status == 2:
            return None  # LP infeasible: no integer move either
        y = res.x if res.status == 0 else None
        if y is not None and mode == "relaxed":
            out = np.zeros(self.v.size)
            out[cells] = y[:k] - y[k:]
            return out
        if y is None or np.abs(y - np.round(y)).max() > 1e-7 or (mat @ np.round(y) != 0).any():
            # A check needs any integer move: a pure feasibility program finds one several times
            # faster than the min-cost one. A repair step wants the cheapest, within a time limit.
            exact = mode == "exact"
            opts = {"time_limit": self.time_limit if exact else min(2.0, self.time_limit), "mip_rel_gap": 1e9}
            res = milp(np.zeros(2 * k) if exact else c, integrality=np.ones(2 * k), bounds=Bounds(lo, hi),
                       constraints=LinearConstraint(mat, zero, zero), options=opts)
            self.milps += 1
            if res.x is None:
                if res.status == 2 or mode != "exact":
                    return None
                msg = f"an integer program around '{self.t.labels[j]}' was not solved (status {res.status})"
                raise _Unsafe(msg)
            y = res.x
        y = np.round(y).astype(np.int64)
        out = np.zeros(self.v.size, dtype=np.int64)
        out[cells] = y[:k] - y[k:]
        return out

    def reach(self, ev: _Eval, j: int, sign: int, amount: int, fixed: tuple[tuple[int, int], ...] = ()) -> bool:
        """Is there a feasible integer solution with sign * (x_j - v_j) >= amount?"""
        target = self.v[j] + sign * amount
        if target < ev.lb[j] or target > ev.ub[j]:
            return False
        col = self._column(ev, j, fixed)
        if ((sign * (col - self.v[j])) >= amount).any():
            return True
        key = ("reach", np.flatnonzero(ev.comp == ev.comp[j]).tobytes(), j, sign, amount, fixed)
        if key not in self.cache:
            move = self._move(ev, j, fixed, sign=sign, amount=amount)
            self.cache[key] = move is not None
            if move is not None:
                self._remember(ev, self.v + move)
        return bool(self.cache[key])

    def extreme(self, ev: _Eval, j: int, sign: int) -> tuple[float, bool]:
        """Min (sign -1) or max (+1) of cell j over the integers, exact; inf when only the box bounds it.

        An outer bound reached by a witness is exact. Otherwise the LP over the component: its
        optimum rounded inwards is an outer bound too, exact when a witness reaches it; only then
        is the integer program asked.
        """
        key = ("extreme", np.flatnonzero(ev.comp == ev.comp[j]).tobytes(), j, sign)
        if key in self.cache:
            return self.cache[key]
        col = self._column(ev, j, ())
        bound = ev.lb[j] if sign < 0 else ev.ub[j]
        if bound < _UNBOUNDED and (col == bound).any():
            return float(bound), True
        cells = np.flatnonzero(ev.comp == ev.comp[j])
        sub, rows = self._system(cells)
        rhs = -(self.a[rows] @ np.where(ev.hidden, 0, self.v)).astype(float)
        c = np.zeros(cells.size)
        c[np.searchsorted(cells, j)] = -sign
        box = (0, np.inf)
        res = linprog(c, A_eq=sub, b_eq=rhs, bounds=box, method="highs")
        self.lps += 1
        if res.status == 3 and sign > 0:  # unbounded LP: a ray, so unbounded integers too
            self.cache[key] = (np.inf, True)
            return np.inf, True
        if res.status != 0:
            msg = f"no solution around '{self.t.labels[j]}' (status {res.status})"
            raise _Unsafe(msg)
        x = np.round(res.x)
        if np.abs(res.x - x).max() <= 1e-7 and (sub @ x == rhs).all():
            best, proven = x, True
        else:
            inward = np.floor(-res.fun + 1e-7) if sign > 0 else np.ceil(res.fun - 1e-7)
            if (col == inward).any():
                return float(inward), True
            res = milp(c, integrality=np.ones(cells.size), bounds=Bounds(*box),
                       constraints=LinearConstraint(sub, rhs, rhs), options={"time_limit": self.time_limit})
            self.milps += 1
            if res.x is None:
                msg = f"no integer solution around '{self.t.labels[j]}' (status {res.status})"
                raise _Unsafe(msg)
            best, proven = np.round(res.x), res.status == 0
        witness = self.v.copy()
        witness[cells] = best.astype(np.int64)
        self._remember(ev, witness)
        value = witness[j]
        out = float(value), proven
        self.cache[key] = out
        return out

    def helper(self, ev: _Eval, f: _Failure, candidate: np.ndarray) -> np.ndarray:
        """The cheapest published cells whose hiding lets cell f.j make its move (cost = value).

        In order: the support of the cheapest LP move; else the single cheapest cell that is
        enough, among f.j's line-mates and then the component's neighbours; else the cheapest
        integer move found within a time limit; else any integer move (pruning removes the
        cells it did not need).
        """
        fixed = ((f.singleton, 1),) if f.singleton >= 0 else ()
        movable = ev.hidden | candidate
        cost = np.where(ev.hidden, 0.01, self.v.astype(float))
        move = self._move(ev, f.j, fixed, sign=f.sign, amount=f.amount, cost=cost, movable=movable, mode="relaxed")
        if move is None:
            return np.array([], dtype=np.int64)
        support = np.flatnonzero((np.abs(move) > 1e-9) & ~ev.hidden)
        if support.size:
            return support
        # The LP moves only hidden cells, fractionally (3-D): one more cell usually makes it integral.
        tried: set[int] = set()
        for cells, limit in ((np.array([f.j]), 24), (np.flatnonzero(ev.comp == ev.comp[f.j]), 12)):
            near = np.flatnonzero(abs(self.a[self._system(cells)[1]]).sum(axis=0))
            near = near[candidate[near] & ~ev.hidden[near] & ~np.isin(near, list(tried))]
            for c in near[np.lexsort((near, self.v[near]))][:limit]:
                tried.add(int(c))
                trial = ev.hidden.copy()
                trial[c] = True
                if self.reach(self.evaluate(trial), f.j, f.sign, f.amount, fixed):
                    return np.array([c])
        for weights in (cost, np.zeros(self.v.size)):  # cheapest within a time limit, else any
            move = self._move(ev, f.j, fixed, sign=f.sign, amount=f.amount, cost=weights, movable=movable,
                              mode="integer")
            if move is not None:
                return np.flatnonzero((move != 0) & ~ev.hidden)
        return np.array([], dtype=np.int64)

    # checks
    def a3(self, hidden: np.ndarray) -> np.ndarray:
        """Equations whose total is published and whose hidden children sum to 1..T-1 (A3)."""
        h = self.children @ np.where(hidden, self.v, 0)
        return np.flatnonzero(~hidden[self.totals] & (h >= 1) & (h < self.policy.threshold))

    def _cell(self, ev: _Eval, j: int, fixed: tuple[tuple[int, int], ...] = ()) -> _Failure | None:
        s = fixed[0][0] if fixed else -1
        if self.primary[j] and not fixed:
            for sign, amount in ((-1, int(self.down[j])), (1, int(self.up[j]))):
                if not self.reach(ev, j, sign, amount):
                    moves = self.reach(ev, j, 1, 1) or self.reach(ev, j, -1, 1)
                    return _Failure("A2" if moves else "A1", j, sign, amount)
            return None
        if self.reach(ev, j, 1, 1, fixed) or self.reach(ev, j, -1, 1, fixed):
            return None
        return _Failure("A4" if fixed else "A1", j, 1, 1, s)

    def failures(self, hidden: np.ndarray, *, cells: np.ndarray | None = None, first: bool = True) -> list[_Failure]:
        """Failed requirements of A1-A4; only around ``cells`` (hidden ids) if given."""
        found = [_Failure("A3", int(self.totals[e])) for e in self.a3(hidden)]
        if found and first:
            return found[:1]
        ev = self.evaluate(hidden)
        cells = np.flatnonzero(hidden) if cells is None else cells
        for j in sorted(cells, key=lambda c: (not self.primary[c], c)):
            if (f := self._cell(ev, int(j))) is not None:
                found.append(f)
                if first:
                    return found
        comps = {ev.comp[c] for c in cells}
        for s in np.flatnonzero(hidden & self.primary & (self.v == 1)):
            if ev.comp[s] in comps:
                for j in np.flatnonzero((ev.comp == ev.comp[s]) & self.primary):
                    if j != s and (f := self._cell(ev, int(j), ((int(s), 1),))) is not None:
                        found.append(f)
                        if first:
                            return found
        return found

    def violation(self, f: _Failure) -> Violation:
        labels = self.t.labels
        if f.rule == "A3":
            return Violation("A3", labels[f.j], "the hidden children's derivable sum is 1..T-1")
        if f.rule == "A2":
            side = "below" if f.sign < 0 else "above"
            return Violation("A2", labels[f.j], f"cannot move {side} its value by the protection margin")
        if f.rule == "A4":
            return Violation("A4", labels[f.j], "exactly determined once the singleton is known", labels[f.singleton])
        return Violation("A1", labels[f.j], "exactly determined")

    def intervals(self, hidden: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
        """Exact [lo, hi] of every hidden cell; the flag is False when a bound is not proven."""
        ev = self.evaluate(hidden)
        lo, hi = self.v.astype(float), self.v.astype(float)
        proven = True
        for j in np.flatnonzero(hidden):
            (lo[j], ok_lo), (hi[j], ok_hi) = self.extreme(ev, j, -1), self.extreme(ev, j, 1)
            proven = proven and ok_lo and ok_hi
        return lo, hi, proven


# -- exact elimination (GaussSuppression) -------------------------------------------------------


def _nullspace(table: Table) -> np.ndarray:
    """Basis (n x d, mod p) of the solutions of the equations: row j is cell j in free variables.

    Margins are pivoted first, so the free variables are inner cells where possible.
    """
    n = table.values.size
    order = np.argsort(table.inner, kind="stable")
    m = (np.rint(table.matrix().toarray()[:, order]).astype(np.int64)) % _PRIME
    pivots, r = [], 0
    for col in range(n):
        if r == m.shape[0]:
            break
        nz = np.flatnonzero(m[r:, col])
        if nz.size == 0:
            continue
        k = r + nz[0]
        m[[r, k]] = m[[k, r]]
        m[r] = m[r] * pow(int(m[r, col]), -1, _PRIME) % _PRIME
        f = m[:, col].copy()
        f[r] = 0
        idx = np.flatnonzero(f)
        m[idx] = (m[idx] - np.outer(f[idx], m[r])) % _PRIME
        pivots.append(col)
        r += 1
    free = np.setdiff1d(np.arange(n), pivots)
    basis = np.zeros((n, free.size), dtype=np.int64)
    basis[free, np.arange(free.size)] = 1
    basis[pivots] = (-m[: len(pivots)][:, free]) % _PRIME
    out = np.empty_like(basis)
    out[order] = basis
    return out


class _Span:
    """Residuals of cell vectors modulo the span of the published cells, exact mod p."""

    def __init__(self, basis: np.ndarray) -> None:
        self.r = basis.copy()
        self.live = np.ones(basis.shape[0], dtype=bool)

    def pivot(self, c: int) -> tuple[int, np.ndarray] | None:
        nz = np.flatnonzero(self.r[c])
        if nz.size == 0:
            return None
        k = int(nz[0])
        return k, self.r[c] * pow(int(self.r[c, k]), -1, _PRIME) % _PRIME

    def determines(self, piv: tuple[int, np.ndarray], rows: np.ndarray) -> bool:
        """Would publishing the pivot's cell make one of ``rows`` a combination of published cells?"""
        k, r = piv
        q = self.r[rows]
        hit = q[:, k] != 0
        return bool((~((q[hit] - np.outer(q[hit, k], r)) % _PRIME).any(axis=1)).any())

    def publish(self, c: int, piv: tuple[int, np.ndarray] | None) -> None:
        self.live[c] = False
        if piv is not None:
            k, r = piv
            idx = np.flatnonzero((self.r[:, k] != 0) & self.live)
            self.r[idx] = (self.r[idx] - np.outer(self.r[idx, k], r)) % _PRIME


def _gauss(basis: np.ndarray, values: np.ndarray, protected: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """GaussSuppression: publish cells by descending value unless one would expose a protected cell."""
    span, hidden = _Span(basis), ~candidate & protected
    rows = np.flatnonzero(protected)
    forced = np.flatnonzero(~candidate & ~protected)  # zeros: always published
    ordered = np.flatnonzero(candidate)[np.argsort(-values[candidate], kind="stable")]
    for c in itertools.chain(forced, ordered):
        piv = span.pivot(c)
        if candidate[c] and piv is not None and rows.size and span.determines(piv, rows):
            hidden[c] = True
            continue
        span.publish(c, piv)
    return hidden


# -- protect ------------------------------------------------------------------------------------


def _repair(solver: _Solver, hidden: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """Hide the cheapest helping cells until A1-A4 pass; raise _Unsafe when none is left.

    For A3 the helper is the smallest published child that lifts the hidden sum to T (else the
    total). For A1, A2 and A4 one integer program finds the cheapest set of published cells
    (cost = value, so small cells first) along which the failing cell can make its move; in one
    dimension that set is the single smallest helping cell.
    """
    hidden = hidden.copy()
    while found := solver.failures(hidden):
        f = found[0]
        if f.rule == "A3":
            e = next(e for e in solver.a3(hidden) if solver.totals[e] == f.j)
            near = solver.a[[e]].indices
            near = near[candidate[near] & ~hidden[near]]
            gap = solver.policy.threshold - int((solver.children[[e]] @ np.where(hidden, solver.v, 0))[0])
            enough = near[(solver.v[near] >= gap) | (near == f.j)]
            helping = enough[np.lexsort((enough, solver.v[enough]))][:1]
        else:
            ev = solver.evaluate(hidden)
            helping = solver.helper(ev, f, candidate)
            if helping.size == 0 and (f.rule == "A4" or not solver.primary[f.j]):  # any move by 1 will do
                helping = solver.helper(ev, replace(f, sign=-f.sign), candidate)
        if helping.size == 0:
            v = solver.violation(f)
            msg = f"no cell left to hide that satisfies {v.rule} at '{v.cell}'"
            raise _Unsafe(msg)
        hidden[helping] = True
    return hidden


def _prune(solver: _Solver, basis: np.ndarray, hidden: np.ndarray, secondary: np.ndarray) -> np.ndarray:
    """Publish again every secondary not needed, largest first."""
    hidden = hidden.copy()
    span = _Span(basis)
    for c in np.flatnonzero(~hidden):
        span.publish(c, span.pivot(c))
    for c in np.flatnonzero(secondary)[np.argsort(-solver.v[secondary], kind="stable")]:
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


def _primary(table: Table, primary_mask: npt.ArrayLike | Flags, reasons: Sequence[str] | None,
             policy: Policy) -> tuple[np.ndarray, np.ndarray]:
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
    small = (v >= 1) & (v < policy.threshold)
    why = np.array([(reasons[i] if reasons is not None and reasons[i] else "primary") for i in range(n)], dtype=object)
    why[small & ~primary] = "primary:count"
    return primary | small, why


def protect(
    table: Table,
    primary_mask: npt.ArrayLike | Flags,
    policy: Policy,
    *,
    reasons: Sequence[str] | None = None,
    milp_time_limit: float = 60.0,
) -> Pattern:
    """Choose secondary suppressions so that the table passes A1-A4 (disclosure.md).

    Counts of 1..T-1 are primary whatever the mask says (fail safe). Zeros are published and
    never secondaries, or hidden with reason ``"policy:zero"`` when the policy does not publish
    zeros (then A1 protects them too).

    Args:
        table: the table (or linked tables) to protect.
        primary_mask: primary cells, a boolean array or :class:`~cohort.disclosure.primary.Flags`.
        policy: the disclosure policy.
        reasons: the primary reason per cell (default from the Flags, else ``"primary"``).
        milp_time_limit: seconds per integer program; an unproven bound fails closed.

    Returns:
        The :class:`Pattern`; ``releasable=False`` (everything hidden) when no safe pattern exists.
    """
    v, n = table.values, table.values.size
    primary, why = _primary(table, primary_mask, reasons, policy)
    zeros_hidden = (v == 0) & (not policy.publish_zeros)
    candidate = ~primary & (v > 0)
    solver = _Solver(table, primary, policy, milp_time_limit)
    try:
        basis = _nullspace(table)
        hidden = _gauss(basis, v, primary | zeros_hidden, candidate)
        hidden = _repair(solver, hidden, candidate)
        hidden = _prune(solver, basis, hidden, hidden & candidate)
        if late := solver.failures(hidden):
            v0 = solver.violation(late[0])
            msg = f"{v0.rule} fails at '{v0.cell}' after pruning"
            raise _Unsafe(msg)
        lo, hi, proven = solver.intervals(hidden)
        if not proven:
            msg = "a bound was not proven within the time limit"
            raise _Unsafe(msg)
    except _Unsafe as exc:
        out = np.where(primary, why, "unreleasable")
        nan = np.full(n, np.nan)
        return Pattern(table, np.ones(n, dtype=bool), tuple(out.tolist()), nan, nan, False, str(exc),
                       solver.milps, solver.lps)
    out = np.where(primary, why, np.where(zeros_hidden, "policy:zero", np.where(hidden, "secondary", "")))
    return Pattern(table, hidden, tuple(out.tolist()), lo, hi, True, "", solver.milps, solver.lps)


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
    solver = _Solver(table, np.zeros(hidden.size, dtype=bool), Policy(), 60.0)
    try:
        lo, hi, proven = solver.intervals(hidden)
    except _Unsafe as exc:
        raise ValueError(str(exc)) from None
    if not proven:
        msg = "bounds: a bound was not proven within the time limit"
        raise ValueError(msg)
    return lo, hi


def check(table: Table, hidden: npt.ArrayLike, primary: npt.ArrayLike, policy: Policy) -> list[Violation]:
    """Every violation of A1-A4 by a pattern (the engine's own check; the auditor is separate).

    Also reports, as rule ``"count"``, any published cell with a value in 1..T-1.
    """
    hidden, primary = np.asarray(hidden, dtype=bool), np.asarray(primary, dtype=bool)
    v = table.values
    found = [Violation("count", table.labels[j], "published count of 1..T-1")
             for j in np.flatnonzero(~hidden & (v >= 1) & (v < policy.threshold))]
    solver = _Solver(table, primary, policy, 60.0)
    return found + [solver.violation(f) for f in solver.failures(hidden, first=False)]
