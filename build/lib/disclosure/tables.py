"""Tables of counts with additive equations (disclosure.md, "Secondary suppression").

A :class:`Table` is a vector of non-negative integer cells and a list of additive equations
(``total = sum(children)``), built for 1-, 2- and 3-D tables with all margins by
:func:`table_1d`, :func:`table_2d`, :func:`table_3d` (:func:`table_nd` in general) and joined by
:func:`link_tables` when tables released together share a quantity (the same N in several
tables is one variable, so it is suppressed consistently). The release layer
(:mod:`release`) builds tables of any shape directly from cells and equations.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy import sparse

__all__ = ["TOTAL", "Table", "link_tables", "table_1d", "table_2d", "table_3d", "table_nd"]

TOTAL = "Total"


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
