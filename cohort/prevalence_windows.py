"""Outcomes of a prevalence cohort in a window of years other than the seed study's (issue 12, item 3).

The seed engine (``cohort.study``) counts care use and claimed costs in the reference year, as
method.md section 3 does. A prevalence study that asks for more -- ``contacts`` in another window
or for any cause, ``contact_bands``, ``costs`` in another window -- has those outcomes counted here,
with the windowed outcome code of incidence and index cohorts (``cohort.outcomes_window``,
``cohort.costs``): the cohort is the prevalent records of the final population, one row per
(record, condition), and the window ``{years: [a, b]}`` covers 1 Jan (Y + a) .. 31 Dec (Y + b)
(``docs/study-schema.md``, "Windows"). The tables and person sets are those an index cohort gives;
``care_use`` keeps the prevalence study's full grid over the strata of the study population.

The population and the prevalent records are those of the seed engine's run: the same criteria
(``population``, ``cohort.compile``) and condition rules (``cohort.outcomes.membership``) on the
same linked layout, recomputed here so that the seed engine stays as it is.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable
from datetime import date
from pathlib import Path

import polars as pl

from cohort import members as who
from cohort.codes import CodeList
from cohort.config import DISCIPLINES, StudyConfig
from cohort.outcomes import claim_units, membership
from cohort.outcomes_spec import Outcome
from cohort.outcomes_window import contact_bands, contacts, dated_events
from cohort.population import Linked
from cohort.records import codes_of
from cohort.schema import Study

__all__ = ["is_windowed", "windowed_outcomes"]

_COUNT = pl.Int64


def is_windowed(outcome: Outcome) -> bool:
    """Whether a prevalence outcome is counted here rather than by the seed engine."""
    seed_window = (outcome.window.start, outcome.window.end) == (0, 0)
    return (outcome.kind == "contact_bands" or (outcome.kind == "contacts" and (not seed_window or outcome.cause != "method"))
            or (outcome.kind == "costs" and not seed_window))


def _codes(study: Study) -> dict[str, CodeList]:
    return {c.name: c.codes if c.codes is not None else codes_of(study.catalogue[c.name]) for c in study.conditions}


def _year(linked: Linked, study: Study, config: StudyConfig, base: pl.DataFrame, year: int, units: pl.LazyFrame,
          outcomes: list[Outcome], members: who.Members) -> dict[str, pl.DataFrame]:
    strata = list(study.strata)
    population = base.filter(pl.col("excluded_by").is_null())
    found = membership(linked, base.lazy(), units, year, config).collect(engine="streaming")
    prevalent = population.join(found, on="patient_id")
    lows, highs = zip(*(o.window.years_span() for o in outcomes), strict=True)
    events = dated_events(linked, units, date(year + min(lows), 1, 1), date(year + max(highs), 12, 31))
    all_cause = {c.name: c.codes is None and study.catalogue[c.name].all_cause for c in study.conditions}
    out: dict[str, pl.DataFrame] = {}
    for outcome in outcomes:
        lo, hi = outcome.window.bounds(year)
        rows = prevalent.select("patient_id", "p2", "person", "condition", *strata, lo.alias("lo"), hi.alias("hi"))
        if outcome.kind == "contacts":
            out["care_use"] = contacts(rows, events, outcome, _codes(study), all_cause, year, strata,
                                       population.select(strata), members)
        elif outcome.kind == "contact_bands":
            out["contact_bands"] = contact_bands(rows, events, outcome, year, members)
        else:
            from cohort.costs import cost_cells  # noqa: PLC0415 - present: compile.check_runnable

            wanted = {d for ds in outcome.disciplines.values() for d in ds}
            payers = rows.with_columns(pl.lit(year, _COUNT).alias("year"))
            out["costs"], paid = cost_cells(units, payers, ["year", "condition", *strata],
                                            sectors=[d for d in DISCIPLINES if d in wanted], window=("lo", "hi"))
            members.add("costs", "persons", who.by_number(linked.root, paid))
    return out


def windowed_outcomes(linked_path: Path | Linked, study: Study, config: StudyConfig,
                      population: Callable[[Linked, int], pl.LazyFrame], members: who.Members,
                      outcomes: list[Outcome], *, scratch: Path | None = None) -> dict[str, pl.DataFrame]:
    """The tables of the study's ``outcomes`` (those :func:`is_windowed` picks), every reference year.

    Args:
        linked_path: the linked folder, or a view of it (a partition, ``cohort.partitioned``).
        study: the prevalence study.
        config: its seed-engine configuration (``cohort.compile.legacy_config``): the conditions.
        population: the base population of a year with ``excluded_by`` (the study's criteria).
        members: where the persons behind each count go (the seed engine's run's).
        outcomes: the outcomes to count (contacts, contact_bands, costs), at least one.
        scratch: an owner-only folder for the claim units spilled to disk (None: a temporary one).
    """
    linked = linked_path if isinstance(linked_path, Linked) else Linked(Path(linked_path))
    lookback = max((s.lookback_years for c in config.catalogue.conditions for s in c.subconditions), default=0)
    parts: dict[str, list[pl.DataFrame]] = {}
    with contextlib.ExitStack() as stack:
        folder = scratch if scratch is not None else stack.enter_context(tempfile.TemporaryDirectory(prefix="pfl-study-"))
        for year in study.years:
            base = who.person_numbers(linked, population(linked, year).collect(engine="streaming"))
            spans = [o.window.years_span() for o in outcomes] + [(-lookback, 0)]
            lo, hi = date(year + min(s[0] for s in spans), 1, 1), date(year + max(s[1] for s in spans), 12, 31)
            path = Path(folder) / f"claim_units_windows_{year}.parquet"
            claim_units(linked, base.lazy().filter(pl.col("p2").is_not_null()).select("p2"), cost=True).filter(
                pl.col("service_date").is_between(lo, hi)).sink_parquet(path, compression="lz4")
            for name, frame in _year(linked, study, config, base, year, pl.scan_parquet(path), outcomes,
                                     members).items():
                parts.setdefault(name, []).append(frame)
    return {name: pl.concat(frames) for name, frames in parts.items()}
