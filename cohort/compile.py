"""A schema 2 study compiled to polars plans and run on a linked folder.

Prevalence cohorts run the seed study's engine (``cohort.study.run_study``) with the study's own
base population: the records of :func:`~cohort.insured_population.base_frame`, each excluded by the
first of the study's criteria that holds (``cohort.criteria_plan``), in the study's order. The seed
study in schema 2 therefore gives the tables of schema 1 byte for byte. Incidence and index-date
cohorts run ``cohort.index_study``. :func:`check_runnable` refuses, before any data is read, what
this build cannot run (claimed costs without ``cohort.costs``).
"""

from __future__ import annotations

import dataclasses
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

from cohort.checks import fail
from cohort.codes import CodeList
from cohort.config import DISCIPLINES, AcscConfig, StudyConfig, Sufficiency
from cohort.criteria import Criterion
from cohort.criteria_plan import Context, apply_criteria, column
from cohort.members import StudyTables
from cohort.outcomes import claim_units
from cohort.insured_population import base_frame
from cohort.population import BASE_COLUMNS, Linked
from cohort.schema import CohortCondition, Study
from cohort.prevalence_windows import is_windowed, windowed_outcomes
from cohort.study import _change, _sorted, run_study
from execution import Executor
from extracts.codelists import ClaimsCode, Condition, ConditionCatalogue, SubCondition

__all__ = ["check_runnable", "excluded_by", "legacy_config", "run_compiled", "span_of"]


@dataclass(frozen=True, slots=True)
class _AdHoc(SubCondition):
    """An ad-hoc code list as a sub-condition: its claims count in Y - lookback .. Y."""

    lookback: int = 0

    @property
    def lookback_years(self) -> int:
        return self.lookback


def _as_condition(c: CohortCondition) -> Condition:
    codes = c.codes if c.codes is not None else CodeList()
    claims = tuple(ClaimsCode(s, code.partition(":")[2], code.partition(":")[0]) if s == "MSZ" else ClaimsCode(s, code)
                   for s, code in codes.claims)
    return Condition(c.name, c.name, False, (_AdHoc(c.name, codes.icpc, "chronic", claims, c.lookback_years),))


def check_runnable(study: Study) -> None:
    """Refuse, before any data is read, an outcome this build cannot compute."""
    if study.outcome("costs") is not None and importlib.util.find_spec("cohort.costs") is None:
        fail("outcomes.costs", "claimed costs need the cost module (cohort.costs), absent from this build",
             "no costs outcome")


def legacy_config(study: Study) -> StudyConfig:
    """The seed engine's configuration of a prevalence study (conditions in the catalogue's order)."""
    wanted = set(study.condition_names)
    conditions = [c for c in study.catalogue.conditions if c.name in wanted]
    conditions += [_as_condition(c) for c in study.conditions if c.codes is not None]
    x6 = next((c.sufficiency for c in study.criteria if c.rule == "X6"), None)
    contacts, top, acsc = study.outcome("contacts"), study.outcome("top"), study.outcome("acsc")
    config = StudyConfig(
        name=study.name, reference_years=study.years, catalogue=ConditionCatalogue(tuple(conditions)),
        disciplines=dict(contacts.disciplines) if contacts else {},
        dietetics_all_cause=contacts.dietetics_all_cause if contacts else True,
        sufficiency=x6 or Sufficiency(), strata=study.strata, top_n=top.n if top else 15,
        acsc=AcscConfig(acsc.years, acsc.codes) if acsc else AcscConfig((), ()), data_years=study.data_years,
    )
    costs = study.outcome("costs")
    if costs is not None:  # cohort.costs is present (check_runnable): its engine takes the sectors
        wanted = {d for ds in costs.disciplines.values() for d in ds}
        sectors = tuple(d for d in DISCIPLINES if d in wanted)  # in the order schema 1 gives them
        config = dataclasses.replace(config, cost_sectors=sectors)  # type: ignore[call-arg]
    return config


def span_of(criteria: tuple[Criterion, ...], year: int, *, extra: tuple[int, int] = (0, 0)) -> tuple[date, date]:
    """The days the criteria's windows can cover in ``year`` (offsets in years ``extra`` included)."""
    lows, highs = [extra[0]], [extra[1]]
    for c in criteria:
        if c.window is not None:
            low, high = c.window.years_span()
            lows.append(low)
            highs.append(high)
    return date(year + min(lows), 1, 1), date(year + max(highs), 12, 31)


