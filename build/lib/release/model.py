"""The cells of a release and the equations between them (``docs/release-format.md``).

Every count a release shows is a cell of a *quantity*, named by a key: the quantity and the
coordinates of its row, leaving out coordinates at a stratum's ``Total``. Equal keys are one
quantity in every table and every release. :class:`Model` registers the cells of the released
tables, instantiates the relations of :func:`release.layout.relations` over them (margins,
"n of N" complements, the attrition chain, equalities, the remainder of a top list) and merges
keys that relations say are equal. A quantity met twice with two values is a contradiction of
the study's tables (or, with the ledger, two versions of one quantity): it is collected, never
resolved.

The auditor (``audit/``) instantiates the same relations with its own code from the manifest.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from disclosure import Table
from release.layout import TableLayout
from release.study_folder import TOTAL

__all__ = ["Key", "Model", "key_label", "make_key"]

Key = tuple[str, tuple[tuple[str, str], ...]]


def make_key(quantity: str, coordinates: Mapping[str, object]) -> Key:
    """The key of a cell: its quantity and its coordinates, those at ``Total`` left out."""
    return quantity, tuple(sorted((c, str(v)) for c, v in coordinates.items() if str(v) != TOTAL))


def key_label(key: Key) -> str:
    """A cell's label for messages: ``prevalent[condition=diabetes, year=2019]`` (no value)."""
    quantity, coordinates = key
    return f"{quantity}[{', '.join(f'{c}={v}' for c, v in coordinates)}]"


def matches(coords: Mapping[str, str], where: Mapping[str, object]) -> bool:
    """True when the coordinates match ``where`` (a value, or a list of values, per coordinate)."""
    for c, v in where.items():
        wanted = [str(x) for x in v] if isinstance(v, list) else [str(v)]
        if coords.get(c) not in wanted:
            return False
    return True


