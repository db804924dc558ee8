"""What the auditor knows about one released table: cells, equations, what is hidden.

Cells are keyed as :mod:`audit.cells` says, so that the same quantity has the same key in every
table. :func:`crossed_equations` rebuilds the margin equations of a cross-classification from its
variables and levels.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from audit.cells import CellKey, cell
from audit.intervals import Equation

__all__ = ["AuditTable", "Percentage", "PointChange", "crossed_equations", "crossed_values"]


def crossed_equations(variables: Mapping[str, Sequence[str]]) -> tuple[Equation, ...]:
    """Every margin equation of a full cross-classification with all its margins.

    For each cell (inner or margin) and each variable it totals over, one equation: the cell equals
    the sum over that variable's levels. A 2 × 2 × 2 table yields the 19 margin cells' equations,
    redundant ones included (redundancy does not change the feasible set).

    Args:
        variables: Variable name to its levels, e.g. ``{"region": "ABCD", "sex": "MF"}``.

    Returns:
        The equations, keyed by :func:`cell`.
    """
    if not variables:
        msg = "variables is empty; expected at least one variable with levels"
        raise ValueError(msg)
    for name, levels in variables.items():
        if len(set(levels)) != len(levels) or not levels:
            msg = f"variable {name!r} must have distinct, non-empty levels; got {list(levels)!r}"
            raise ValueError(msg)
    names = list(variables)
    equations = []
    # Each variable is either at one of its levels or totalled over (None).
    for choice in itertools.product(*([*variables[n], None] for n in names)):
        fixed = {n: level for n, level in zip(names, choice, strict=True) if level is not None}
        for n in names:
            if n in fixed:
                continue
            children = tuple(cell(**fixed, **{n: level}) for level in variables[n])
            equations.append(Equation(cell(**fixed), children))
    return tuple(equations)


def crossed_values(
    variables: Mapping[str, Sequence[str]], inner: Mapping[tuple[str, ...], int]
) -> dict[CellKey, int]:
    """Every cell's value (inner cells and all margins) of a cross-classification.

    Args:
        variables: Variable name to its levels, as for :func:`crossed_equations`.
        inner: Count per combination of levels, in the order of ``variables``; missing
            combinations count 0.

    Returns:
        Value per :func:`cell` key, margins included.
    """
    names = list(variables)
    unknown = [
        levels
        for levels in inner
        if len(levels) != len(names)
        or any(level not in variables[n] for n, level in zip(names, levels, strict=False))
    ]
    if unknown:
        msg = (
            f"inner has {len(unknown)} key(s) that are not combinations of levels, "
            f"e.g. {unknown[0]!r}"
        )
        raise ValueError(msg)
    values: dict[CellKey, int] = {}
    for choice in itertools.product(*([*variables[n], None] for n in names)):
        fixed = {n: level for n, level in zip(names, choice, strict=True) if level is not None}
        key = cell(**fixed)
        values[key] = sum(
            count for levels, count in inner.items()
            if all(c is None or c == level for c, level in zip(choice, levels, strict=True))
        )
    return values


@dataclass(frozen=True)
class Percentage:
    """A percentage column entry ``numerator / denominator`` of the table.

    Attributes:
        name: Label of the percentage (used in findings).
        numerator: Key of the count cell it divides.
        denominator: Key of the count cell it divides by.
        shown: Whether the release shows the percentage.
    """

    name: str
    numerator: CellKey
    denominator: CellKey
    shown: bool


@dataclass(frozen=True)
class PointChange:
    """A percentage-point change between two percentages of the table.

    Attributes:
        name: Label of the change (used in findings).
        first: Name of the first :class:`Percentage`.
        second: Name of the second :class:`Percentage`.
        shown: Whether the release shows the change.
    """

    name: str
    first: str
    second: str
    shown: bool


@dataclass(frozen=True)
class AuditTable:
    """One released table as the auditor sees it.

    Attributes:
        name: Table name (file name in the release).
        equations: The table's additive equations, rebuilt from its labels.
        published: Values of the published count cells.
        hidden: Keys of the hidden count cells.
        primary: Hidden cells known to be primaries. A release must not mark them (marking a
            cell secondary tells it is >= T), so this is empty in release mode unless the engine's
            working folder is at hand.
        percentages: Percentages of the table.
        changes: Percentage-point changes of the table.
    """

    name: str
    equations: tuple[Equation, ...]
    published: Mapping[CellKey, int]
    hidden: frozenset[CellKey]
    primary: frozenset[CellKey] = frozenset()
    percentages: tuple[Percentage, ...] = ()
    changes: tuple[PointChange, ...] = field(default=())

    def __post_init__(self) -> None:
        both = self.hidden & set(self.published)
        if both:
            msg = f"table {self.name!r}: {len(both)} cell(s) both published and hidden"
            raise ValueError(msg)
        stray = self.primary - self.hidden
        if stray:
            msg = f"table {self.name!r}: {len(stray)} primary cell(s) are not hidden"
            raise ValueError(msg)

    @classmethod
    def from_values(
        cls,
        name: str,
        equations: Iterable[Equation],
        values: Mapping[CellKey, int],
        hidden: Iterable[CellKey],
        *,
        primary: Iterable[CellKey] = (),
        percentages: Iterable[Percentage] = (),
        changes: Iterable[PointChange] = (),
    ) -> AuditTable:
        """The release of a table whose every value is known (the engine's side, or a test).

        Args:
            name: Table name.
            equations: The table's equations.
            values: The true value of every cell.
            hidden: Keys of the cells the release hides.
            primary: Hidden cells marked primary.
            percentages: Percentages of the table.
            changes: Percentage-point changes of the table.

        Returns:
            The table with every cell not in ``hidden`` published at its true value.
        """
        hidden = frozenset(hidden)
        missing = hidden - set(values)
        if missing:
            msg = f"table {name!r}: {len(missing)} hidden cell(s) have no value"
            raise ValueError(msg)
        return cls(
            name=name,
            equations=tuple(equations),
            published={key: value for key, value in values.items() if key not in hidden},
            hidden=hidden,
            primary=frozenset(primary),
            percentages=tuple(percentages),
            changes=tuple(changes),
        )
