"""Cell keys and their labels.

A cell is identified by any hashable key; the auditor uses the same key for the same quantity in
every table, so that equations of several releases combine (A5). For cross-classified tables the
key is the set of ``(variable, level)`` pairs that are *not* totalled over: the region-A margin of a
region × sex table and the region-A cell of a one-way region table are both ``cell(region="A")``,
and the grand total of every table over the same population is ``cell()``.

A release folder (``docs/release-format.md``) names its cells by *quantity keys*:
``(quantity, ((coordinate, value), ...))`` with the coordinates sorted and those at a stratum's
total left out, built by :func:`quantity_key`.
"""

from __future__ import annotations

from collections.abc import Hashable

__all__ = ["CellKey", "cell", "label", "quantity_key"]

CellKey = Hashable


def cell(**levels: str) -> frozenset[tuple[str, str]]:
    """Key of a cell of a cross-classified table; omitted variables are totalled over.

    Example:
        ``cell(region="A", sex="F")`` is the region-A women cell, ``cell(region="A")`` the
        region-A margin, ``cell()`` the grand total.
    """
    return frozenset(levels.items())


def label(key: CellKey) -> str:
    """Human-readable label of a cell key (findings and messages name cells only by these).

    A release's quantity key ``(quantity, ((coordinate, value), ...))`` reads
    ``prevalent[condition=diabetes, year=2019]``.
    """
    if isinstance(key, frozenset) and all(isinstance(p, tuple) and len(p) == 2 for p in key):
        if not key:
            return "total"
        return ", ".join(f"{variable}={level}" for variable, level in sorted(key))
    if (isinstance(key, tuple) and len(key) == 2 and isinstance(key[0], str) and isinstance(key[1], tuple)
            and all(isinstance(p, tuple) and len(p) == 2 for p in key[1])):
        return f"{key[0]}[{', '.join(f'{c}={v}' for c, v in key[1])}]"
    return str(key)


def quantity_key(quantity: str, coordinates: dict[str, object], totals: dict[str, str] | None = None
                 ) -> tuple[str, tuple[tuple[str, str], ...]]:
    """Key of a release's cell: its quantity and its coordinates as strings, totals left out.

    Args:
        quantity: The quantity (``prevalent``, ``care_use``, ...).
        coordinates: Coordinate name to value.
        totals: Coordinate name to its total label; a coordinate at its total is left out.
    """
    totals = totals or {}
    return quantity, tuple(sorted(
        (str(c), str(v)) for c, v in coordinates.items() if c not in totals or str(v) != totals[c]))