def listed_hash(groups: Iterable[str]) -> str:
    """Short fingerprint of the listed groups of a top list (the remainder's coordinate)."""
    return hashlib.sha256("\n".join(sorted(groups)).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Occurrence:
    """Where a count column's cells are: one cell id per row of a table."""

    table: str
    column: str
    cells: np.ndarray
    shown: bool
    weight: float = 1.0


class Model:
    """Quantities by key, merged where relations say two keys are one quantity.

    Attributes:
        conflicts: every key met with two values (labels only), to be reported by the caller.
    """

    def __init__(self) -> None:
        self.index: dict[Key, int] = {}
        self.keys: list[Key] = []
        self.parent: list[int] = []
        self.values: list[int] = []
        self.kinds: list[str] = []  # count, complement, remainder, slack (a difference that counts no persons)
        self.units: list[str] = []
        self.equations: list[tuple[int, tuple[int, ...]]] = []
        self.occurrences: list[Occurrence] = []
        self.conflicts: list[str] = []

    # registry -------------------------------------------------------------------------------
    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def add(self, key: Key, value: int, *, kind: str = "count", unit: str = "persons", where: str = "") -> int:
        """The id of ``key``, registered with ``value``; a second, different value is a conflict."""
        if key in self.index:
            i = self.index[key]
            if self.values[self.find(i)] != value:
                self.conflicts.append(f"{key_label(key)}{where}: one quantity with two values")
            return i
        i = len(self.keys)
        self.index[key] = i
        self.keys.append(key)
        self.parent.append(i)
        self.values.append(int(value))
        self.kinds.append(kind)
        self.units.append(unit)
        return i

    def merge(self, a: int, b: int, why: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if self.values[ra] != self.values[rb]:
            self.conflicts.append(f"{key_label(self.keys[a])} and {key_label(self.keys[b])} ({why}): "
                                  "one quantity with two values")
            return
        keep, gone = min(ra, rb), max(ra, rb)
        self.parent[gone] = keep
        if self.kinds[keep] != "count" and self.kinds[gone] == "count":
            self.kinds[keep] = "count"

    def value(self, key: Key) -> int | None:
        i = self.index.get(key)
        return None if i is None else self.values[self.find(i)]

    # tables ---------------------------------------------------------------------------------
    def add_table(self, layout: TableLayout, *, shown: bool) -> None:
        """Register every count cell of a table; ``shown=False`` for a withheld table."""
        for count in layout.counts:
            rows = layout.frame.select(*count.by, count.name).rows()
            ids = np.array([self.add(make_key(count.quantity, dict(zip(count.by, row[:-1], strict=True))), row[-1],
                                     unit=count.unit, where=f" in {layout.name}.{count.name}")
                            for row in rows], dtype=np.int64)
            self.occurrences.append(Occurrence(layout.name, count.name, ids, shown, count.weight))

    # relations ------------------------------------------------------------------------------
    def _by_quantity(self) -> dict[str, list[Key]]:
        out: dict[str, list[Key]] = {}
        for key in self.keys:
            out.setdefault(key[0], []).append(key)
        return out

    def _need(self, key: Key, relation: str) -> int | None:
        i = self.index.get(key)
        if i is None:
            self.conflicts.append(f"{key_label(key)}: named by a {relation} relation but in no table")
        return i

    def apply(self, relations: list[dict], tables: Mapping[str, TableLayout]) -> None:
        """Instantiate the relations over the registered cells (equalities first)."""
        for rel in (r for r in relations if r["type"] in ("equal", "chain")):
            getattr(self, f"_{rel['type']}")(rel)
        for rel in (r for r in relations if r["type"] not in ("equal", "chain")):
            if rel["type"] == "remainder":
                self._remainder(rel, tables[rel["table"]])
            elif rel["type"] != "events_of":
                getattr(self, f"_{rel['type']}")(rel)

    def _equal(self, rel: dict) -> None:
        for key in self._by_quantity().get(rel["left"], []):
            coords = dict(key[1])
            if not matches(coords, rel["where"]):
                continue
            if rel["except"] and all(coords.get(c) == v for c, v in rel["except"].items()):
                continue
            right = make_key(rel["right"], {c: v for c, v in coords.items() if c not in rel["drop"]})
            j = self._need(right, "equal")
            if j is not None:
                self.merge(self.index[key], j, "equal relation")

    def _chain(self, rel: dict) -> None:
        along, order = rel["along"], rel["order"]
        bases = {tuple(p for p in key[1] if p[0] != along)
                 for q in (rel["before"], rel["excluded"], rel["after"]) for key in self._by_quantity().get(q, [])}
        for base in sorted(bases):
            def at(quantity: str, step: str, base: tuple = base) -> int | None:
                return self._need(make_key(quantity, {**dict(base), along: step}), "chain")

            for step in order:
                ids = [at(rel["before"], step), at(rel["excluded"], step), at(rel["after"], step)]
                if None not in ids:
                    self.equations.append((ids[0], (ids[1], ids[2])))
            for step, following in itertools.pairwise(order):
                a, b = at(rel["after"], step), at(rel["before"], following)
                if a is not None and b is not None:
                    self.merge(a, b, "attrition chain")

    def _margin(self, rel: dict) -> None:
        dim, levels = rel["dimension"], rel["levels"]
        bases = {tuple(p for p in key[1] if p[0] != dim) for key in self._by_quantity().get(rel["quantity"], [])}
        for base in sorted(bases):
            total = self._need((rel["quantity"], base), "margin")
            children = [self._need(make_key(rel["quantity"], {**dict(base), dim: lvl}), "margin") for lvl in levels]
            if total is not None and None not in children:
                self.equations.append((total, tuple(children)))  # type: ignore[arg-type]

    def _part_of(self, rel: dict) -> None:
        kind = "complement" if rel.get("protect", True) else "slack"
        for key in list(self._by_quantity().get(rel["part"], [])):
            if not matches(dict(key[1]), rel.get("where", {})):
                continue
            coords = {c: v for c, v in key[1] if c not in rel["drop"]} | rel["set"]
            whole = make_key(rel["whole"], coords)
            if whole == key:
                continue
            j = self._need(whole, "part_of")
            if j is None:
                continue
            i = self.index[key]
            rest = self.values[self.find(j)] - self.values[self.find(i)]
            if rest < 0:
                self.conflicts.append(f"{key_label(key)} exceeds {key_label(whole)}")
                continue
            c = self.add((rel["complement"], key[1]), rest, kind=kind, unit=self.units[i])
            self.equations.append((j, (i, c)))

    def _remainder(self, rel: dict, table: TableLayout) -> None:
        frame = table.frame
        for (year, discipline), rows in frame.group_by(rel["group_by"], maintain_order=True):
            coords = {"year": year, "discipline": discipline}
            total = self._need(make_key("contacts_total", coords), "remainder")
            parts = [self._need(make_key("contacts", {**coords, rel["over"]: g}), "remainder")
                     for g in rows[rel["over"]]]
            if total is None or None in parts:
                continue
            rest = self.values[self.find(total)] - sum(self.values[self.find(p)] for p in parts)  # type: ignore[arg-type]
            key = make_key(rel["remainder"], {**coords, "listed": listed_hash(rows[rel["over"]])})
            r = self.add(key, rest, kind="remainder", unit="events")
            self.equations.append((total, (*parts, r)))  # type: ignore[arg-type]

    def merge_zero_identities(self) -> int:
        """Merge a total with its only child that is not a shown zero (they are one quantity).

        With zeros published, ``total = child + 0 + 0`` tells every reader that the total is the
        child: the two are one quantity, and the person in it is one person, not two (without
        the merge, check A4 would treat a singleton's margin as *another* primary it determines).

        Returns:
            How many pairs were merged.
        """
        shown = set()
        for occ in self.occurrences:
            if occ.shown:
                shown.update(int(self.find(int(i))) for i in occ.cells)
        merged, changed = 0, True
        while changed:
            changed = False
            for total, children in self.equations:
                t = self.find(total)
                rest = [c for c in {self.find(c) for c in children}
                        if not (c in shown and self.values[c] == 0) and c != t]
                if len(rest) == 1 and self.find(rest[0]) != t and self.values[rest[0]] == self.values[t]:
                    self.merge(t, rest[0], "a total of one non-zero child")
                    root = self.find(t)
                    if t in shown or rest[0] in shown:
                        shown.add(root)
                    merged += 1
                    changed = True
        return merged

    # compiled view --------------------------------------------------------------------------
    def compile(self) -> Compiled:
        """The merged quantities as a disclosure :class:`~disclosure.Table`."""
        roots = np.array([self.find(i) for i in range(len(self.keys))], dtype=np.int64)
        unique, cell_of = np.unique(roots, return_inverse=True)
        values = np.array(self.values, dtype=np.int64)[unique]
        equations, seen = [], set()
        for total, children in self.equations:
            t, ch = int(cell_of[total]), tuple(sorted(int(cell_of[c]) for c in children))
            if (t, ch) in seen or t in ch:
                continue  # a repeat, or a total merged with a child: the others are zeros
            seen.add((t, ch))
            equations.append((t, ch))
        totals = {t for t, _ in equations}
        inner = np.array([i not in totals for i in range(unique.size)], dtype=bool)
        labels = tuple(key_label(self.keys[i]) for i in unique)
        keys: list[list[Key]] = [[] for _ in unique]
        for i, c in enumerate(cell_of):
            keys[c].append(self.keys[i])
        kinds = np.array([self.kinds[i] for i in unique], dtype=object)
        units = np.array([self.units[i] for i in unique], dtype=object)
        return Compiled(Table(values, labels, inner, tuple(equations)), cell_of, keys, kinds, units)


@dataclass(frozen=True, eq=False)
class Compiled:
    """The model as one table: ``cell_of`` maps a registered key id to its merged cell."""

    table: Table
    cell_of: np.ndarray
    keys: list[list[Key]]
    kinds: np.ndarray
    units: np.ndarray

    def components(self) -> list[np.ndarray]:
        """Cells grouped by the equations that connect them (independent sub-tables)."""
        from scipy.sparse import coo_array
        from scipy.sparse.csgraph import connected_components

        n = self.table.values.size
        rows, cols = [], []
        for total, children in self.table.equations:
            rows += [total] * len(children)
            cols += list(children)
        graph = coo_array((np.ones(len(rows)), (rows, cols)), shape=(n, n))
        _, label = connected_components(graph, directed=False)
        order = np.argsort(label, kind="stable")
        return np.split(order, np.flatnonzero(np.diff(label[order])) + 1)


def frame_cells(model: Model, table: str, column: str) -> np.ndarray | None:
    """The registered ids of a column's cells, one per row (None if the column has no cells)."""
    for occ in model.occurrences:
        if occ.table == table and occ.column == column:
            return occ.cells
    return None

