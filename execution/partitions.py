"""Which partition a person's rows belong to.

A person number of the linked layout (``p2``) is the rank of a pseudorandom label
(:mod:`linkage.link`), so ``p2 mod K`` already spreads persons evenly and says nothing about them.
A record without a person number (an unlinked GP record) goes by a hash of its record id: stable
within one installation of polars, which is all a run needs (partitions are never compared across
installations).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

__all__ = ["Partition", "partitions", "person_partition"]


@dataclass(frozen=True, order=True)
class Partition:
    """Partition ``index`` of ``count`` (0 <= index < count)."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not (isinstance(self.count, int) and self.count >= 1 and 0 <= self.index < self.count):
            raise ValueError(f"a partition is 0 <= index < count with count >= 1, not {self.index} of {self.count}")


def partitions(count: int) -> list[Partition]:
    """The ``count`` partitions of a run, in order."""
    return [Partition(i, count) for i in range(count)]


def person_partition(count: int, person: str = "p2", record: str | None = "patient_id") -> pl.Expr:
    """The partition (0..count-1) of each row: ``person mod count``; rows without a person number
    go by a hash of ``record`` (or to partition 0 when ``record`` is None)."""
    by_person = (pl.col(person) % count).cast(pl.Int64)
    fallback = (pl.col(record).hash(seed=14) % count).cast(pl.Int64) if record else pl.lit(0, pl.Int64)
    return pl.when(pl.col(person).is_not_null()).then(by_person).otherwise(fallback)
