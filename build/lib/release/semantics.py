"""The relations a study's *definitions* imply between its counts (issue 11, item 2).

The additive relations of :func:`release.layout.relations` follow from the tables' shape
(margins, "n of N", the attrition chain). A reader who knows the method knows more: the frail
elderly are everyone aged 80+ plus the demented (method.md section 2), so in a release
stratified by age band the frail elderly of 80+ *are* the population of 80+; a condition whose
case-finding sources include all of another's holds all its persons; all-cause care of a
condition holds the care of any condition it contains. Every such rule is a relation here, in the
manifest's vocabulary (``docs/release-format.md``, "relations"), so that protection and the
independent auditor both use it:

- ``equal``: the age rule (prevalent of an age-rule condition in a band wholly at or above its
  minimum age = the band's population);
- ``part_of`` with ``where``: a subset between cells of the same or another quantity; the
  difference is a derived cell, a count of persons protected like a complement (``protect``
  true), or a mere slack (``protect`` false: contacts - persons of a top-list row).

The definitions come from the study folder's manifest (``cohort.output.definitions``).
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["contains", "domain_relations", "structural_subsets"]

_ALL = "all"


def _sources(definition: Mapping) -> dict[tuple[str, str, str], int]:
    """A condition's case-finding sources: (kind, sector, code) -> lookback years."""
    out: dict[tuple[str, str, str], int] = {}
    for kind, sector, code, lookback in definition.get("sources", []):
        key = (str(kind), str(sector), str(code))
        out[key] = max(out.get(key, 0), int(lookback))
    return out


def contains(whole: Mapping, part: Mapping) -> bool:
    """True when every person the ``part`` definition finds, the ``whole`` definition finds too.

    Every source of ``part`` is a source of ``whole`` with at least its lookback, and the age
    rule of ``part`` (everyone aged ``min_age`` or more) is covered by an age rule of ``whole``
    at that age or younger.
    """
    mine, theirs = _sources(whole), _sources(part)
    if any(source not in mine or mine[source] < lookback for source, lookback in theirs.items()):
        return False
    if part.get("min_age") is not None:
        return whole.get("min_age") is not None and int(whole["min_age"]) <= int(part["min_age"])
    return True


def _subset(part: str, whole: str, where: dict, set_: dict, complement: str, *, protect: bool = True) -> dict:
    return {"type": "part_of", "part": part, "whole": whole, "where": where, "drop": [], "set": set_,
            "complement": complement, "protect": protect}


def _bands_at_or_above(definitions: Mapping, min_age: int, levels: tuple[str, ...]) -> list[str]:
    bands = definitions.get("age_bands", {})
    return [b for b in levels if b in bands and int(bands[b][0]) >= min_age]


def domain_relations(definitions: Mapping, strata: tuple[str, ...], levels: Mapping[str, tuple[str, ...]],
                     conditions: tuple[str, ...]) -> list[dict]:
    """Every relation the study's definitions imply between the release's quantities.

    Args:
        definitions: the study folder's ``definitions`` (age bands, conditions, care per discipline).
        strata: the release's strata.
        levels: the levels of each stratum.
        conditions: the conditions the study's tables report.
    """
    conds = definitions.get("conditions", {})
    care: Mapping[str, Mapping[str, str]] = definitions.get("care", {})
    out: list[dict] = []
    # Conditions that contain others (equal definitions contain each other: both ways hold).
    for a in conditions:
        for b in conditions:
            if a == b or a not in conds or b not in conds or not contains(conds[a], conds[b]):
                continue
            name = f"in:{a}"
            for quantity in ("prevalent", "referral_base", "attrition_before", "attrition_excluded",
                             "attrition_after"):
                out.append(_subset(quantity, quantity, {"condition": b}, {"condition": a}, f"{name}:{quantity}"))
            if conds[a].get("all_cause") or not conds[b].get("all_cause"):
                out.append(_subset("referred", "referred", {"condition": b}, {"condition": a}, f"{name}:referred"))
            shared = [d for d in care.get(b, {}) if d in care.get(a, {})
                      and (care[a][d] == "all-cause" or care[b][d] == "specific")]
            if shared:
                out.append(_subset("care_use", "care_use", {"condition": b, "discipline": shared},
                                   {"condition": a}, f"{name}:care_use"))
    # The age rule: everyone of a band at or above the minimum age has the condition.
    if "age_band" in strata:
        for c in conditions:
            min_age = conds.get(c, {}).get("min_age")
            if min_age is None:
                continue
            bands = _bands_at_or_above(definitions, int(min_age), tuple(levels.get("age_band", ())))
            if not bands:
                continue
            out.append({"type": "equal", "left": "prevalent", "where": {"condition": c, "age_band": bands},
                        "except": {}, "right": "population", "drop": ["condition"]})
            # There, all-cause care of c counts every person with a contact: the care of any
            # other condition in the band is part of it.
            for other in conditions:
                shared = [d for d in care.get(other, {}) if care.get(c, {}).get(d) == "all-cause"]
                if other != c and shared:
                    out.append(_subset("care_use", "care_use",
                                       {"condition": other, "discipline": shared, "age_band": bands},
                                       {"condition": c}, f"in:{c}:care_use"))
    return out


def structural_subsets() -> list[dict]:
    """Subsets that hold for every study: a condition's attrition chain within the overall one,
    and persons <= events in a top-list row and in ACSC."""
    return [
        _subset("attrition_before", "attrition_before", {}, {"condition": _ALL}, "others:attrition_before"),
        _subset("attrition_after", "attrition_after", {}, {"condition": _ALL}, "others:attrition_after"),
        _subset("contact_persons", "contacts", {}, {}, "extra:contacts", protect=False),
        _subset("acsc_persons", "acsc_admissions", {}, {}, "extra:acsc_admissions", protect=False),
    ]
