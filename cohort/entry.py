"""Entry into incidence and index-date cohorts: the index date and the wash-out (``docs/study-schema.md``).

The index date of a record for condition C in year Y is the first day in Y on which it has a record
of C (``cohort.records``; an episode overlapping Y counts from max(start, 1 Jan Y)). An index cohort
enters every record with an index date; an incidence cohort only those with no record of C on any
day of the wash-out [d - W, d - 1] and registered (any practice, registrations merged) on every day
of it.
"""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from cohort.codes import CodeList
from cohort.population import Linked, coverage
from cohort.records import records

__all__ = ["entry"]


def entry(linked: Linked, units: pl.LazyFrame, persons: pl.LazyFrame, conditions: list[tuple[str, CodeList]],
          year: int, washout_days: int | None) -> pl.LazyFrame:
    """patient_id, condition, index_date, entered: one row per record with a record of the condition in ``year``.

    Args:
        linked: the linked layout.
        units: netted claim units (``cohort.outcomes.claim_units``).
        persons: the base population of the year (``patient_id``, ``p2``).
        conditions: (name, code list) per condition of the cohort.
        year: the reference year.
        washout_days: W for an incidence cohort; None for an index cohort (no wash-out).
    """
    jan1, dec31 = date(year, 1, 1), date(year, 12, 31)
    lo = jan1 - timedelta(days=washout_days or 0)
    recs = records(linked, units, persons, conditions, lo, dec31).rename({"key": "condition"})
    index = (
        recs.filter((pl.col("start") <= dec31) & (pl.col("end") >= jan1))
        .group_by("patient_id", "condition")
        .agg(pl.max_horizontal("start", pl.lit(jan1)).min().alias("index_date"))
    )
    if washout_days is None:
        return index.with_columns(pl.lit(True).alias("entered"))
    keys = ["patient_id", "condition"]
    first = pl.col("index_date") - pl.duration(days=washout_days)
    last = pl.col("index_date") - pl.duration(days=1)
    earlier = (
        recs.join(index, on=keys)
        .filter((pl.col("start") <= last) & (pl.col("end") >= first))
        .select(keys).unique().with_columns(pl.lit(True).alias("earlier"))
    )
    window = index.select(*keys, first.alias("lo"), last.alias("hi"))
    covered = coverage(linked.ehr("registrations"), window, tuple(keys))
    return (
        index.join(earlier, on=keys, how="left").join(covered, on=keys, how="left")
        .select(*keys, "index_date",
                (~pl.col("earlier").fill_null(False) & pl.col("covered").fill_null(False)).alias("entered"))
    )
