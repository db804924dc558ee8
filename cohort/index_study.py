"""Incidence and index-date cohorts of study schema 2, run on a linked folder.

Per reference year: the base population (``cohort.insured_population.base_frame``) with the criteria
that use no index date; the entry step (``cohort.entry``: index date, wash-out); the criteria on the
index date, per (record, condition); then the cohort table (``incidence`` or ``index_cohort``), the
attrition chain and the windowed outcomes (``cohort.outcomes_window``, ``cohort.costs``). Claim units
of the base population are netted once per year and spilled to the scratch folder.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable
from datetime import date
from pathlib import Path

import polars as pl

from cohort import members as who
from cohort import outcomes_care as care
from cohort.codes import CodeList
from cohort.compile import excluded_by, span_of
from cohort.config import StudyConfig, Sufficiency
from cohort.criteria_plan import Context, apply_criteria
from cohort.entry import entry
from cohort.outcomes import claim_units
from cohort.outcomes_window import contact_bands, contacts, dated_events
from cohort.insured_population import base_frame
from cohort.population import Linked, has_link_method
from cohort.records import codes_of
from cohort.schema import Study
from cohort.study import _change

__all__ = ["COHORT_TABLE", "run_index_study", "sort_cohort_table"]

COHORT_TABLE = {"incidence": "incidence", "index": "index_cohort"}
_COUNT = pl.Int64
_ENTRY = "__entry"


def _codes(study: Study) -> dict[str, CodeList]:
    return {c.name: c.codes if c.codes is not None else codes_of(study.catalogue[c.name]) for c in study.conditions}


def _chain(frame: pl.DataFrame, steps: list[str], year: int, condition: str) -> list[tuple]:
    counts = dict(frame.group_by("excluded_by").len().iter_rows())
    remaining = frame.height
    rows = [(year, condition, "base", remaining, 0, remaining)]
    for step in steps:
        excluded = counts.get(step, 0)
        rows.append((year, condition, step, remaining, excluded, remaining - excluded))
        remaining -= excluded
    return rows


def _year(linked: Linked, study: Study, year: int, folder: Path, members: who.Members, *,
          partial: bool = False) -> dict[str, pl.DataFrame]:
    pre = tuple(c for c in study.criteria if not c.uses_index)
    post = tuple(c for c in study.criteria if c.uses_index)
    x6 = next((c.sufficiency for c in study.criteria if c.rule == "X6"), None) or Sufficiency()
    config = StudyConfig(study.name, (year,), study.catalogue, {}, sufficiency=x6, data_years=study.data_years)
    frame = base_frame(linked, year, config, study.population)
    windows = [o.window.years_span() for o in study.outcomes] + [(-((study.washout_days + 364) // 365), 0)]
    lo, hi = span_of(study.criteria, year, extra=(min(w[0] for w in windows), max(w[1] for w in windows)))
    units_path = folder / f"claim_units_{year}.parquet"
    claim_units(linked, frame.filter(pl.col("p2").is_not_null()).select("p2"), cost=True).filter(
        pl.col("service_date").is_between(lo, hi)).sink_parquet(units_path, compression="lz4")
    units = pl.scan_parquet(units_path)
    ctx = Context(linked, year, units, study.catalogue, (lo, hi))
    population = who.person_numbers(linked, apply_criteria(frame, pre, ctx).with_columns(excluded_by(pre))
                                    .collect(engine="streaming"))
    washout = study.washout_days if study.cohort_type == "incidence" else None
    entered = entry(linked, units, population.lazy().select("patient_id", "p2"), list(_codes(study).items()),
                    year, washout).with_columns((~pl.col("entered")).alias(_ENTRY))
    rows = entered.join(population.lazy().drop("excluded_by"), on="patient_id")
    rows = apply_criteria(rows, post, ctx, keys=("patient_id", "condition")).with_columns(
        excluded_by([*pre], (("entry", _ENTRY),)).alias("__pre_entry"))
    # the chain of a (record, condition): the criteria before entry, entry, the criteria after it
    rows = rows.with_columns(pl.coalesce("__pre_entry", excluded_by(post)).alias("excluded_by")).collect(engine="streaming")
    steps = [*(c.name for c in pre), "entry", *(c.name for c in post)]
    # "all": the whole population; a record with no index date (or not incident) leaves it at entry.
    # The cohort's own chain starts from the records with a record of the condition in the year.
    whole = population.select("patient_id", "person", "excluded_by").join(
        rows.select("patient_id", pl.col("excluded_by").alias("cohort_by"), pl.lit(True).alias("has_index")),
        on="patient_id", how="left",
    ).select("person", pl.coalesce("excluded_by", pl.when(pl.col("has_index")).then("cohort_by")
                                   .otherwise(pl.lit("entry"))).alias("excluded_by"))
    groups = [("all", whole)] + [(c, rows.filter(pl.col("condition") == c)) for c in study.condition_names]
    attrition = [row for c, group in groups for row in _chain(group, steps, year, c)]
    who.attrition(members, year, groups, tuple(steps))
    strata = list(study.strata)
    at_risk = population.filter(pl.col("excluded_by").is_null())
    cohort = rows.filter(pl.col("excluded_by").is_null())
    denominators = at_risk.group_by(strata).len("denominator") if strata else pl.DataFrame({"denominator": [at_risk.height]})
    grid = pl.DataFrame({"condition": list(study.condition_names)}).join(denominators, how="cross")
    table = sort_cohort_table(grid.join(cohort.group_by("condition", *strata).len("numerator"),
                                        on=["condition", *strata], how="left", nulls_equal=True).select(
        pl.lit(year, _COUNT).alias("year"), "condition", *strata, pl.col("numerator").fill_null(0).cast(_COUNT),
        pl.col("denominator").cast(_COUNT)), study)
    at_year = pl.lit(year, _COUNT).alias("year")
    members.add(COHORT_TABLE[study.cohort_type], "numerator", cohort.with_columns(at_year))
    members.add(COHORT_TABLE[study.cohort_type], "denominator", at_risk.with_columns(at_year))
    out = {
        "attrition": pl.DataFrame(attrition, orient="row", schema={
            "year": _COUNT, "condition": pl.String, "step": pl.String, "before": _COUNT, "excluded": _COUNT,
            "after": _COUNT}),
        COHORT_TABLE[study.cohort_type]: table,
    }
    if has_link_method(linked):
        out["fallback_links"] = who.fallback_links(members, year, at_risk)
    out |= _outcomes(linked, study, cohort, units, year, (lo, hi), strata, at_risk.select(strata), members,
                     partial=partial)
    return out


def sort_cohort_table(table: pl.DataFrame, study: Study) -> pl.DataFrame:
    """The cohort table's rows in a fixed order: year, the study's conditions in order, the strata
    (a stratum's cells come from a group-by, in no fixed order: the file must be the same every run)."""
    order = {name: i for i, name in enumerate(study.condition_names)}
    return table.sort("year", pl.col("condition").replace_strict(order, return_dtype=pl.Int64), *study.strata)


def _outcomes(linked: Linked, study: Study, cohort: pl.DataFrame, units: pl.LazyFrame, year: int,
              span: tuple[date, date], strata: list[str], cells: pl.DataFrame,
              members: who.Members, *, partial: bool = False) -> dict[str, pl.DataFrame]:
    out: dict[str, pl.DataFrame] = {}
    events = dated_events(linked, units, *span)
    all_cause = {c.name: c.codes is None and study.catalogue[c.name].all_cause for c in study.conditions}
    for outcome in study.outcomes:
        lo, hi = outcome.window.bounds(year, pl.col("index_date"))
        rows = cohort.select("patient_id", "p2", "person", "condition", "practice_id", *strata, lo.alias("lo"),
                             hi.alias("hi"))
        if outcome.kind == "contacts":
            out["care_use"] = contacts(rows, events, outcome, _codes(study), all_cause, year, strata, cells, members)
        elif outcome.kind == "contact_bands":
            out["contact_bands"] = contact_bands(rows, events, outcome, year, members)
        elif outcome.kind == "costs":
            from cohort.costs import cost_cells  # noqa: PLC0415 - present: compile.check_runnable

            sectors = tuple(dict.fromkeys(d for ds in outcome.disciplines.values() for d in ds))
            payers = rows.with_columns(pl.lit(year, _COUNT).alias("year"))
            out["costs"], paid = cost_cells(units, payers, ["year", "condition", *strata], sectors=sectors,
                                            window=("lo", "hi"))
            members.add("costs", "persons", who.by_number(linked.root, paid))
        elif outcome.kind == "referrals":
            out["referrals"] = care.referrals(linked, rows, _codes(study), all_cause, year, members)
        elif outcome.kind == "top" and partial:  # ranked after the partitions' sums (cohort.reduce)
            out["top_groups"], out["top_totals"] = care.top_partial(rows, events, year, members)
        elif outcome.kind == "top":
            config = StudyConfig(study.name, (year,), study.catalogue, {}, top_n=outcome.n, data_years=study.data_years)
            out["top"] = care.top(config, rows, events, year, members)
        elif outcome.kind == "acsc":
            out["acsc"] = care.acsc(outcome, rows, units, year, members)
    return out


def run_index_study(linked_path: Path | Linked, study: Study, *, progress: Callable[[str, int, int], None] | None = None,
                    scratch: Path | None = None, partial: bool = False) -> dict[str, pl.DataFrame]:
    """Every table of an incidence or index-date study (``docs/study-schema.md``), pre-disclosure.

    ``linked_path``: the linked folder, or a view of it (a partition: ``cohort.partitioned``);
    ``partial``: a partition's tables, whose top lists are not yet ranked (``cohort.reduce``)."""
    linked = linked_path if isinstance(linked_path, Linked) else Linked(Path(linked_path))
    parts: dict[str, list[pl.DataFrame]] = {}
    members = who.Members(study.strata)  # the persons behind each count (cohort.members)
    with contextlib.ExitStack() as stack:
        folder = scratch if scratch is not None else stack.enter_context(tempfile.TemporaryDirectory(prefix="pfl-study-"))
        for i, year in enumerate(study.years):
            if progress is not None:
                progress(f"{study.cohort_type} cohort {year}", i, len(study.years) + 1)
            for name, frame in _year(linked, study, year, Path(folder), members, partial=partial).items():
                parts.setdefault(name, []).append(frame)
    tables = who.StudyTables({name: pl.concat(frames) for name, frames in parts.items()})
    tables.members = members
    if "care_use" in tables:
        tables["care_use"] = tables["care_use"].sort("year", "condition", "discipline", *study.strata)
        tables["care_use_change"] = _change(tables["care_use"], study.years, list(study.strata))
    if progress is not None:
        progress("done", len(study.years) + 1, len(study.years) + 1)
    return tables
