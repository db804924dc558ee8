"""Condition code lists: ICPC codes with chronicity, and claims codes per sector.

The lists are configuration (``conf/conditions/*.yaml``), shared by the generator (which plants
them in generated extracts) and the cohort stage (which finds patients with them). They are
turned into frozen dataclasses once, here, and validated before any data is read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from extracts.contract import SECTORS
from extracts.errors import ConfigError

__all__ = [
    "CHRONICITIES",
    "ClaimsCode",
    "Condition",
    "ConditionCatalogue",
    "SubCondition",
    "load_catalogue",
    "parse_catalogue",
]

CHRONICITIES = {"chronic": 2, "long_term": 1}  # lookback years before Y (method.md section 2)
_ICPC_BASE = re.compile(r"^[ABDFHKLNPRSTUWXYZ]\d{2}$")
_CLAIMS_SECTORS = ("MSZ", "FT", "OT", "DT", "GGZ_B", "GGZ_S")  # sectors with diagnosis codes


@dataclass(frozen=True, slots=True)
class ClaimsCode:
    """A claims code: sector, code, and for MSZ the specialism of the DBC pair."""

    sector: str
    code: str
    specialism: str | None = None


@dataclass(frozen=True, slots=True)
class SubCondition:
    name: str
    icpc: tuple[str, ...]
    chronicity: str
    claims: tuple[ClaimsCode, ...] = ()

    @property
    def lookback_years(self) -> int:
        return CHRONICITIES[self.chronicity]


@dataclass(frozen=True, slots=True)
class Condition:
    name: str
    label: str
    all_cause: bool
    subconditions: tuple[SubCondition, ...]
    min_age: int | None = None

    @property
    def icpc(self) -> tuple[str, ...]:
        return tuple(c for s in self.subconditions for c in s.icpc)

    @property
    def claims(self) -> tuple[ClaimsCode, ...]:
        return tuple(c for s in self.subconditions for c in s.claims)

    def claims_codes(self, sector: str) -> tuple[ClaimsCode, ...]:
        return tuple(c for c in self.claims if c.sector == sector)


@dataclass(frozen=True, slots=True)
class ConditionCatalogue:
    conditions: tuple[Condition, ...]

    def __getitem__(self, name: str) -> Condition:
        for c in self.conditions:
            if c.name == name:
                return c
        msg = f"unknown condition {name!r}; known: {', '.join(self.names)}"
        raise ConfigError(msg)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.conditions)


def _fail(key: str, expected: str) -> None:
    msg = f"condition config: {key}: expected {expected}"
    raise ConfigError(msg)


def _parse_condition(name: str, raw: Mapping[str, Any]) -> Condition:
    subs = []
    raw_subs = raw.get("subconditions") or {}
    if not raw_subs:
        _fail(f"conditions.{name}.subconditions", "at least one sub-condition")
    for sub_name, sub in raw_subs.items():
        key = f"conditions.{name}.subconditions.{sub_name}"
        codes = tuple(str(c).strip().upper() for c in (sub.get("icpc") or ()))
        if not codes:
            _fail(f"{key}.icpc", "a non-empty list of ICPC codes")
        bad = [c for c in codes if not _ICPC_BASE.match(c)]
        if bad:
            _fail(f"{key}.icpc", f"ICPC base codes (letter + 2 digits); {len(bad)} are not")
        chronicity = sub.get("chronicity")
        if chronicity not in CHRONICITIES:
            _fail(f"{key}.chronicity", f"one of {sorted(CHRONICITIES)}")
        claims = _parse_claims(key, sub.get("claims") or {})
        subs.append(SubCondition(str(sub_name), codes, str(chronicity), claims))
    min_age = raw.get("min_age")
    return Condition(
        name=name,
        label=str(raw.get("label", name)),
        all_cause=bool(raw.get("all_cause", False)),
        subconditions=tuple(subs),
        min_age=None if min_age is None else int(min_age),
    )


def _parse_claims(key: str, raw: Mapping[str, Any]) -> tuple[ClaimsCode, ...]:
    claims = []
    for sector, codes in raw.items():
        key = f"{key}.claims.{sector}"
        if sector not in SECTORS or sector not in _CLAIMS_SECTORS:
            _fail(key, f"a sector with diagnosis codes, one of {list(_CLAIMS_SECTORS)}")
        if not codes:
            _fail(key, "a non-empty list of codes (or leave the sector out)")
        for code in codes:
            code = str(code).strip().upper()
            if sector == "MSZ":
                specialism, sep, diagnosis = code.partition(":")
                if not sep or not re.fullmatch(r"\d{4}", specialism) or not diagnosis:
                    _fail(key, "'specialism:diagnosis' pairs with a 4-digit specialism")
                claims.append(ClaimsCode(sector, diagnosis, specialism))
            else:
                claims.append(ClaimsCode(sector, code))
    return tuple(claims)


def parse_catalogue(raw: Mapping[str, Any]) -> ConditionCatalogue:
    """Validate a condition mapping (``{"conditions": {...}}``) into a catalogue."""
    conditions = raw.get("conditions")
    if not conditions:
        _fail("conditions", "a non-empty mapping of condition definitions")
    return ConditionCatalogue(tuple(_parse_condition(str(n), c) for n, c in conditions.items()))


def load_catalogue(path: str | Path) -> ConditionCatalogue:
    """Load and validate a condition catalogue from a YAML file."""
    path = Path(path)
    if not path.is_file():
        msg = f"condition config not found: {path}"
        raise ConfigError(msg)
    raw = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    return parse_catalogue(raw)  # type: ignore[arg-type]
