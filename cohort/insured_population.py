"""The base population of a study: records registered at a GP in the year, or persons insured in it.

``population: registered`` (the seed study's, method.md section 1) is
:func:`cohort.population.population_frame`. ``population: insured`` (``docs/study-schema.md``,
"Population (base)") is every person with an ``insured`` row for the reference year Y:

- a person whose pseudonym is that of a record of the registered population with a usable link
  (the X1 test passes) *is* that record, with every attribute and test it has there;
- every other insured person is a row of its own with no EHR record: its attributes come from the
  claims alone (birth date, sex, insurer and Wlz stay of its insured row for Y -- unknown when it has
  several rows -- and the earliest death date of its rows); it has no practice, and its region is
  the level ``no_practice``; its claims are its own. It is not linked (X1, ``linked`` and ``insured`` exclude it), has no
  registration (X5 and ``registered`` exclude it) and no practice (X6 excludes it; X4 does not);
  X2, X3, X7, ``not_wlz``, ``age`` and ``sex`` read its own values.

The rows have the columns of ``population_frame``, so that the criteria (``cohort.criteria_plan``)
and every outcome read them alike. A row without an EHR record gets a record id of its own, which
matches no EHR table and is never written anywhere (person numbers come from the pseudonym).
"""

from __future__ import annotations

import polars as pl

from cohort.config import StudyConfig
from cohort.population import Linked, _age_band, population_frame

__all__ = ["NO_PRACTICE", "base_frame", "insured_frame"]

_CLAIMS_ONLY = "~insured:"  # the record id of an insured person without an EHR record (no EHR id has it)
# The region of an insured person without an EHR record: a level of its own (the release refuses
# an unknown stratum, and "not at a GP practice" is known, not missing).
NO_PRACTICE = "no_practice"


def insured_frame(linked: Linked, year: int, config: StudyConfig) -> pl.LazyFrame:
    """One row per person insured in ``year``: the columns of :func:`~cohort.population.population_frame`."""
    registered = population_frame(linked, year, config)
    columns = registered.collect_schema()
    records = registered.filter(pl.col("linked"))  # p2 is set exactly where the link is usable
    insured = linked.claims("insured").filter(pl.col("p2").is_not_null())
    persons = insured.filter(pl.col("year") == year).group_by("p2").agg(
        pl.len().alias("rows"), pl.col("birth_date").first(), pl.col("sex").first(),
        pl.col("insurer").first(), pl.col("wlz_institution").first().alias("wlz"))
    death = insured.group_by("p2").agg(pl.col("death_date").min())
    complete = linked.claims("insurer_years").filter(pl.col("year") == year).select("insurer", "complete")
    one = pl.col("rows") == 1  # several rows for Y: the claims do not say which holds
    age = year - pl.col("birth_date").dt.year()
    own = (
        persons.join(records.select("p2"), on="p2", how="anti")
        .join(death, on="p2", how="left")
        .with_columns(*(pl.when(one).then(pl.col(c)).alias(c) for c in ("birth_date", "sex", "insurer", "wlz")))
        .join(complete, on="insurer", how="left")
        .select(
            (pl.lit(_CLAIMS_ONLY) + pl.col("p2").cast(pl.String)).alias("patient_id"),
            "p2", pl.lit(False).alias("linked"), "birth_date", "sex", "death_date", age.alias("age"),
            _age_band(age).alias("age_band"), pl.lit(None, pl.String).alias("practice_id"),
            pl.lit(NO_PRACTICE).alias("region"), "insurer", "wlz", "complete",
            pl.lit(True).alias("X1"), pl.col("birth_date").is_null().alias("X2"),
            pl.col("wlz").fill_null(False).alias("X3"), pl.lit(False).alias("X4"), pl.lit(True).alias("X5"),
            pl.lit(True).alias("X6"), (~pl.col("complete").fill_null(False)).alias("X7"),
            pl.lit(False).alias("by_fallback"),
        )
    )
    return pl.concat([records, own.select(pl.col(c).cast(t) for c, t in columns.items())])


def base_frame(linked: Linked, year: int, config: StudyConfig, population: str) -> pl.LazyFrame:
    """The study's base population of ``year`` (``registered`` or ``insured``) with the tests of X1-X7."""
    if population == "insured":
        return insured_frame(linked, year, config)
    return population_frame(linked, year, config)
