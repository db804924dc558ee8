"""The study configuration a researcher writes, validated before any data is read.

A study names its reference years, the condition catalogue (``conf/conditions``), which
disciplines to report per condition, the practice-sufficiency thresholds, strata, top-N and the
ACSC list. :func:`parse_study` turns the composed Hydra mapping into a frozen
:class:`StudyConfig` once, and every problem names the key and what was expected.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from extracts.codelists import ConditionCatalogue
from extracts.contract import SECTORS
from extracts.errors import ConfigError

__all__ = ["COST_SECTORS", "DISCIPLINES", "STRATA", "AcscConfig", "StudyConfig", "Sufficiency", "parse_study"]

# method.md section 9.10: reported separately.
DISCIPLINES = ("HA", "POH-GGZ", "FT", "OT", "HT", "DT", "ET", "MSZ", "GGZ_B", "GGZ_S", "WV", "ELV", "HAP", "SEH")
STRATA = ("age_band", "sex", "region")
# Disciplines whose care is claimed from insurers (extracts' claims sectors): they have costs.
# HA, POH-GGZ and HAP are counted from the GP's records, which hold no costs.
COST_SECTORS = tuple(d for d in DISCIPLINES if d in SECTORS)


@dataclass(frozen=True, slots=True)
class Sufficiency:
    min_patients: int = 500
    min_weeks: int = 46
    min_icpc_share: float = 0.70


@dataclass(frozen=True, slots=True)
class AcscConfig:
    years: tuple[int, ...]
    codes: tuple[tuple[str, str], ...]  # (specialism, diagnosis)


@dataclass(frozen=True, slots=True)
class StudyConfig:
    name: str
    reference_years: tuple[int, ...]
    catalogue: ConditionCatalogue
    disciplines: Mapping[str, tuple[str, ...]]
    dietetics_all_cause: bool = True
    sufficiency: Sufficiency = Sufficiency()
    strata: tuple[str, ...] = ()
    top_n: int = 15
    acsc: AcscConfig = AcscConfig((), ())
    data_years: tuple[int, int] = (2017, 2023)
    cost_sectors: tuple[str, ...] = ()  # claimed costs per sector (cohort.costs); () = no costs table
    linkage_fallback: str = "include"  # include | exclude: records the TTP linked without a BSN


FALLBACK_CHOICES = ("include", "exclude")


def _fail(key: str, expected: str) -> None:
    msg = f"study config: {key}: expected {expected}"
    raise ConfigError(msg)


def parse_study(raw: Mapping[str, Any], catalogue: ConditionCatalogue, *, data_years: tuple[int, int] = (2017, 2023)) -> StudyConfig:
    """Validate a study mapping against the catalogue and the extracts' year range."""
    first, last = data_years
    years = raw.get("reference_years")
    if not years or not all(isinstance(y, int) for y in years):
        _fail("reference_years", "a non-empty list of years")
    if sorted(set(years)) != list(years):
        _fail("reference_years", "years in increasing order, each once")
    for y in years:
        if not first <= y <= last:
            _fail("reference_years", f"years within the extracts' range {first}..{last}; {y} is not")
    disciplines_raw = raw.get("disciplines") or {}
    if not disciplines_raw:
        _fail("disciplines", "a mapping of condition -> list of disciplines")
    disciplines: dict[str, tuple[str, ...]] = {}
    for condition, values in disciplines_raw.items():
        if condition not in catalogue.names:
            _fail(f"disciplines.{condition}", f"a condition of the catalogue {list(catalogue.names)}")
        unknown = [d for d in values or () if d not in DISCIPLINES]
        if unknown or not values:
            _fail(f"disciplines.{condition}", f"a non-empty list of disciplines from {list(DISCIPLINES)}")
        disciplines[str(condition)] = tuple(values)
    strata = tuple(raw.get("strata") or ())
    for s in strata:
        if s not in STRATA:
            _fail("strata", f"a list from {list(STRATA)}")
    suff_raw = dict(raw.get("practice_sufficiency") or {})
    try:
        sufficiency = Sufficiency(**suff_raw)
    except TypeError:
        _fail("practice_sufficiency", "keys min_patients, min_weeks, min_icpc_share")
    if not 0 <= sufficiency.min_icpc_share <= 1 or not 0 <= sufficiency.min_weeks <= 53:
        _fail("practice_sufficiency", "min_icpc_share in [0, 1] and min_weeks in [0, 53]")
    acsc_raw = raw.get("acsc") or {}
    acsc_years = tuple(acsc_raw.get("years") or ())
    for y in acsc_years:
        if not first <= y <= last:
            _fail("acsc.years", f"years within the extracts' range {first}..{last}; {y} is not")
    pairs = []
    for code in acsc_raw.get("codes") or ():
        spec, sep, diag = str(code).partition(":")
        if not sep or len(spec) != 4 or not spec.isdigit() or not diag:
            _fail("acsc.codes", "MSZ 'specialism:diagnosis' pairs with a 4-digit specialism")
        pairs.append((spec, diag.strip().upper()))
    if acsc_years and not pairs:
        _fail("acsc.codes", "a non-empty list when acsc.years is given")
    top_n = raw.get("top_n", 15)
    if not isinstance(top_n, int) or top_n < 1:
        _fail("top_n", "a positive integer")
    cost_sectors = _cost_sectors(raw.get("costs"))
    linkage_raw = raw.get("linkage") or {}
    if not isinstance(linkage_raw, Mapping) or set(linkage_raw) - {"fallback"}:
        _fail("linkage", "a mapping with the key fallback")
    fallback = linkage_raw.get("fallback", "include")
    if fallback not in FALLBACK_CHOICES:
        _fail("linkage.fallback", "include or exclude")
    # The study's conditions are the ones it reports disciplines for, in the catalogue's order.
    studied = ConditionCatalogue(tuple(c for c in catalogue.conditions if c.name in disciplines))
    return StudyConfig(
        name=str(raw.get("name", "study")),
        reference_years=tuple(years),
        catalogue=studied,
        disciplines=disciplines,
        dietetics_all_cause=bool(raw.get("dietetics_all_cause", True)),
        sufficiency=sufficiency,
        strata=strata,
        top_n=top_n,
        acsc=AcscConfig(acsc_years, tuple(pairs)),
        data_years=data_years,
        cost_sectors=cost_sectors,
        linkage_fallback=str(fallback),
    )


def _cost_sectors(raw: object) -> tuple[str, ...]:
    """``costs: {sectors: [...]}``: the claims sectors whose costs the study reports (issue 12)."""
    if raw is None:
        return ()
    if not isinstance(raw, Mapping) or set(map(str, raw)) != {"sectors"}:
        _fail("costs", "a mapping with one key, sectors: a list of sectors with claimed costs")
    sectors = raw["sectors"]
    if not isinstance(sectors, list | tuple) or not sectors:
        _fail("costs.sectors", f"a non-empty list of sectors with claimed costs from {list(COST_SECTORS)}")
    for sector in sectors:
        if sector not in COST_SECTORS:
            rule = ("it has no claimed costs (counted from the GP's records)" if sector in DISCIPLINES
                    else "not a sector")
            _fail(f"costs.sectors.{sector}", f"a sector with claimed costs from {list(COST_SECTORS)} ({rule})")
    if len(set(sectors)) != len(sectors):
        _fail("costs.sectors", "each sector once")
    return tuple(s for s in COST_SECTORS if s in sectors)
