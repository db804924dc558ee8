"""Study schema 2 (``docs/study-schema.md``): parsed and checked into frozen dataclasses.

:func:`parse_study_v2` turns the mapping of a study file into a :class:`Study` once, before any
data is read. Every problem raises :class:`~extracts.errors.ConfigError` (exit 2) naming the key,
the rule broken and what was expected. Criteria (``cohort.criteria``) and outcomes
(``cohort.outcomes_spec``) are parsed by their own modules; this one holds the study's frame:
name, cohort type, reference years, conditions (catalogue or ad-hoc code lists) and strata.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cohort.checks import fail, known_keys, whole
from cohort.codes import CodeList, parse_codes
from cohort.config import STRATA
from cohort.criteria import Criterion, parse_criteria
from cohort.outcomes_spec import Outcome, parse_outcomes
from extracts.codelists import ConditionCatalogue

__all__ = ["COHORT_TYPES", "POPULATIONS", "CohortCondition", "Study", "parse_study_v2"]

COHORT_TYPES = ("prevalence", "incidence", "index")
POPULATIONS = ("registered", "insured")  # docs/study-schema.md, "Population (base)"
_TOP_KEYS = ("schema", "name", "cohort", "population", "criteria", "outcomes", "strata")
_COHORT_KEYS = ("type", "years", "conditions", "washout_days")
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True, slots=True)
class CohortCondition:
    """A condition of the cohort: a catalogue condition (``codes`` None) or an ad-hoc code list."""

    name: str
    codes: CodeList | None = None
    lookback_years: int = 0  # ad-hoc conditions in prevalence cohorts: claims in Y - lookback .. Y


@dataclass(frozen=True, slots=True)
class Study:
    """A checked schema 2 study."""

    name: str
    cohort_type: str
    years: tuple[int, ...]
    conditions: tuple[CohortCondition, ...]
    catalogue: ConditionCatalogue  # the whole catalogue (criteria may name conditions outside the cohort)
    criteria: tuple[Criterion, ...] = ()
    outcomes: tuple[Outcome, ...] = ()
    strata: tuple[str, ...] = ()
    washout_days: int = 730
    population: str = "registered"
    data_years: tuple[int, int] = (2017, 2023)

    @property
    def has_index(self) -> bool:
        return self.cohort_type in ("incidence", "index")

    def outcome(self, kind: str) -> Outcome | None:
        return next((o for o in self.outcomes if o.kind == kind), None)

    @property
    def condition_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.conditions)


def _years(raw: Any, key: str, data_years: tuple[int, int]) -> tuple[int, ...]:
    first, last = data_years
    if not isinstance(raw, (list, tuple)) or not raw or not all(isinstance(y, int) and not isinstance(y, bool)
                                                                for y in raw):
        fail(key, "not a list of years", "a non-empty list of years, e.g. [2019, 2023]")
    if sorted(set(raw)) != list(raw):
        fail(key, "years out of order or repeated", "years in increasing order, each once")
    outside = [y for y in raw if not first <= y <= last]
    if outside:
        fail(key, f"{len(outside)} year(s) outside the extracts", f"years within {first}..{last}")
    return tuple(raw)


def _conditions(raw: Any, catalogue: ConditionCatalogue, cohort_type: str) -> tuple[CohortCondition, ...]:
    key = "cohort.conditions"
    if not isinstance(raw, (list, tuple)) or not raw:
        fail(key, "no conditions", "a non-empty list of catalogue names or {name, codes} mappings")
    out: list[CohortCondition] = []
    for i, item in enumerate(raw):
        k = f"{key}[{i}]"
        if isinstance(item, str):
            if item not in catalogue.names:
                fail(k, f"unknown condition {item!r}", f"a condition of the catalogue {list(catalogue.names)}")
            cond = catalogue[item]
            if cohort_type != "prevalence" and not cond.icpc and not cond.claims:
                fail(k, "a condition defined by an age rule alone has no records", "a condition with codes")
            out.append(CohortCondition(item))
        elif isinstance(item, Mapping):
            known_keys(item, ("name", "codes", "lookback_years"), k)
            name = item.get("name")
            if not isinstance(name, str) or not _NAME.match(name) or name == "all":
                fail(f"{k}.name", "not a valid name", "a name of letters, digits, _ or - (not 'all')")
            if name in catalogue.names:
                fail(f"{k}.name", f"{name!r} is a condition of the catalogue",
                     "an ad-hoc code list's own name (a name means one definition, here and in the ledger)")
            lookback = item.get("lookback_years", 0)
            if not whole(lookback) or not 0 <= lookback <= 10:
                fail(f"{k}.lookback_years", "not a whole number of years", "0..10")
            out.append(CohortCondition(name, parse_codes(item.get("codes"), f"{k}.codes"), lookback))
        else:
            fail(k, "not a condition", "a catalogue name or a mapping {name, codes}")
    names = [c.name for c in out]
    if len(set(names)) != len(names):
        fail(key, "a condition is listed twice", "each condition once")
    return tuple(out)


def parse_study_v2(raw: Mapping[str, Any], catalogue: ConditionCatalogue, *,
                   data_years: tuple[int, int] = (2017, 2023)) -> Study:
    """Check a schema 2 study mapping against the catalogue and the extracts' years.

    Raises:
        ConfigError: on the first problem, naming the key, the rule and what was expected.
    """
    if raw.get("schema") != 2:
        fail("schema", "not schema 2", "schema: 2 (a file without 'schema' is schema 1 and is converted)")
    known_keys(raw, _TOP_KEYS, "")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        fail("name", "missing or not a valid name", "a name of letters, digits, _ or -")
    cohort = raw.get("cohort")
    if not isinstance(cohort, Mapping):
        fail("cohort", "missing", "a mapping with type, years and conditions")
    known_keys(cohort, _COHORT_KEYS, "cohort")
    cohort_type = cohort.get("type", "prevalence")
    if cohort_type not in COHORT_TYPES:
        fail("cohort.type", f"unknown cohort type {cohort_type!r}", f"one of {list(COHORT_TYPES)}")
    washout = cohort.get("washout_days", 730)
    if "washout_days" in cohort and cohort_type != "incidence":
        fail("cohort.washout_days", "a wash-out belongs to incidence cohorts", "no washout_days, or type incidence")
    if not whole(washout) or washout < 1:
        fail("cohort.washout_days", "not a positive number of days", "a whole number >= 1")
    population = raw.get("population", "registered")
    if population not in POPULATIONS:
        fail("population", "unknown base population", "registered or insured")
    strata = raw.get("strata") or []
    if not isinstance(strata, (list, tuple)) or any(s not in STRATA for s in strata) or len(set(strata)) != len(strata):
        fail("strata", "unknown or repeated stratum", f"a list from {list(STRATA)}, each once")
    years = _years(cohort.get("years"), "cohort.years", data_years)
    conditions = _conditions(cohort.get("conditions"), catalogue, cohort_type)
    if cohort_type != "prevalence" and len(conditions) != 1:
        # The attrition chain of "all" is the cohort's own (entry included): one cohort per study.
        fail("cohort.conditions", f"an {cohort_type} cohort has one condition",
             "one condition (a study per condition)")
    has_index = cohort_type != "prevalence"
    criteria = parse_criteria(raw.get("criteria") or [], catalogue, has_index=has_index)
    outcomes = parse_outcomes(raw.get("outcomes") or [], tuple(c.name for c in conditions),
                              cohort_type=cohort_type, data_years=data_years)
    return Study(
        name=name, cohort_type=cohort_type, years=years, conditions=conditions, catalogue=catalogue,
        criteria=criteria, outcomes=outcomes, strata=tuple(strata),
        washout_days=washout, population=population, data_years=data_years,
    )
