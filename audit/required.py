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

__all__ = ["FORMAT_RELATIONS", "attrition_relations", "missing_relations"]

# Table -> the relations the format gives it (docs/release-format.md).
FORMAT_RELATIONS: dict[str, list[dict]] = {
    "prevalence": [
        {"type": "part_of", "part": "prevalent", "whole": "population", "drop": ["condition"], "set": {},
         "complement": "not:prevalent"},
    ],
    # the cohort tables of incidence and index-date studies count as prevalence does
    # (docs/study-schema.md): the cohort's persons of the population after the criteria
    "incidence": [
        {"type": "part_of", "part": "prevalent", "whole": "population", "drop": ["condition"], "set": {},
         "complement": "not:prevalent"},
    ],
    "index_cohort": [
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
    "top": [
        {"type": "remainder", "table": "top", "total": "total_contacts", "parts": "contacts", "over": "group",
         "group_by": ["year", "discipline"], "remainder": "contacts_other"},
    ],
    "acsc": [
        {"type": "events_of", "table": "acsc", "events": "admissions", "persons": "persons"},
    ],
    # persons by number of contacts: the bands add up to their Total row (a margin over band,
    # required with the table's dimensions), which is the cohort of the condition
    "contact_bands": [
        {"type": "equal", "left": "band_persons", "where": {"band": None}, "except": {}, "right": "prevalent",
         "drop": ["discipline"]},
    ],
    # study persons the TTP linked without their BSN (issue 13): part of the population of the year
    "fallback_links": [
        {"type": "part_of", "part": "fallback_persons", "whole": "population", "drop": [], "set": {},
         "complement": "not:fallback_persons"},
    ],
    "costs": [
        {"type": "part_of", "part": "cost_persons", "whole": "prevalent", "drop": ["sector"], "set": {},
         "complement": "not:cost_persons"},
        {"type": "magnitude_of", "table": "costs", "magnitude": "total", "quantity": "cost_total",
         "persons": "persons", "mean": "mean"},
    ],
}


def attrition_relations(steps: list[str]) -> list[dict]:
    """The attrition chain's relations, for its steps in the order the table lists them.

    The chain adds up along its steps; after the steps before ``entry`` (all of them in a prevalence
    study) the overall chain is the population, after its last step each condition's is its cohort.
    """
    population_step = steps[steps.index("entry") - 1] if "entry" in steps else steps[-1]
    return [
        {"type": "part_of", "part": "attrition_excluded", "whole": "attrition_excluded", "drop": [],
         "set": {"condition": "all"}, "complement": "others:attrition_excluded"},
        {"type": "chain", "before": "attrition_before", "excluded": "attrition_excluded",
         "after": "attrition_after", "along": "step", "order": steps},
        {"type": "equal", "left": "attrition_after", "where": {"step": population_step, "condition": "all"},
         "except": {}, "right": "population", "drop": ["step", "condition"]},
        {"type": "equal", "left": "attrition_after", "where": {"step": steps[-1]}, "except": {"condition": "all"},
         "right": "prevalent", "drop": ["step"]},
    ]


def _steps(release: Release) -> list[str]:
    """The attrition chain's steps: the manifest's chain when it holds every step the table lists,
    in the table's order (a chain may name steps a table leaves out); else the table's steps in
    the order of its rows (each chain lists them in order), so that no chain can be dropped."""
    table = release.tables.get("attrition")
    if table is None or "step" not in table.frame.columns:
        return []
    listed = list(dict.fromkeys(str(s) for s in table.frame["step"].to_list()))
    for rel in release.relations:
        order = rel.get("order") if isinstance(rel, dict) and rel.get("type") == "chain" else None
        if isinstance(order, list) and [s for s in order if s in listed] == listed:
            return [str(s) for s in order]
    return listed


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


# The seed design's chain (schema 1 studies); a release's own chain replaces it (_steps).
FORMAT_RELATIONS["attrition"] = attrition_relations(["base", "X1", "X2", "X3", "X4", "X5", "X6", "X7"])


def missing_relations(release: Release) -> list[Finding]:
    """The relations the format gives the release's tables that its manifest lacks."""
    given = [r for r in release.relations if isinstance(r, dict)]
    findings = []
    required = [(name, rel) for name in release.tables if name != "attrition"
                for rel in FORMAT_RELATIONS.get(name, [])]
    steps = _steps(release)
    if steps:
        required += [("attrition", rel) for rel in attrition_relations(steps)]
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
