"""Outcomes of study schema 2: what is counted for the cohort, in which window.

``contacts`` (persons with >= 1 qualifying contact per discipline: today's care use),
``contact_bands`` (persons by number of contacts), ``costs`` (claimed costs per discipline: a
magnitude table, ``cohort.costs``), ``referrals``, ``top`` and ``acsc`` (method.md sections 5-7).
Each type at most once; its table is named by the type (``docs/study-schema.md``, "Outcomes").
:func:`parse_outcomes` checks the list before any data is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cohort.checks import fail, known_keys, whole
from cohort.codes import CLAIMS_SECTORS
from cohort.config import DISCIPLINES
from cohort.windows import REFERENCE_YEAR, Window, parse_window

__all__ = ["OUTCOME_TYPES", "TABLE_OF", "Outcome", "parse_outcomes"]

OUTCOME_TYPES: dict[str, tuple[str, ...]] = {
    "contacts": ("disciplines", "window", "cause", "dietetics_all_cause"),
    "contact_bands": ("disciplines", "window", "bands"),
    "costs": ("disciplines", "window"),
    "referrals": ("window",),
    "top": ("n", "window"),
    "acsc": ("years", "codes", "window"),
}
TABLE_OF = {"contacts": "care_use", "contact_bands": "contact_bands", "costs": "costs", "referrals": "referrals",
            "top": "top", "acsc": "acsc"}
# method.md sections 5-7 in a prevalence cohort (the reference year; ACSC its own years); in the
# window after the index date in incidence and index cohorts.
_METHOD_SECTIONS = {"referrals": "5", "top": "6", "acsc": "7"}
_PER_DISCIPLINE = ("contacts", "contact_bands", "costs")


@dataclass(frozen=True, slots=True)
class Outcome:
    """One checked outcome; only the fields of its ``kind`` are set."""

    kind: str
    disciplines: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # per cohort condition
    window: Window = REFERENCE_YEAR
    cause: str = "method"
    dietetics_all_cause: bool = True
    bands: tuple[int, ...] = (1, 2, 5, 10)
    n: int = 15
    years: tuple[int, ...] = ()
    codes: tuple[tuple[str, str], ...] = ()  # acsc: (specialism, diagnosis)

    @property
    def table(self) -> str:
        return TABLE_OF[self.kind]


def _disciplines(raw: Any, key: str, conditions: tuple[str, ...], kind: str) -> dict[str, tuple[str, ...]]:
    allowed = CLAIMS_SECTORS if kind == "costs" else DISCIPLINES
    if isinstance(raw, (list, tuple)):
        per = {c: raw for c in conditions}
    elif isinstance(raw, Mapping) and raw:
        for c in raw:
            if c not in conditions:
                fail(f"{key}.{c}", f"{c!r} is not a condition of the cohort", f"one of {list(conditions)}")
        per = dict(raw)
    else:
        fail(key, "missing", "a list of disciplines, or a mapping of condition to a list")
    out = {}
    for c, values in per.items():
        k = key if isinstance(raw, (list, tuple)) else f"{key}.{c}"
        if not isinstance(values, (list, tuple)) or not values:
            fail(k, "an empty list of disciplines", f"a non-empty list from {list(allowed)}")
        for d in values:
            if kind == "costs" and d in DISCIPLINES and d not in CLAIMS_SECTORS:
                fail(k, f"discipline {d!r} has no claimed costs (it is not a claims sector)",
                     f"claims sectors only: {list(CLAIMS_SECTORS)}")
            if d not in allowed:
                fail(k, f"unknown discipline {d!r}", f"one of {list(allowed)}")
        if len(set(values)) != len(values):
            fail(k, "a discipline is listed twice", "each discipline once")
        out[str(c)] = tuple(values)
    return out


def _one(raw: Mapping[str, Any], key: str, conditions: tuple[str, ...], cohort_type: str,
         data_years: tuple[int, int]) -> Outcome:
    kind = raw.get("type")
    if kind not in OUTCOME_TYPES:
        fail(f"{key}.type", f"unknown outcome {kind!r}", f"one of {list(OUTCOME_TYPES)}")
    known_keys(raw, ("type", *OUTCOME_TYPES[kind]), key)
    fields: dict[str, Any] = {}
    if kind in _PER_DISCIPLINE:
        fields["disciplines"] = _disciplines(raw.get("disciplines"), f"{key}.disciplines", conditions, kind)
    if kind in _METHOD_SECTIONS and cohort_type == "prevalence" and "window" in raw:
        fail(f"{key}.window", f"{kind} of a prevalence cohort is method.md section {_METHOD_SECTIONS[kind]}, "
             "counted in the reference year" + (" (its years)" if kind == "acsc" else ""),
             "no window (or an incidence or index cohort)")
    if "window" in raw:
        fields["window"] = parse_window(raw["window"], f"{key}.window", index_allowed=cohort_type != "prevalence")
    elif cohort_type != "prevalence":
        fail(f"{key}.window", "missing", "a window after the index date, e.g. {days: [0, 365]}")
    if kind == "contacts":
        if raw.get("cause", "method") not in ("method", "all"):
            fail(f"{key}.cause", "unknown cause", "method (all-cause or specific as method.md section 3) or all")
        if not isinstance(raw.get("dietetics_all_cause", True), bool):
            fail(f"{key}.dietetics_all_cause", "not true or false", "true or false")
        fields |= {"cause": raw.get("cause", "method"), "dietetics_all_cause": raw.get("dietetics_all_cause", True)}
    elif kind == "contact_bands":
        bands = raw.get("bands", [1, 2, 5, 10])
        if (not isinstance(bands, (list, tuple)) or not bands or not all(whole(b) and b >= 1 for b in bands)
                or sorted(set(bands)) != list(bands)):
            fail(f"{key}.bands", "not increasing lower bounds", "increasing whole numbers >= 1, e.g. [1, 2, 5, 10]")
        fields["bands"] = tuple(bands)
    elif kind == "top":
        n = raw.get("n", 15)
        if not whole(n) or n < 1:
            fail(f"{key}.n", "not a positive number", "a whole number >= 1")
        fields["n"] = n
    elif kind == "acsc":
        first, last = data_years
        years = raw.get("years") or []
        if cohort_type != "prevalence" and "years" in raw:
            fail(f"{key}.years", f"an {cohort_type} cohort counts admissions in its window",
                 "no years: the window after the index date counts")
        if cohort_type == "prevalence" and (not years or not all(whole(y) and first <= y <= last for y in years)):
            fail(f"{key}.years", "missing or outside the extracts", f"a non-empty list of years within {first}..{last}")
        pairs = []
        for code in raw.get("codes") or ():
            spec, sep, diag = str(code).partition(":")
            if not sep or len(spec) != 4 or not spec.isdigit() or not diag:
                fail(f"{key}.codes", "not a DBC pair", "MSZ 'specialism:diagnosis' pairs with a 4-digit specialism")
            pairs.append((spec, diag.strip().upper()))
        if not pairs:
            fail(f"{key}.codes", "an empty code list", "a non-empty list of MSZ 'specialism:diagnosis' pairs")
        fields |= {"years": tuple(years), "codes": tuple(pairs)}
    return Outcome(kind=kind, **fields)


def parse_outcomes(raw: Any, conditions: tuple[str, ...], *, cohort_type: str,
                   data_years: tuple[int, int]) -> tuple[Outcome, ...]:
    """The checked outcomes of a study (``outcomes`` of the study file)."""
    if not isinstance(raw, (list, tuple)):
        fail("outcomes", "not a list", "a list of {type: ..., ...}")
    out: list[Outcome] = []
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping):
            fail(f"outcomes[{i}]", "not a mapping", "{type: ..., ...}")
        outcome = _one(item, f"outcomes[{i}]", conditions, cohort_type, data_years)
        if any(o.kind == outcome.kind for o in out):
            fail(f"outcomes[{i}].type", f"a second {outcome.kind} outcome", "each outcome type at most once")
        out.append(outcome)
    return tuple(out)