def excluded_by(criteria: tuple[Criterion, ...] | list[Criterion], extra: tuple[tuple[str, str], ...] = ()) -> pl.Expr:
    """The name of the first criterion whose column holds (``extra``: (step, column) after them)."""
    steps = [(c.name, column(c)) for c in criteria] + list(extra)
    out: pl.Expr = pl.lit(None, dtype=pl.String)
    for name, col in reversed(steps):
        out = pl.when(pl.col(col)).then(pl.lit(name)).otherwise(out)
    return out.alias("excluded_by")


def _population(study: Study, config: StudyConfig) -> Callable[[Linked, int], pl.LazyFrame]:
    def population(linked: Linked, year: int) -> pl.LazyFrame:
        frame = base_frame(linked, year, config, study.population)
        units = claim_units(linked, frame.filter(pl.col("p2").is_not_null()).select("p2"))
        ctx = Context(linked, year, units, study.catalogue, span_of(study.criteria, year))
        return apply_criteria(frame, study.criteria, ctx).with_columns(excluded_by(study.criteria)).select(BASE_COLUMNS)

    return population


_PREVALENCE_TABLES = {"care_use": "contacts", "care_use_change": "contacts", "referrals": "referrals", "top": "top",
                      "acsc": "acsc"}


def run_compiled(linked_path: Path | Linked, study: Study, *, progress: Callable[[str, int, int], None] | None = None,
                 scratch: Path | None = None, executor: Executor | None = None, partitions: int = 1,
                 partial: bool = False) -> dict[str, pl.DataFrame]:
    """Every table of a schema 2 study (``docs/study-schema.md``), pre-disclosure.

    ``partitions`` K > 1 runs the study on K partitions of the persons on ``executor`` and unites
    their counts exactly (``cohort.partitioned``): the same tables as K = 1. ``partial``: a
    partition's counts (``linked_path`` is then its view), which ``cohort.reduce`` finishes.
    """
    check_runnable(study)
    if partitions != 1:
        from cohort.partitioned import run_partitioned  # noqa: PLC0415 - it imports this module

        tables = run_partitioned(Path(linked_path), study, executor=executor, partitions=partitions, scratch=scratch,
                                 progress=progress)
        return tables if study.cohort_type != "prevalence" else _prevalence_tables(study, tables)
    if study.cohort_type != "prevalence":
        from cohort.index_study import run_index_study  # noqa: PLC0415 - keeps the seed path's imports small

        linked = linked_path if isinstance(linked_path, Linked) else Path(linked_path)
        return run_index_study(linked, study, progress=progress, scratch=scratch, partial=partial)
    config = legacy_config(study)
    windowed = [o for o in study.outcomes if is_windowed(o)]
    kinds = {o.kind for o in windowed}
    strata = list(study.strata)
    # Outcomes in other windows (or any cause, or bands) are counted by cohort.prevalence_windows;
    # the seed engine counts the rest, so the seed study's tables stay byte for byte.
    seed = dataclasses.replace(config, disciplines={} if "contacts" in kinds else config.disciplines,
                               cost_sectors=() if "costs" in kinds else config.cost_sectors)
    population = _population(study, config)
    tables = run_study(linked_path, seed, progress=progress, scratch=scratch, population=population,
                       chain=tuple(c.name for c in study.criteria), partial=partial)
    if windowed:
        if "contacts" in kinds:
            tables.members.drop("care_use")  # the seed engine's N of an empty care use: counted again
        tables |= windowed_outcomes(linked_path, study, config, population, tables.members, windowed,
                                    scratch=scratch)
        # In the order every such table has (the seed engine's, and that of K > 1: cohort.reduce).
        if "costs" in kinds:
            tables["costs"] = _sorted(tables["costs"], "costs", strata)
        if "care_use" in tables and study.outcome("contacts") in windowed:
            tables["care_use"] = _sorted(tables["care_use"], "care_use", strata)
            tables["care_use_change"] = _change(tables["care_use"], study.years, strata)
    return tables if partial else _prevalence_tables(study, tables)


def _prevalence_tables(study: Study, tables: dict[str, pl.DataFrame]) -> StudyTables:
    # A prevalence study writes the seven tables of method.md section 8; an outcome it leaves out
    # gives its table with no rows (and no persons: a cell the release never shows).
    out = StudyTables({name: frame.clear() if name in _PREVALENCE_TABLES and study.outcome(_PREVALENCE_TABLES[name])
                       is None else frame for name, frame in tables.items()})
    out.members = getattr(tables, "members", None)
    return out
