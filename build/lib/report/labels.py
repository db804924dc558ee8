"""Readable names for the codes a release uses (conditions, disciplines, exclusion steps).

A release names conditions, disciplines and steps by code only. These names come from the seed
study's catalogue (``conf/conditions/seed_study.yaml``), the data contract's sector list and the
method's exclusion table (``shared/spec/method.md``); a code not listed here is shown as it is,
so a release of another catalogue still renders. They are words, never data.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["ALL_CAUSE", "condition", "discipline", "discipline_order", "patients", "step", "stratum"]

_CONDITIONS = {
    "mental_health": "Mental health problems",
    "cancer": "Cancer",
    "cardiovascular": "Cardiovascular disease",
    "frail_elderly": "Frail elderly",
    "neck_back": "Chronic neck and back complaints",
    "osteoarthritis": "Peripheral osteoarthritis",
    "diabetes": "Diabetes mellitus",
    "asthma_copd": "Asthma/COPD",
    "intellectual_disability": "Intellectual disability",
    "all": "All persons",
}

# The method's order of disciplines (method.md, rule 10), names from the data contract.
_DISCIPLINES = {
    "HA": "General practitioner",
    "POH-GGZ": "Mental health nurse",
    "FT": "Physiotherapy",
    "OT": "Exercise therapy",
    "HT": "Skin therapy",
    "DT": "Dietetics",
    "ET": "Occupational therapy",
    "MSZ": "Medical specialist care",
    "GGZ_B": "Basic mental health care",
    "GGZ_S": "Specialised mental health care",
    "WV": "District nursing",
    "ELV": "Short primary-care stay",
    "HAP": "Out-of-hours GP post",
    "SEH": "Emergency department",
}

# Disciplines counted for any reason of contact (method.md section 3, the seed's figure notes);
# for frail elderly and intellectual disability every discipline is. Dietetics follows the
# study's setting (any reason by default), which the release does not carry.
ALL_CAUSE = ("ET", "HT", "WV", "ELV", "HAP", "SEH")

_STEPS = {
    "base": "Registered at a practice in the year",
    "X1": "X1 not linkable",
    "X2": "X2 birth date unknown",
    "X3": "X3 in a long-term care (Wlz) institution",
    "X4": "X4 registered at more than one practice",
    "X5": "X5 not registered for the whole year",
    "X6": "X6 practice with insufficient data",
    "X7": "X7 insurer with incomplete claims",
}

# "Percentage of <patients> with one or more contacts" (the seed's captions, Figuur 59-67).
_PATIENTS = {
    "frail_elderly": "frail elderly persons",
    "intellectual_disability": "patients with an intellectual disability",
    "all": "all persons",
}

_STRATA = {"age_band": "Age band", "sex": "Sex", "region": "Region"}


def condition(code: str) -> str:
    return _CONDITIONS.get(code, code)


def patients(code: str) -> str:
    """``patients with asthma/COPD``: the group a care-use figure is about."""
    if code in _PATIENTS:
        return _PATIENTS[code]
    name = _CONDITIONS.get(code, code)
    lowered = name[:1].lower() + name[1:] if name[1:2].islower() else name
    return f"patients with {lowered}"


def discipline(code: str) -> str:
    """``General practitioner (HA)``; an unknown code as it is."""
    name = _DISCIPLINES.get(code)
    return f"{name} ({code})" if name else code


def step(code: str) -> str:
    return _STEPS.get(code, code)


def stratum(column: str) -> str:
    return _STRATA.get(column, column)


def discipline_order(codes: Iterable[str]) -> list[str]:
    """The method's order, unknown codes after it in alphabetical order."""
    known = list(_DISCIPLINES)
    unique = set(codes)
    return [c for c in known if c in unique] + sorted(unique - set(known))
