"""The relations the release format gives its tables: a manifest may add to them, never drop one.

The auditor bounds hidden cells with the equations the manifest's ``relations`` describe. A
manifest without them (or without one) hides what a reader of the tables knows anyway: that a
``Total`` row is the sum of its levels, that the prevalent persons are part of the population, that
an attrition chain adds up. Then a release whose suppression those equations break would pass.
So for every table of the format the release holds, the auditor requires the relations
``docs/release-format.md`` ("Relations of the seed study's tables") gives it, and a ``margin``
relation for every stratified count quantity and every stratum (its levels as the table's
``dimensions`` give them). A missing one is a blocking finding (``relation``).
"""

from __future__ import annotations

from audit.checks import Finding
from audit.release import Release

__all__ = ["FORMAT_RELATIONS", "missing_relations"]

_ATTRITION_ORDER = ["base", "X1", "X2", "X3", "X4", "X5", "X6", "X7"]
# Table -> the relations the format gives it (docs/release-format.md).
FORMAT_RELATIONS: dict[str, list[dict]] = {
    "prevalence": [
        {"type": "part_of", "part": "prevalent", "whole": "population", "drop": ["condition"], "set": {},
         "complement": "not:prevalent"},
    ],
    "care_use": [
        {"type": "part_of", "part": "care_use", "whole": "prevalent", "drop": ["discipline"], "set": {},
         "complement": "not:care_use"},
    ],
    "referrals": [
        {"type": "part_of", "part": "referred", "whole": "referral_base", "drop": [], "set": {},
         "complement": "not:referred"},
        {"type": "part_of", "part": "referral_base", "whole": "prevalent", "drop": [], "set": {},
         "complement": "not:referral_base"},
    ],
    "attrition": [
        {"type": "part_of", "part": "attrition_excluded", "whole": "attrition_excluded", "drop": [],
         "set": {"condition": "all"}, "complement": "others:attrition_excluded"},
        {"type": "chain", "before": "attrition_before", "excluded": "attrition_excluded",
         "after": "attrition_after", "along": "step", "order": _ATTRITION_ORDER},
        {"type": "equal", "left": "attrition_after", "where": {"step": "X7", "condition": "all"}, "except": {},
         "right": "population", "drop": ["step", "condition"]},
        {"type": "equal", "left": "attrition_after", "where": {"step": "X7"}, "except": {"condition": "all"},
         "right": "prevalent", "drop": ["step"]},
    ],
    "top": [
        {"type": "remainder", "table": "top", "total": "total_contacts", "parts": "contacts", "over": "group",
         "group_by": ["year", "discipline"], "remainder": "contacts_other"},
    ],
    "acsc": [
        {"type": "events_of", "table": "acsc", "events": "admissions", "persons": "persons"},
    ],
}


def _margins(release: Release) -> list[dict]:
    """A margin relation per stratified count quantity and stratum of the released tables."""
    out = []
    for table in release.tables.values():
        dimensions = table.spec.get("dimensions", {})
        for entry in table.spec.get("counts", {}).values():
            by = entry["by"] if isinstance(entry["by"], list) else list(entry["by"])
            for dim, spec in dimensions.items() if isinstance(dimensions, dict) else ():
                if dim in by and isinstance(spec, dict):
                    levels = [str(v) for v in spec.get("levels", [])]
                    out.append({"type": "margin", "quantity": entry["quantity"], "dimension": dim,
                                "levels": levels})
    return out


def missing_relations(release: Release) -> list[Finding]:
    """The relations the format gives the release's tables that its manifest lacks."""
    given = [r for r in release.relations if isinstance(r, dict)]
    findings = []
    required = [(name, rel) for name in release.tables for rel in FORMAT_RELATIONS.get(name, [])]
    required += [(name, rel) for name, rel in ((m["quantity"], m) for m in _margins(release))]
    seen = []
    for owner, rel in required:
        if rel in seen:
            continue
        seen.append(rel)
        if rel not in given:
            what = ", ".join(f"{k}={v}" for k, v in rel.items() if k in ("type", "quantity", "dimension", "part",
                                                                         "before", "left", "table"))
            findings.append(Finding("release", "relation", (owner,),
                                    f"the manifest lacks a relation the format gives its tables ({what}): "
                                    "without it the audit would not see how the tables add up"))
    return findings
