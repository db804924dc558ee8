"""Criteria of study schema 2: the ordered, named inclusion and exclusion rules.

Each criterion is one step of the attrition chain (``docs/study-schema.md``, "Attrition and
criteria"): the built-in exclusions X1-X7 of method.md section 1 with their parameters, and the
generic rules ``has``, ``has_not``, ``age``, ``sex``, ``registered``, ``insured``, ``not_wlz`` and
``linked``. :func:`parse_criteria` checks the list before any data is read; ``cohort.criteria_plan``
compiles each rule to a polars expression (one small builder per rule, as OHDSI Circe does).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cohort.checks import fail, known_keys, whole
from cohort.codes import CodeList, parse_codes
from cohort.config import Sufficiency
from cohort.population import RULES
from cohort.windows import Window, parse_window
from extracts.codelists import ConditionCatalogue

__all__ = ["GENERIC_RULES", "RESERVED_STEPS", "Criterion", "parse_criteria"]

# Parameters each rule takes (besides name and rule).
GENERIC_RULES: dict[str, tuple[str, ...]] = {
    "has": ("condition", "codes", "window"),
    "has_not": ("condition", "codes", "window"),
    "age": ("min", "max", "at"),
    "sex": ("values",),
    "registered": ("days", "relative_to"),
    "insured": ("complete_insurer",),
    "not_wlz": (),
    "linked": ("method",),
}
_BUILT_IN: dict[str, tuple[str, ...]] = {r: () for r in RULES} | {"X6": ("min_patients", "min_weeks", "min_icpc_share"),
                                                                    "X1": ("fallback",)}
RESERVED_STEPS = ("base", "entry")
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_ANCHORS = ("reference_year", "index")


@dataclass(frozen=True, slots=True)
class Criterion:
    """One checked criterion; only the fields of its ``rule`` are set."""

    name: str
    rule: str
    window: Window | None = None
    condition: str | None = None  # has / has_not: a catalogue condition ...
    codes: CodeList | None = None  # ... or an ad-hoc code list
    min_age: int | None = None
    max_age: int | None = None
    at: str = "reference_year"  # age: age reached in Y, or completed years on the index date
    values: tuple[str, ...] = ()  # sex
    days: int = 0  # registered
    relative_to: str = "reference_year"  # registered: before 1 Jan Y, or before the index date
    complete_insurer: bool = True  # insured
    method: str = "bsn"  # linked
    sufficiency: Sufficiency | None = None  # X6
    fallback: str = "include"  # X1: a link the TTP made without the BSN counts (include) or not (exclude)

    @property
    def uses_index(self) -> bool:
        """Whether the rule needs the index date (it then comes after the ``entry`` step)."""
        return bool((self.window is not None and self.window.uses_index) or self.at == "index"
                    or self.relative_to == "index")


def _anchor(raw: dict, field: str, key: str, has_index: bool) -> str:
    value = raw.get(field, "reference_year")
    if value not in _ANCHORS:
        fail(f"{key}.{field}", f"unknown anchor {value!r}", f"one of {list(_ANCHORS)}")
    if value == "index" and not has_index:
        fail(f"{key}.{field}", "a prevalence cohort has no index date", "reference_year, or cohort.type incidence or index")
    return str(value)


def _generic(raw: dict, key: str, catalogue: ConditionCatalogue, has_index: bool) -> dict[str, Any]:
    rule = raw["rule"]
    if rule in ("has", "has_not"):
        if ("condition" in raw) == ("codes" in raw):
            fail(key, "needs exactly one of condition and codes", "condition: NAME or codes: {icpc, claims}")
        if "window" not in raw:
            fail(f"{key}.window", "missing", "a window, e.g. {years: [-5, -1]} or {days: [-1825, -1]}")
        out: dict[str, Any] = {"window": parse_window(raw["window"], f"{key}.window", index_allowed=has_index)}
        if "condition" in raw:
            cond = raw["condition"]
            if cond not in catalogue.names:
                fail(f"{key}.condition", f"unknown condition {cond!r}", f"a condition of the catalogue {list(catalogue.names)}")
            if not catalogue[cond].icpc and not catalogue[cond].claims:
                fail(f"{key}.condition", "a condition defined by an age rule alone has no records", "a condition with codes")
            out["condition"] = str(cond)
        else:
            out["codes"] = parse_codes(raw["codes"], f"{key}.codes")
        return out
    if rule == "age":
        low, high = raw.get("min"), raw.get("max")
        if low is None and high is None:
            fail(key, "no bound", "min and/or max (inclusive ages)")
        for field, v in (("min", low), ("max", high)):
            if v is not None and (not whole(v) or not 0 <= v <= 130):
                fail(f"{key}.{field}", "not an age", "a whole number 0..130")
        if low is not None and high is not None and high < low:
            fail(f"{key}.max", f"the range ends ({high}) before it starts ({low})", "max >= min")
        return {"min_age": low, "max_age": high, "at": _anchor(raw, "at", key, has_index)}
    if rule == "sex":
        values = raw.get("values")
        if not isinstance(values, (list, tuple)) or not values or any(v not in ("M", "F", "X") for v in values):
            fail(f"{key}.values", "missing or unknown sex", "a non-empty list of M, F, X")
        return {"values": tuple(dict.fromkeys(values))}
    if rule == "registered":
        days = raw.get("days")
        if not whole(days) or days < 1:
            fail(f"{key}.days", "not a positive number of days", "a whole number >= 1")
        return {"days": days, "relative_to": _anchor(raw, "relative_to", key, has_index)}
    if rule == "insured":
        complete = raw.get("complete_insurer", True)
        if not isinstance(complete, bool):
            fail(f"{key}.complete_insurer", "not true or false", "true or false")
        return {"complete_insurer": complete}
    if rule == "linked":
        method = raw.get("method", "bsn")
        if method not in ("bsn", "any"):
            fail(f"{key}.method", f"unknown link method {method!r}", "bsn or any")
        return {"method": method}
    return {}


def _x6(raw: dict, key: str) -> dict[str, Any]:
    s = Sufficiency(**{k: raw[k] for k in ("min_patients", "min_weeks", "min_icpc_share") if k in raw})
    if not whole(s.min_patients) or s.min_patients < 0:
        fail(f"{key}.min_patients", "not a count", "a whole number >= 0")
    if not whole(s.min_weeks) or not 0 <= s.min_weeks <= 53:
        fail(f"{key}.min_weeks", "not a number of weeks", "a whole number in [0, 53]")
    if isinstance(s.min_icpc_share, bool) or not isinstance(s.min_icpc_share, (int, float)) or not 0 <= s.min_icpc_share <= 1:
        fail(f"{key}.min_icpc_share", "not a share", "a number in [0, 1]")
    return {"sufficiency": s}


def _x1(raw: dict, key: str) -> dict[str, Any]:
    fallback = raw.get("fallback", "include")
    if fallback not in ("include", "exclude"):
        fail(f"{key}.fallback", f"unknown setting {fallback!r}", "include (a fallback link counts as linked) or "
             "exclude (linkage on the BSN only, method.md's X1)")
    return {"fallback": str(fallback)}


def parse_criteria(raw: Any, catalogue: ConditionCatalogue, *, has_index: bool) -> tuple[Criterion, ...]:
    """The checked, ordered criteria of a study (``criteria`` of the study file)."""
    if not isinstance(raw, (list, tuple)):
        fail("criteria", "not a list", "an ordered list of {name, rule, ...}")
    out: list[Criterion] = []
    for i, item in enumerate(raw):
        key = f"criteria[{i}]"
        if not isinstance(item, Mapping):
            fail(key, "not a mapping", "{name: ..., rule: ..., ...}")
        item = dict(item)
        rule = item.get("rule")
        if rule not in _BUILT_IN and rule not in GENERIC_RULES:
            fail(f"{key}.rule", f"unknown criterion {rule!r}", f"one of {[*_BUILT_IN, *GENERIC_RULES]}")
        name = item.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            fail(f"{key}.name", "missing or not a valid name", "a name of letters, digits, _ or -")
        if name in RESERVED_STEPS:
            fail(f"{key}.name", f"{name!r} is a step of every chain", f"a name other than {list(RESERVED_STEPS)}")
        if name in {c.name for c in out}:
            fail(f"{key}.name", f"the name {name!r} is used twice", "a unique name per criterion")
        known_keys(item, ("name", "rule", *_BUILT_IN.get(rule, GENERIC_RULES.get(rule, ()))), key)
        fields = (_x6(item, key) if rule == "X6" else _x1(item, key) if rule == "X1"
                  else _generic(item, key, catalogue, has_index) if rule in GENERIC_RULES else {})
        criterion = Criterion(name=name, rule=rule, **fields)
        if out and out[-1].uses_index and not criterion.uses_index:
            fail(key, "a criterion on the reference year after one on the index date",
                 "criteria relative to the index date after those relative to the reference year")
        out.append(criterion)
    return tuple(out)
