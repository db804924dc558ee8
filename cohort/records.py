"""Records of a condition or code list, dated (``docs/study-schema.md``, "Records of a condition").

A record is an EHR episode whose ICPC base code is listed -- a record on every day from its start
to its end (open: to the end of time) -- or a netted claim unit (method.md 9.4) whose (sector, code)
is listed, on its service date, for linked records only. The has/has-not criteria, incidence and
index dates are all questions about these intervals.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import polars as pl

from cohort.codes import CodeList
from cohort.population import Linked
from extracts.codelists import Condition
from extracts.codes import icpc_base

__all__ = ["FOREVER", "code_tables", "codes_of", "records"]

FOREVER = date(9999, 12, 31)


def codes_of(condition: Condition) -> CodeList:
    """The code list of a catalogue condition (its age rule and lookbacks belong to prevalence only)."""
    return CodeList(
        tuple(dict.fromkeys(condition.icpc)),
        tuple(dict.fromkeys((c.sector, f"{c.specialism}:{c.code}" if c.specialism else c.code)
                            for c in condition.claims)),
    )


def code_tables(lists: Iterable[tuple[str, CodeList]]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(key, icpc_base) and (key, sector, code) tables of named code lists."""
    icpc, claims = [], []
    for key, codes in lists:
        icpc += [(key, c) for c in codes.icpc]
        claims += [(key, s, c) for s, c in codes.claims]
    return (
        pl.DataFrame(icpc, schema={"key": pl.String, "icpc_base": pl.String}, orient="row").unique(),
        pl.DataFrame(claims, schema={"key": pl.String, "sector": pl.String, "code": pl.String}, orient="row").unique(),
    )


def records(linked: Linked, units: pl.LazyFrame, persons: pl.LazyFrame, lists: Iterable[tuple[str, CodeList]],
            lo: date, hi: date) -> pl.LazyFrame:
    """patient_id, key, start, end: every record of each code list that touches [lo, hi].

    Args:
        linked: the linked layout.
        units: netted claim units (``p2``, ``sector``, ``code``, ``service_date``).
        persons: the records asked about: ``patient_id`` and ``p2`` (null unless linked).
        lists: (key, code list) pairs; ``key`` names the list in the result.
        lo, hi: the span of days the caller's windows can cover (a filter for speed only).
    """
    icpc, claims = code_tables(lists)
    people = persons.select("patient_id", "p2")
    episodes = (
        linked.ehr("episodes")
        .filter((pl.col("start_date") <= hi) & (pl.col("end_date").is_null() | (pl.col("end_date") >= lo)))
        .join(people.select("patient_id"), on="patient_id", how="semi")
        .select("patient_id", icpc_base(pl.col("icpc")).alias("icpc_base"), pl.col("start_date").alias("start"),
                pl.col("end_date").fill_null(FOREVER).alias("end"))
        .join(icpc.lazy(), on="icpc_base")
        .select("patient_id", "key", "start", "end")
    )
    claimed = (
        units.filter(pl.col("service_date").is_between(lo, hi))
        .join(claims.lazy(), on=["sector", "code"])
        .join(people.filter(pl.col("p2").is_not_null()), on="p2")
        .select("patient_id", "key", pl.col("service_date").alias("start"), pl.col("service_date").alias("end"))
    )
    return pl.concat([episodes, claimed])
