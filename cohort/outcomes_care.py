"""Referrals, top groups and ACSC admissions of a cohort, each counted in the outcome's window.

The outcomes of method.md sections 5-7 for incidence and index-date cohorts (``docs/study-schema.md``,
"Outcomes"): the cohort is one row per (record, condition) with its window's first and last day
(``lo``, ``hi``: from the index date, ``cohort.windows``). The tables have the columns of the
prevalence study's (``cohort.study``), so that the release treats them alike:

- ``referrals``: N = cohort records whose practice (in Y) delivered referrals in Y; n = those with
  >= 1 referral dated in the window to a specialism other than GGZ, for the condition (its ICPC
  codes; any referral for an all-cause condition) -- method 5 and 9.12;
- ``top``: the groups of the cohort's qualifying contacts dated in the window, per discipline --
  method 6 and 9.13, ranked by ``cohort.study``'s own rule;
- ``acsc``: netted MSZ admissions (``opname``) with an ACSC code of cohort records dated in the
  window, and the records admitted -- method 7 and 9.14 with the cohort in place of "all insured":
  who is in it (Wlz stays included or not) is the criteria's choice.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from cohort import members as who
from cohort.codes import CodeList
from cohort.config import StudyConfig
from cohort.outcomes_spec import Outcome
from cohort.outcomes_window import in_window
from cohort.population import Linked
from cohort.study import _top, _top_partial
from extracts.codes import icpc_base

__all__ = ["acsc", "referrals", "top"]

_COUNT = pl.Int64


def _at(year: int) -> pl.Expr:
    return pl.lit(year, _COUNT).alias("year")


def referrals(linked: Linked, cohort: pl.DataFrame, codes: Mapping[str, CodeList], all_cause: Mapping[str, bool],
              year: int, members: who.Members) -> pl.DataFrame:
    """referrals: year, condition, n, N (``cohort``: patient_id, person, condition, practice_id, lo, hi)."""
    delivering = (linked.ehr("practice_years").filter((pl.col("year") == year) & pl.col("referrals_delivered"))
                  .select("practice_id").unique().collect())
    base = cohort.join(delivering, on="practice_id", how="semi")
    refs = (
        linked.ehr("referrals")
        .filter(pl.col("specialism").is_not_null() & (pl.col("specialism") != "GGZ"))
        .select("patient_id", "referral_date", icpc_base(pl.col("icpc")).alias("code"))
        .join(base.lazy().select("patient_id", "condition", "lo", "hi"), on="patient_id")
        .filter(pl.col("referral_date").is_between(pl.col("lo"), pl.col("hi")))
        .collect()
    )
    specific = pl.DataFrame([(c, code) for c, cl in codes.items() for code in cl.icpc],
                            schema={"condition": pl.String, "code": pl.String}, orient="row")
    every = [c for c, yes in all_cause.items() if yes]
    hit = pl.concat([
        refs.filter(pl.col("condition").is_in(every)).select("patient_id", "condition"),
        refs.filter(~pl.col("condition").is_in(every)).join(specific, on=["condition", "code"], how="semi")
        .select("patient_id", "condition"),
    ]).unique()
    counted = base.join(hit, on=["patient_id", "condition"], how="semi")
    members.add("referrals", "n", counted.with_columns(_at(year)))
    members.add("referrals", "N", base.with_columns(_at(year)))
    n = counted.group_by("condition").len("n")
    big_n = base.group_by("condition").len("N")
    return (pl.DataFrame({"condition": list(codes)}).join(big_n, on="condition", how="left")
            .join(n, on="condition", how="left")
            .select(_at(year), "condition", pl.col("n").fill_null(0).cast(_COUNT), pl.col("N").fill_null(0).cast(_COUNT)))


def top(config: StudyConfig, cohort: pl.DataFrame, events: pl.LazyFrame, year: int,
        members: who.Members) -> pl.DataFrame:
    """top: year, discipline, rank, group, contacts, share, persons, total_contacts (``config.top_n`` groups).

    ``cohort`` holds one condition (an incidence or index study has one): a contact is counted once.
    """
    inside = in_window(cohort.lazy(), events).select("patient_id", "discipline", "code").collect(engine="streaming")
    return _top(config, inside, year, cohort.select("patient_id", "person").unique(), members)


def top_partial(cohort: pl.DataFrame, events: pl.LazyFrame, year: int,
                members: who.Members) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A partition's top lists before ranking (``top_groups``, ``top_totals``; ``cohort.reduce`` ranks)."""
    inside = in_window(cohort.lazy(), events).select("patient_id", "discipline", "code").collect(engine="streaming")
    return _top_partial(inside, year, cohort.select("patient_id", "person").unique(), members)


def acsc(outcome: Outcome, cohort: pl.DataFrame, units: pl.LazyFrame, year: int, members: who.Members) -> pl.DataFrame:
    """acsc: year, admissions, persons (``units``: netted claim units of the cohort's span)."""
    codes = pl.DataFrame({"code": [f"{s}:{d}" for s, d in outcome.codes]})
    admitted = (
        units.filter((pl.col("sector") == "MSZ") & (pl.col("care_type") == "opname"))
        .join(codes.lazy(), on="code", how="semi")
        .join(cohort.lazy().filter(pl.col("p2").is_not_null()).select("p2", "person", "lo", "hi"), on="p2")
        .filter(pl.col("service_date").is_between(pl.col("lo"), pl.col("hi")))
        .select("person")
        .collect()
    )
    members.add("acsc", "persons", admitted.with_columns(_at(year)))
    return pl.DataFrame({"year": [year], "admissions": [admitted.height], "persons": [admitted["person"].n_unique()]},
                        schema={"year": _COUNT, "admissions": _COUNT, "persons": _COUNT})
