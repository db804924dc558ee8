"""Cell keys and their labels.

A cell is identified by any hashable key; the auditor uses the same key for the same quantity in
every table, so that equations of several releases combine (A5). For cross-classified tables the
key is the set of ``(variable, level)`` pairs that are *not* totalled over: the region-A margin of a
region × sex table and the region-A cell of a one-way region table are both ``cell(region="A")``,
and the grand total of every table over the same population is ``cell()``.
"""

from __future__ import annotations

from collections.abc import Hashable

__all__ = ["CellKey", "cell", "label"]

CellKey = Hashable


def cell(**levels: str) -> frozenset[tuple[str, str]]:
    """Key of a cell of a cross-classified table; omitted variables are totalled over.

    Example:
        ``cell(region="A", sex="F")`` is the region-A women cell, ``cell(region="A")`` the
        region-A margin, ``cell()`` the grand total.
    """
    return frozenset(levels.items())


def label(key: CellKey) -> str:
    """Human-readable label of a cell key (findings and messages name cells only by these)."""
    if isinstance(key, frozenset) and all(isinstance(p, tuple) and len(p) == 2 for p in key):
        if not key:
            return "total"
        return ", ".join(f"{variable}={level}" for variable, level in sorted(key))
    return str(key)
