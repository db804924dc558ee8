"""Primary and secondary suppression over every cell of a release, and the statuses it shows.

The compiled model (:mod:`release.model`) is one table of quantities; it falls apart into
independent components (cells no equation connects), and each is protected on its own with
:func:`disclosure.protect`:

- **primaries**: every count of 1..T-1, whether a table shows it or it is implied (reason
  ``primary:count``; ``primary:complement`` for an implied N - n, ``primary:remainder`` for the
  remainder of a top list; ``primary:overlap`` for the persons in one cell and not in a cell of
  another release, :mod:`release.overlaps`); cells an earlier release protected as primaries stay primaries.
- **implicit** cells are those no released table shows: complements, remainders, the cells of a
  withheld table. They are unknowns; a primary among them is protected like any other.
- **candidates** for secondary suppression are the shown cells that no earlier release decided,
  except the ``contacts`` and ``persons`` of a listed top row (hiding one would let the list's
  order bound it: the remainder is protected through ``total_contacts`` instead).
- cells an earlier release hid are hidden in advance; cells it published are known.
- **events** follow their persons: an events cell of an ``events_of`` relation is hidden whenever
  the persons cell of its row is (reason ``events``).

Percentages, shares and changes are decided last, from the counts' statuses
(``docs/release-format.md``, "Status values").
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from disclosure import Policy, Table, protect
from release.layout import TableLayout
from release.model import Compiled, Model, make_key

__all__ = ["Decision", "Failure", "decide", "ratio_status"]

SUPPRESSED, BELOW = "suppressed", "below-threshold"


@dataclass(frozen=True)
class Failure:
    """A component with no safe pattern: its cells and the reason protect gave."""

    cells: np.ndarray
    reason: str


@dataclass
class Decision:
    """What is hidden, per merged cell, and why."""

    hidden: np.ndarray
    primary: np.ndarray
    reasons: np.ndarray
    failures: list[Failure] = field(default_factory=list)
    milps: int = 0
    lps: int = 0


@dataclass(frozen=True)
class Context:
    """Per merged cell: shown in a released table, fixed visible, and what earlier releases did."""

    shown: np.ndarray  # shown by a table of this release, or published by an earlier one
    shown_now: np.ndarray  # shown by a table of this release
    fixed: np.ndarray  # may not become a secondary (top list rows)
    weights: np.ndarray  # the largest weight of the columns showing the cell (1 for implicit cells)
    earlier_published: np.ndarray
    earlier_hidden: np.ndarray
    earlier_primary: np.ndarray
    events: list[tuple[np.ndarray, np.ndarray]]  # (persons cells, events cells), row by row


def context(model: Model, compiled: Compiled, *, relations: list[dict], earlier_published: set[int] = frozenset(),
            earlier_hidden: set[int] = frozenset(), earlier_primary: set[int] = frozenset()) -> Context:
    """The masks of :func:`decide` from the model's occurrences and the earlier releases' states.

    Args:
        model: the registered cells.
        compiled: the compiled model.
        relations: the release's relations (for ``events_of``).
        earlier_published: registered ids some earlier release published.
        earlier_hidden: registered ids some earlier release hid.
        earlier_primary: registered ids protected as primaries by earlier releases.
    """
    n = compiled.table.values.size
    shown, fixed, weights = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool), np.ones(n)
    for occ in model.occurrences:
        if occ.shown:
            shown[compiled.cell_of[occ.cells]] = True
            np.maximum.at(weights, compiled.cell_of[occ.cells], occ.weight)
            if occ.table == "top" and occ.column in ("contacts", "persons"):
                fixed[compiled.cell_of[occ.cells]] = True
    pub, hid, prim = (np.zeros(n, dtype=bool) for _ in range(3))
    for ids, mask in ((earlier_published, pub), (earlier_hidden, hid), (earlier_primary, prim)):
        mask[compiled.cell_of[np.array(sorted(ids), dtype=np.int64)]] = True
    shown_now = shown.copy()
    shown |= pub  # published earlier: known to everyone
    events = []
    for rel in relations:
        if rel["type"] == "events_of":
            cells = {occ.column: occ.cells for occ in model.occurrences if occ.table == rel["table"]}
            if rel["persons"] in cells and rel["events"] in cells:
                events.append((compiled.cell_of[cells[rel["persons"]]], compiled.cell_of[cells[rel["events"]]]))
    return Context(shown, shown_now, fixed, weights, pub, hid & ~pub, prim, events)


def _sub(table: Table, cells: np.ndarray, equations: list[tuple[int, tuple[int, ...]]]) -> Table:
    local = {int(c): i for i, c in enumerate(cells)}
    eqs = tuple((local[t], tuple(local[c] for c in ch)) for t, ch in equations)
    return Table(table.values[cells], tuple(table.labels[c] for c in cells), table.inner[cells], eqs)


def decide(compiled: Compiled, ctx: Context, policy: Policy, *, time_limit: float = 60.0) -> Decision:
    """Protect every component; hidden cells, their reasons, and the components that failed."""
    table = compiled.table
    v, n = table.values, table.values.size
    implicit = ~ctx.shown
    # A slack (contacts - persons of a row) counts no persons: an unknown, never a primary.
    slack = compiled.kinds == "slack"
    small = (v >= 1) & (v < policy.threshold) & ~slack
    primary = small | (ctx.earlier_primary & ~slack)
    primary_reason = np.where(compiled.kinds == "complement", "primary:complement",
                              np.where(compiled.kinds == "remainder", "primary:remainder",
                                       np.where(compiled.kinds == "overlap", "primary:overlap", "primary:count")))
    forced = ctx.earlier_hidden.copy()
    candidates = ctx.shown & ~ctx.earlier_published & ~ctx.earlier_hidden & ~ctx.fixed
    component = np.empty(n, dtype=np.int64)
    parts = compiled.components()
    for k, cells in enumerate(parts):
        component[cells] = k
    by_component: dict[int, list] = {}
    for eq in table.equations:
        by_component.setdefault(int(component[eq[0]]), []).append(eq)
    out = Decision(np.zeros(n, dtype=bool), primary, np.full(n, "", dtype=object))
    todo = list(range(len(parts)))
    for _ in range(3):  # events may add hidden cells; their components are protected again
        for k in todo:
            _protect_part(out, parts[k], by_component.get(k, []), table, primary, primary_reason, implicit,
                          candidates, forced, ctx.weights, policy, time_limit, slack)
        again = set()
        for persons, events in ctx.events:
            late = out.hidden[persons] & ~out.hidden[events]
            forced[events[late]] = True
            again |= {int(component[c]) for c in events[late]}
        if not again:
            break
        todo = sorted(again)
    for persons, events in ctx.events:
        follow = out.hidden[persons] & (out.reasons[events] == "hidden")
        out.reasons[events[follow]] = "events"
    out.reasons[(out.reasons == "hidden") & ctx.earlier_hidden] = "ledger"
    return out


def _protect_part(out: Decision, cells: np.ndarray, equations: list, table: Table, primary: np.ndarray,
                  primary_reason: np.ndarray, implicit: np.ndarray, candidates: np.ndarray, forced: np.ndarray,
                  weights: np.ndarray, policy: Policy, time_limit: float, slack: np.ndarray) -> None:
    out.failures = [f for f in out.failures if not np.isin(f.cells, cells).any()]
    if not equations:  # a cell no equation touches: hidden exactly when primary (or decided earlier)
        c = cells
        out.hidden[c] = primary[c] | forced[c] | implicit[c]
        out.reasons[c] = np.where(primary[c], primary_reason[c],
                                  np.where(implicit[c], "implicit", np.where(forced[c], "hidden", "")))
        return
    sub = _sub(table, cells, equations)
    pattern = protect(sub, primary[cells], policy, reasons=list(primary_reason[cells]), implicit=implicit[cells],
                      candidates=candidates[cells], hidden=forced[cells], weights=weights[cells],
                      exempt=slack[cells], milp_time_limit=time_limit, intervals=False)
    out.milps += pattern.milp_count
    out.lps += pattern.lp_count
    out.hidden[cells] = pattern.hidden
    out.reasons[cells] = np.array(pattern.reasons, dtype=object)
    if not pattern.releasable:
        out.failures.append(Failure(cells, pattern.reason))


def ratio_status(model: Model, compiled: Compiled, shown_hidden: np.ndarray, shown: np.ndarray,
                 layout: TableLayout, threshold: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Values and statuses of the table's percentages, shares and changes, row by row.

    A ratio is shown only when both its counts are shown in this release and both are >= T
    (disclosure.md, "Percentages and rates"); a change only when both its ratios are.

    Args:
        model: the registered cells (to look keys up).
        compiled: the compiled model.
        shown_hidden: hidden flag per merged cell.
        shown: shown flag per merged cell (in a table released now).
        layout: the table.
        threshold: T.

    Returns:
        Column name -> (values, statuses).
    """
    values = compiled.table.values
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for ratio in layout.ratios:
        cells = []
        for quantity, by in (ratio.numerator, ratio.denominator):
            columns = list(by.values())
            rows = layout.frame.select(columns).rows()
            ids = [model.index[make_key(quantity, dict(zip(by.keys(), row, strict=True)))] for row in rows]
            cells.append(compiled.cell_of[np.array(ids, dtype=np.int64)] if ids else np.array([], dtype=np.int64))
        num, den = cells
        visible = shown[num] & shown[den] & ~shown_hidden[num] & ~shown_hidden[den]
        big = (values[num] >= threshold) & (values[den] >= threshold)
        with np.errstate(divide="ignore", invalid="ignore"):
            value = np.where(visible & big, values[num] / np.maximum(values[den], 1) * ratio.scale, np.nan)
        status = np.where(~visible, SUPPRESSED, np.where(~big, BELOW, ""))
        out[ratio.name] = (value, status.astype(object))
    for change in layout.changes:
        (first, s1), (second, s2) = out[change.first], out[change.second]
        shown_both = (s1 == "") & (s2 == "")
        value = np.where(shown_both, (second - first) * change.scale, np.nan)
        status = np.where((s1 == SUPPRESSED) | (s2 == SUPPRESSED), SUPPRESSED, np.where(shown_both, "", BELOW))
        out[change.name] = (value, status.astype(object))
    return out
