"""Criteria compiled to polars: one small builder per rule (``docs/study-schema.md``).

:func:`apply_criteria` adds one boolean column per criterion to a lazy frame of base-population
records (``cohort.population.population_frame``): true where the criterion excludes the record.
The frame's rows are keyed by ``patient_id`` (the reference year's criteria) or by ``patient_id``
and ``condition`` with an ``index_date`` (criteria after the entry step of incidence and index
cohorts). The built-ins X1-X7 are the frame's own columns; the generic rules are built here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import polars as pl

from cohort.criteria import Criterion
from cohort.population import RULES, Linked, coverage
from cohort.records import codes_of, records
from extracts.codelists import ConditionCatalogue

__all__ = ["Context", "apply_criteria", "column", "completed_age"]


@dataclass(frozen=True)
class Context:
    """What the builders read: the linked layout, the year, claim units and the span of days."""

    linked: Linked
    year: int
    units: pl.LazyFrame
    catalogue: ConditionCatalogue
    span: tuple[date, date]


def column(criterion: Criterion) -> str:
    """The frame column holding the criterion's test (true: excluded)."""
    return f"__criterion:{criterion.name}"


def completed_age(on: pl.Expr) -> pl.Expr:
    """Completed years of age on the date ``on`` (null for an unknown birth date)."""
    b = pl.col("birth_date")
    before_birthday = (on.dt.month().cast(pl.Int32) * 100 + on.dt.day()) < (b.dt.month().cast(pl.Int32) * 100 + b.dt.day())
    return on.dt.year().cast(pl.Int32) - b.dt.year().cast(pl.Int32) - before_birthday.cast(pl.Int32)


def _index() -> pl.Expr:
    return pl.col("index_date")


def _has(frame: pl.LazyFrame, c: Criterion, ctx: Context, keys: list[str]) -> pl.LazyFrame:
    codes = codes_of(ctx.catalogue[c.condition]) if c.condition is not None else c.codes
    assert codes is not None  # parse_criteria sets exactly one of condition and codes
    lo, hi = c.window.bounds(ctx.year, _index())  # type: ignore[union-attr]
    extra = ["index_date"] if c.window is not None and c.window.uses_index else []
    recs = records(ctx.linked, ctx.units, frame.select("patient_id", "p2").unique(), [(c.name, codes)], *ctx.span)
    hits = (
        frame.select(*keys, *extra).join(recs, on="patient_id")
        .filter((pl.col("start") <= hi) & (pl.col("end") >= lo))
        .select(keys).unique().with_columns(pl.lit(True).alias("__hit"))
    )
    found = pl.col("__hit").fill_null(False)
    return frame.join(hits, on=keys, how="left").with_columns(
        (~found if c.rule == "has" else found).alias(column(c))).drop("__hit")


def _registered(frame: pl.LazyFrame, c: Criterion, ctx: Context, keys: list[str]) -> pl.LazyFrame:
    anchor = _index() if c.relative_to == "index" else pl.lit(date(ctx.year, 1, 1))
    window = frame.select(*keys, (anchor - pl.duration(days=c.days)).alias("lo"),
                          (anchor - pl.duration(days=1)).alias("hi"))
    covered = coverage(ctx.linked.ehr("registrations"), window, tuple(keys))
    return frame.join(covered, on=keys, how="left").with_columns(
        (~pl.col("covered").fill_null(False)).alias(column(c))).drop("covered")


def _linked(frame: pl.LazyFrame, c: Criterion, ctx: Context, keys: list[str]) -> pl.LazyFrame:
    unlinked = ~pl.col("linked")
    patients = ctx.linked.ehr("patients")
    if c.method == "bsn" and "link_method" in patients.collect_schema().names():
        # A link made otherwise than on the BSN, or of unknown method, fails a BSN-only criterion.
        methods = patients.select("patient_id", "link_method")
        return frame.join(methods, on="patient_id", how="left").with_columns(
            (unlinked | (pl.col("link_method") != "bsn").fill_null(True)).alias(column(c))).drop("link_method")
    return frame.with_columns(unlinked.alias(column(c)))


def _expression(c: Criterion, year: int) -> pl.Expr:
    """The test of a rule that needs no other table."""
    if c.rule == "X1" and c.fallback == "exclude":  # linkage on the BSN only (issue 13)
        return pl.col("X1") | pl.col("by_fallback")
    if c.rule in RULES:
        return pl.col(c.rule)
    if c.rule == "age":
        age = completed_age(_index()) if c.at == "index" else pl.col("age")
        out = age.is_null()
        if c.min_age is not None:
            out = out | (age < c.min_age)
        if c.max_age is not None:
            out = out | (age > c.max_age)
        return out.fill_null(True)
    if c.rule == "sex":
        return ~pl.col("sex").is_in(list(c.values)).fill_null(False)
    if c.rule == "insured":
        out = ~pl.col("linked")
        return out | ~pl.col("complete").fill_null(False) if c.complete_insurer else out
    if c.rule == "not_wlz":
        return pl.col("wlz").fill_null(False)
    msg = f"criterion rule {c.rule!r} has no expression"  # parse_criteria admits no other rule
    raise AssertionError(msg)


_JOINED: dict[str, Callable[[pl.LazyFrame, Criterion, Context, list[str]], pl.LazyFrame]] = {
    "has": _has, "has_not": _has, "registered": _registered, "linked": _linked,
}


def apply_criteria(frame: pl.LazyFrame, criteria: tuple[Criterion, ...], ctx: Context,
                   keys: tuple[str, ...] = ("patient_id",)) -> pl.LazyFrame:
    """``frame`` with a boolean column (:func:`column`) per criterion: true where it excludes the row."""
    for c in criteria:
        build = _JOINED.get(c.rule)
        frame = build(frame, c, ctx, list(keys)) if build else frame.with_columns(_expression(c, ctx.year).alias(column(c)))
    return frame
