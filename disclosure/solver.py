"""Exact integer bounds and the checks A1-A4 of a suppression pattern (disclosure.md, "The auditor").

A hidden cell's interval is the min and max of its value over the non-negative integers
satisfying every equation with the published cells fixed (``scipy.optimize.milp``). In three
dimensions the LP relaxation can move a cell the integers pin, so an LP bound is never trusted:
an LP optimum counts only when it is itself integral.

Speed (issue 5: a 10 x 8 x 5 table with all margins in well under 10 s). Programs are solved per
connected component of the hidden cells and over the hidden cells only. A check "cell j can
reach v_j + d" is answered by a *witness*, a full integer solution; witnesses are minimal moves
(min |y| with A y = 0), so they are sparse and stay valid when other cells are published again,
and a requirement a stored witness already meets costs nothing. Outer bounds from single
equations reject impossible targets at once. An LP optimum is used only when it is integral and
checked exactly (then it *is* the integer optimum); otherwise ``milp`` decides.

*Free* cells are implicit quantities that are never published and carry no requirement of their
own (a complement N - n of 0 or >= T, a slack): unknowns in every program, exempt from A1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, linprog, milp
from scipy.sparse.csgraph import connected_components

from disclosure.policy import Policy
from disclosure.tables import Table

__all__ = ["Eval", "Failure", "Solver", "Unsafe", "Violation"]

UNBOUNDED = np.iinfo(np.int64).max // 4  # "no outer bound" in the integer bound arrays


@dataclass(frozen=True, slots=True)
class Violation:
    """A failed check: the rule (A1-A4), the cell or total it concerns (a label), and why.

    ``known`` names the singleton assumed known for an A4 violation ("" otherwise).
    """

    rule: str
    cell: str
    message: str
    known: str = ""



class Unsafe(Exception):
    """No safe pattern: the table must not be released (fail closed)."""


@dataclass(eq=False)
class Eval:
    """One candidate pattern: hidden cells, their components, outer bounds and valid witnesses."""

    hidden: np.ndarray
    comp: np.ndarray  # component id per cell, -1 for published cells
    lb: np.ndarray  # outer bounds from single equations: lb <= any feasible value <= ub
    ub: np.ndarray
    rows: np.ndarray  # ids of the witnesses (pool rows) feasible for this pattern
    det: np.ndarray  # hidden cells the published ones determine (Solver.determined): they never move


@dataclass(frozen=True, slots=True)
class Failure:
    """A failed requirement: cell j must move by ``amount`` in direction ``sign`` (s fixed at 1)."""

    rule: str
    j: int
    sign: int = 1
    amount: int = 1
    singleton: int = -1
    implied: bool = False  # A3 under a hidden total that the release determines


class Solver:
    """Exact integer bounds and checks A1-A4 for patterns of one table.

    A requirement "cell j can reach v_j + sign * amount" is met by a *witness*: a full integer
    vector that satisfies every equation, is non-negative and agrees with the published cells.
    Witnesses are found as minimal moves y (A y = 0, min |y|), so they are sparse and stay valid
    when other cells are published again; an LP optimum is accepted only when it is integral
    (then it is the integer optimum too), otherwise the integer program decides.
    """

    def __init__(self, table: Table, primary: np.ndarray, policy: Policy, time_limit: float,
                 free: np.ndarray | None = None, cost: np.ndarray | None = None,
                 exempt: np.ndarray | None = None) -> None:
        self.t, self.v, self.policy, self.time_limit = table, table.values, policy, time_limit
        self.primary = primary
        # What hiding a cell costs: its value, times a weight when some cells matter more.
        self.cost = self.v.astype(float) if cost is None else np.asarray(cost, dtype=float)
        self.free = np.zeros(self.v.size, dtype=bool) if free is None else free & ~primary
        # Slacks (a difference that counts no persons): a sum that holds one is no count of persons.
        self.exempt = np.zeros(self.v.size, dtype=bool) if exempt is None else exempt & self.free
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
    def _remember(self, ev: Eval, witness: np.ndarray) -> None:
        if self.npool == self.pool.shape[0]:
            if self.npool >= 8192:
                return
            self.pool = np.vstack([self.pool, np.empty_like(self.pool)])
        self.pool[self.npool] = witness
        ev.rows = np.append(ev.rows, self.npool)
        self.npool += 1

    def evaluate(self, hidden: np.ndarray) -> Eval:
        # A determined cell (N - n of shown counts) cannot move: it is left out of the components,
        # which would otherwise glue every table of a release with domain relations into one.
        det = self.determined(hidden)
        h = np.flatnonzero(hidden & ~det)
        comp = np.full(self.v.size, -1)
        if h.size:
            inc = abs(self.a_csc[:, h])
            _, labels = connected_components((inc.T @ inc) != 0, directed=False)
            comp[h] = labels
        d = np.flatnonzero(det)
        comp[d] = -2 - d  # each determined cell alone
        hv = np.where(hidden, self.v, 0)
        sums = self.children @ hv  # hidden children's sum per equation
        lb, ub = np.zeros(self.v.size, dtype=np.int64), np.full(self.v.size, UNBOUNDED, dtype=np.int64)
        open_total = ~hidden[self.totals]
        sel = open_total[self.entry_eq]
        np.minimum.at(ub, self.entry_cell[sel], sums[self.entry_eq[sel]])
        np.maximum.at(lb, self.totals[~open_total], (self.v[self.totals] - sums)[~open_total])
        pub = np.flatnonzero(~hidden)
        ok = ~(self.pool[: self.npool][:, pub] != self.v[pub]).any(axis=1)
        return Eval(hidden, comp, lb, ub, np.flatnonzero(ok), det)

    def _column(self, ev: Eval, j: int, fixed: tuple[tuple[int, int], ...]) -> np.ndarray:
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

    def _move(self, ev: Eval, j: int, fixed: tuple[tuple[int, int], ...], *, sign: int, amount: int,
              cost: np.ndarray | None = None, movable: np.ndarray | None = None, mode: str = "exact",
              ) -> np.ndarray | None:
        """A move y (A y = 0, v + y >= 0) with sign * y_j >= amount and minimal cost |y|.

        Moves are over the hidden cells of j's component, or over ``movable`` cells. An LP
        optimum is accepted when integral; otherwise ``mode`` decides: "exact" asks the integer
        program for any integer move (a check), "relaxed" returns the fractional LP move (a
        repair heuristic, never a check), "integer" asks the integer program with a time limit,
        "local" only the LP (None: not found, which proves nothing).

        A check first looks near j (the hidden cells three equations away, :meth:`_near`): a move
        there is a move of the whole component (the other cells stay put, every equation touching
        a moved cell holds), and its program is a fraction of the component's. Only a move that
        is not found there needs the whole component (and only that proves there is none).

        Returns:
            The move as a full vector (float when relaxed), or None when there is none (or the
            time-limited integer program found none).
        """
        if movable is None and mode == "exact":
            near = self._near(ev, j)
            if near.sum() < (ev.comp == ev.comp[j]).sum():
                move = self._move(ev, j, fixed, sign=sign, amount=amount, cost=cost, movable=near, mode="local")
                if move is not None:
                    return move
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
            if mode == "local":
                return None
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
                raise Unsafe(msg)
            y = res.x
        y = np.round(y).astype(np.int64)
        out = np.zeros(self.v.size, dtype=np.int64)
        out[cells] = y[:k] - y[k:]
        return out

    def _near(self, ev: Eval, j: int, depth: int = 3) -> np.ndarray:
        """Mask of the hidden cells of j's component at most ``depth`` equations away from j."""
        same = ev.comp == ev.comp[j]
        cells = np.array([j])
        for _ in range(depth):
            rows = np.unique(self.a_csc[:, cells].tocoo().row)
            cells = np.unique(self.a[rows].indices)
            cells = cells[same[cells]]
        out = np.zeros(self.v.size, dtype=bool)
        out[cells] = True
        return out

    def reach(self, ev: Eval, j: int, sign: int, amount: int, fixed: tuple[tuple[int, int], ...] = ()) -> bool:
        """Is there a feasible integer solution with sign * (x_j - v_j) >= amount?"""
        target = self.v[j] + sign * amount
        if ev.det[j] or target < ev.lb[j] or target > ev.ub[j]:
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

    def extreme(self, ev: Eval, j: int, sign: int) -> tuple[float, bool]:
        """Min (sign -1) or max (+1) of cell j over the integers, exact; inf when only the box bounds it.

        An outer bound reached by a witness is exact. Otherwise the LP over the component: its
        optimum rounded inwards is an outer bound too, exact when a witness reaches it; only then
        is the integer program asked.
        """
        if ev.det[j]:
            return float(self.v[j]), True
        key = ("extreme", np.flatnonzero(ev.comp == ev.comp[j]).tobytes(), j, sign)
        if key in self.cache:
            return self.cache[key]
        col = self._column(ev, j, ())
        bound = ev.lb[j] if sign < 0 else ev.ub[j]
        if bound < UNBOUNDED and (col == bound).any():
            return float(bound), True
        cells = np.flatnonzero(ev.comp == ev.comp[j])
        sub, rows = self._system(cells)
        rhs = -(self.a[rows] @ np.where(ev.hidden & ~ev.det, 0, self.v)).astype(float)
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
            raise Unsafe(msg)
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
                raise Unsafe(msg)
            best, proven = np.round(res.x), res.status == 0
        witness = self.v.copy()
        witness[cells] = best.astype(np.int64)
        self._remember(ev, witness)
        value = witness[j]
        out = float(value), proven
        self.cache[key] = out
        return out

    def helper(self, ev: Eval, f: Failure, candidate: np.ndarray) -> np.ndarray:
        """The cheapest published cells whose hiding lets cell f.j make its move (cost = value).

        In order: the support of the cheapest LP move; else the single cheapest cell that is
        enough, among f.j's line-mates and then the component's neighbours; else the cheapest
        integer move found within a time limit; else any integer move (pruning removes the
        cells it did not need).
        """
        fixed = ((f.singleton, 1),) if f.singleton >= 0 else ()
        movable = ev.hidden | candidate
        cost = np.where(ev.hidden, 0.01, self.cost)
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
            for c in near[np.lexsort((near, self.cost[near]))][:limit]:
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
    def determined(self, hidden: np.ndarray) -> np.ndarray:
        """Hidden cells that an equation with every other cell known determines, repeatedly
        (a complement N - n of shown counts, then whatever that one pins in turn)."""
        key = ("determined", hidden.tobytes())
        if key not in self.cache:
            known = ~hidden
            incidence = (self.a != 0).astype(np.int64).tocsr()
            while True:
                open_ = incidence @ (~known).astype(np.int64)
                rows = np.flatnonzero(open_ == 1)
                if rows.size == 0:
                    break
                cells = incidence[rows].indices[~known[incidence[rows].indices]]
                known[cells] = True
            self.cache[key] = known & hidden
        return self.cache[key]  # type: ignore[return-value]

    def a3(self, hidden: np.ndarray) -> np.ndarray:
        """Equations whose total is known (published, or determined by the published cells) and
        whose undetermined hidden children sum to 1..T-1 (A3, over implied cells too: a margin of
        complements, issue 11 item 6).

        An equation with a hidden slack among its children sums no persons and is left out.
        """
        det = self.determined(hidden)
        loose = hidden & ~det
        n_loose = self.children @ loose.astype(np.int64)
        # With no undetermined child left, the sum is that of the hidden children (under a
        # published total: each is then exact, A1 says so too).
        h = np.where(n_loose > 0, self.children @ np.where(loose, self.v, 0), self.children @ np.where(hidden, self.v, 0))
        persons = (self.children @ (hidden & self.exempt).astype(np.int64)) == 0
        known_total = np.where(n_loose > 0, ~loose[self.totals], ~hidden[self.totals])
        return np.flatnonzero(known_total & (h >= 1) & (h < self.policy.threshold) & persons)

    def _cell(self, ev: Eval, j: int, fixed: tuple[tuple[int, int], ...] = ()) -> Failure | None:
        s = fixed[0][0] if fixed else -1
        if self.primary[j] and not fixed:
            for sign, amount in ((-1, int(self.down[j])), (1, int(self.up[j]))):
                if not self.reach(ev, j, sign, amount):
                    moves = self.reach(ev, j, 1, 1) or self.reach(ev, j, -1, 1)
                    return Failure("A2" if moves else "A1", j, sign, amount)
            return None
        if self.reach(ev, j, 1, 1, fixed) or self.reach(ev, j, -1, 1, fixed):
            return None
        if fixed and self.tied(ev, j, s):
            return None  # j moves with the singleton: the singleton's own quantity, no one else's
        return Failure("A4" if fixed else "A1", j, 1, 1, s)

    def tied(self, ev: Eval, j: int, s: int) -> bool:
        """Is ``x_j - x_s`` the same in every feasible integer solution (the two move together)?

        Then knowing the singleton ``s`` tells ``j`` and nothing more than the release already
        does: with zeros published, a margin over one non-zero cell, or the complements of one
        part in one whole, are one quantity in two names (A4 does not count it as *another*
        primary; the auditor's ``difference_fixed``). Proven only by infeasibility: an LP with no
        move ``y_j - y_s != 0`` has no integer one; otherwise the integer program decides.
        """
        if ev.comp[j] != ev.comp[s]:
            return False
        key = ("tied", np.flatnonzero(ev.comp == ev.comp[j]).tobytes(), *sorted((j, s)))
        if key not in self.cache:
            self.cache[key] = not any(self._differ(ev, j, s, sign) for sign in (1, -1))
        return bool(self.cache[key])

    def _differ(self, ev: Eval, j: int, s: int, sign: int) -> bool:
        """Is there an integer move y (A y = 0, v + y >= 0) with sign * (y_j - y_s) >= 1?"""
        cells = np.flatnonzero(ev.comp == ev.comp[j])
        k = cells.size
        pj, ps = np.searchsorted(cells, j), np.searchsorted(cells, s)
        sub, _ = self._system(cells)
        mat = sparse.hstack([sub, -sub]).tocsr()
        bounds = np.c_[np.zeros(2 * k), np.concatenate([np.full(k, np.inf), self.v[cells]])]
        row = np.zeros(2 * k)
        row[[pj, k + ps]] -= sign
        row[[k + pj, ps]] += sign
        zero = np.zeros(mat.shape[0])
        res = linprog(np.ones(2 * k), A_ub=row[None, :], b_ub=[-1.0], A_eq=mat, b_eq=zero, bounds=bounds,
                      method="highs")
        self.lps += 1
        if res.status == 2:
            return False
        if res.status == 0:
            y = np.round(res.x)
            if np.abs(res.x - y).max() <= 1e-7 and not (mat @ y).any() and row @ y <= -1:
                return True
        res = milp(np.zeros(2 * k), integrality=np.ones(2 * k), bounds=Bounds(bounds[:, 0], bounds[:, 1]),
                   constraints=[LinearConstraint(mat, zero, zero), LinearConstraint(row[None, :], -np.inf, -1.0)],
                   options={"time_limit": self.time_limit})
        self.milps += 1
        return res.status != 2  # a move, or not decided in time: not proven tied (fail closed)

    def failures(self, hidden: np.ndarray, *, cells: np.ndarray | None = None, first: bool = True) -> list[Failure]:
        """Failed requirements of A1-A4; only around ``cells`` (hidden ids) if given."""
        found = [Failure("A3", int(self.totals[e]), implied=bool(hidden[self.totals[e]])) for e in self.a3(hidden)]
        if found and first:
            return found[:1]
        ev = self.evaluate(hidden)
        cells = np.flatnonzero(hidden) if cells is None else np.asarray(cells, dtype=np.int64)
        cells = cells[~self.free[cells]]  # free cells may be determined: no requirement
        comps = {ev.comp[c] for c in cells}
        # Requirements the stored witnesses meet cost nothing: all at once, before any program.
        open_ = cells[~self._met(ev, cells, ev.rows)]
        for j in sorted(open_, key=lambda c: (not self.primary[c], c)):
            if (f := self._cell(ev, int(j))) is not None:
                found.append(f)
                if first:
                    return found
        for s in np.flatnonzero(hidden & self.primary & (self.v == 1)):
            if ev.comp[s] in comps:
                js = np.flatnonzero((ev.comp == ev.comp[s]) & self.primary)
                js = js[js != s]
                rows = ev.rows[self.pool[ev.rows, s] == self.v[s]]
                for j in js[~self._met(ev, js, rows, moved=True)]:
                    if (f := self._cell(ev, int(j), ((int(s), 1),))) is not None:
                        found.append(f)
                        if first:
                            return found
        return found

    def _met(self, ev: Eval, cells: np.ndarray, rows: np.ndarray, *, moved: bool = False) -> np.ndarray:
        """Per cell: do the witnesses ``rows`` show every move its requirement asks for?

        A primary must reach v - min(v, P) and v + P (A2), any other cell v - 1 or v + 1 (A1);
        with ``moved`` any move at all will do (A4 with a singleton fixed). Determined cells never
        move in a witness, so a cell a witness moves is open.
        """
        if cells.size == 0 or rows.size == 0:
            return np.zeros(cells.size, dtype=bool)
        delta = self.pool[np.ix_(rows, cells)] - self.v[cells]
        high, low = delta.max(axis=0), delta.min(axis=0)
        if moved:
            return (high >= 1) | (low <= -1)
        primary = self.primary[cells]
        return np.where(primary, (high >= self.up[cells]) & (-low >= self.down[cells]), (high >= 1) | (low <= -1))

    def violation(self, f: Failure) -> Violation:
        labels = self.t.labels
        if f.rule == "A3":
            under = "determined implied total" if f.implied else "published total"
            return Violation("A3", labels[f.j], f"the hidden children's derivable sum under a {under} is 1..T-1")
        if f.rule == "A2":
            side = "below" if f.sign < 0 else "above"
            return Violation("A2", labels[f.j], f"cannot move {side} its value by the protection margin")
        if f.rule == "A4":
            return Violation("A4", labels[f.j], "exactly determined once the singleton is known", labels[f.singleton])
        return Violation("A1", labels[f.j], "exactly determined")

    def intervals(self, hidden: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
        """Exact [lo, hi] of every hidden cell but the free ones (NaN); the flag is False when a
        bound is not proven."""
        ev = self.evaluate(hidden)
        lo, hi = self.v.astype(float), self.v.astype(float)
        lo[hidden & self.free] = hi[hidden & self.free] = np.nan
        proven = True
        for j in np.flatnonzero(hidden & ~self.free):
            (lo[j], ok_lo), (hi[j], ok_hi) = self.extreme(ev, j, -1), self.extreme(ev, j, 1)
            proven = proven and ok_lo and ok_hi
        return lo, hi, proven
