"""Claimed costs of a cohort per sector: the magnitude outcome (issue 12, item 3).

Interface (the cohort definition language calls :func:`cost_table` for its cost outcomes)::

    cost_table(units, cohort, keys, *, sectors, window=None) -> pl.DataFrame

- ``units``: netted claim units (``method.md`` 9.4; :func:`cohort.outcomes.claim_units` with
  ``cost=True``), one row
  per unit with a cost > 0, with at least ``p2``, ``sector``, ``service_date`` and ``cost`` (euros,
  a Decimal with cents or a float holding cents exactly).
- ``cohort``: one row per person and cell, with ``p2`` (null for persons without claims: they are
  in the cohort and cost nothing) and the cell's key columns ``keys`` (e.g. ``year``,
  ``condition`` and the strata). A person may be in several cells (two conditions).
- ``window``: which units count for a cohort row. ``None``: units whose service date falls in the
  calendar year of the row's ``year`` column (today's prevalence study); ``(start, end)``: names
  of two date columns of ``cohort``, both ends included (index-date cohorts with follow-up).
- ``sectors``: the claims sectors to report; every one gets a row in every cell, 0 when nobody
  had a cost there.

The result has one row per cell and sector, sorted by ``keys`` then ``sector``, with
:data:`COST_COLUMNS`: the persons with a cost > 0, their total in cents, the mean per such person
in euros (null over nobody), and the largest and second-largest *per-person* contribution in
cents (a person's units summed first: one person's many claims are one contributor). Cents are
integers so that the p %-rule and dominance (:func:`disclosure.magnitude_stats_rule`) compare
exactly at their thresholds.

These are pre-disclosure statistics: ``largest_cents`` and ``second_cents`` describe single
persons. They stay in the study folder; the release publishes totals and means only where the
magnitude rules allow, and never these two columns (``docs/release-format.md``, "costs").
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

__all__ = ["COST_COLUMNS", "cost_cells", "cost_table", "merge_cost_tables"]

COST_COLUMNS = {
    "persons": pl.Int64,
    "total_cents": pl.Int64,
    "mean": pl.Float64,
    "largest_cents": pl.Int64,
    "second_cents": pl.Int64,
}


def _columns(frame: pl.LazyFrame, needed: Sequence[str], what: str) -> None:
    have = frame.collect_schema().names()
    missing = [c for c in needed if c not in have]
    if missing:
        msg = f"{what}: expected columns {list(needed)}; missing {missing}"
        raise ValueError(msg)


def cost_table(units: pl.LazyFrame, cohort: pl.LazyFrame | pl.DataFrame, keys: Sequence[str], *,
               sectors: Sequence[str], window: tuple[str, str] | None = None) -> pl.DataFrame:
    """The cost table alone (:func:`cost_cells` without its payers)."""
    return cost_cells(units, cohort, keys, sectors=sectors, window=window)[0]


def cost_cells(units: pl.LazyFrame, cohort: pl.LazyFrame | pl.DataFrame, keys: Sequence[str], *,
               sectors: Sequence[str], window: tuple[str, str] | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Per cell of ``cohort`` and sector: persons with a cost, total, mean, top two contributions.

    Args:
        units: netted claim units (``p2``, ``sector``, ``service_date``, ``cost``).
        cohort: persons (``p2``) with their cells' key columns ``keys`` (and window columns).
        keys: the cell's key columns, in output order.
        sectors: the claims sectors to report.
        window: ``(start, end)`` date columns of ``cohort``; None: the calendar year ``year``.

    Returns:
        The table: ``keys``, ``sector`` and :data:`COST_COLUMNS`, one row per cell and sector; and
        its payers: ``keys``, ``sector`` and ``p2``, one row per person counted in ``persons``
        (person-level: the study's ``persons/costs.parquet``, :mod:`cohort.members`).

    Raises:
        ValueError: a column the arguments name is missing, or no sector is given.
    """
    keys, sectors = list(keys), list(dict.fromkeys(sectors))
    if not sectors:
        msg = "cost_table: expected at least one sector"
        raise ValueError(msg)
    cohort = cohort.lazy()
    period = list(window) if window is not None else ["year"]
    _columns(cohort, ["p2", *keys, *period], "cohort")
    _columns(units, ["p2", "sector", "service_date", "cost"], "claim units")
    members = cohort.select("p2", *keys, *(c for c in period if c not in keys)).filter(pl.col("p2").is_not_null())
    claims = units.filter(pl.col("sector").is_in(sectors)).select(
        "p2", "sector", "service_date",
        # cents, exactly: a Decimal(12, 2) times 100 is whole; a float is rounded to the cent
        (pl.col("cost").cast(pl.Float64) * 100).round(0).cast(pl.Int64).alias("cents"),
    )
    joined = members.join(claims, on="p2")
    if window is None:
        joined = joined.filter(pl.col("service_date").dt.year() == pl.col("year"))
    else:
        start, end = window
        joined = joined.filter(pl.col("service_date").is_between(pl.col(start), pl.col(end), closed="both"))
    cell = [*keys, "sector"]
    per_person = joined.group_by(*cell, "p2").agg(pl.col("cents").sum()).collect(engine="streaming")
    stats = per_person.lazy().group_by(cell).agg(
        pl.len().cast(pl.Int64).alias("persons"),
        pl.col("cents").sum().cast(pl.Int64).alias("total_cents"),
        pl.col("cents").top_k(2).alias("_top"),
    ).with_columns(pl.col("_top").list.sort(descending=True))
    grid = cohort.select(keys).unique().join(pl.LazyFrame({"sector": sectors}), how="cross")
    out = grid.join(stats, on=cell, how="left", nulls_equal=True).select(  # an unknown stratum is a stratum
        *cell,
        pl.col("persons").fill_null(0),
        pl.col("total_cents").fill_null(0),
        (pl.col("total_cents") / pl.col("persons") / 100).alias("mean"),
        pl.col("_top").list.get(0, null_on_oob=True).fill_null(0).cast(pl.Int64).alias("largest_cents"),
        pl.col("_top").list.get(1, null_on_oob=True).fill_null(0).cast(pl.Int64).alias("second_cents"),
    )
    return (out.sort(cell).collect(engine="streaming").cast({**COST_COLUMNS}),
            per_person.select(*cell, "p2").sort(*cell, "p2"))


def merge_cost_tables(tables: Sequence[pl.DataFrame], keys: Sequence[str]) -> pl.DataFrame:
    """The cost table of the union of disjoint sets of persons, from each set's :func:`cost_cells` table.

    A partitioned study (``cohort.reduce``) counts each person in one partition only, so per cell
    the persons and totals add up, the two largest contributions are the two largest of the
    partitions' largest and second-largest (a 0 there is "nobody": contributions are >= 0), and the
    mean is recomputed from the sums (never averaged). A cell is in the result when it is in any table.
    """
    cell = [*keys, "sector"]
    both = pl.concat(tables).group_by(cell, maintain_order=True).agg(
        pl.col("persons").sum(), pl.col("total_cents").sum(),
        pl.concat_list("largest_cents", "second_cents").list.explode(keep_nulls=False, empty_as_null=False)
        .sort(descending=True).head(2).alias("_top"),
    )
    return both.select(
        *cell, "persons", "total_cents",
        pl.when(pl.col("persons") > 0).then(pl.col("total_cents") / pl.col("persons") / 100).alias("mean"),
        pl.col("_top").list.get(0, null_on_oob=True).fill_null(0).alias("largest_cents"),
        pl.col("_top").list.get(1, null_on_oob=True).fill_null(0).alias("second_cents"),
    ).sort(cell).cast({**COST_COLUMNS})
