"""Schema 1 study files (``conf/study/*.yaml`` without ``schema``) converted to schema 2.

A schema 1 file names reference years, disciplines per condition, the X6 thresholds, strata, top-N
and the ACSC list; the seed design (base population, X1-X7, prevalence, care use, referrals, top,
ACSC) is implied. :func:`to_schema2` writes that design out as the schema 2 study it means, so that
both kinds of file run through one compiler; :func:`load_study` reads either kind.

    python -m cohort.convert conf/study/seed_study.yaml > conf/study/my_study.yaml
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from cohort.checks import fail, known_keys
from cohort.population import RULES
from cohort.schema import Study, parse_study_v2
from extracts.codelists import ConditionCatalogue
from extracts.errors import ConfigError

__all__ = ["load_study", "to_schema2"]

_V1_KEYS = ("name", "reference_years", "disciplines", "dietetics_all_cause", "practice_sufficiency", "strata",
            "top_n", "acsc", "costs", "linkage")


def to_schema2(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The schema 2 mapping of a schema 1 study mapping (checked when the result is parsed)."""
    known_keys(raw, _V1_KEYS, "")
    disciplines = raw.get("disciplines")
    if not isinstance(disciplines, Mapping) or not disciplines:
        fail("disciplines", "missing", "a mapping of condition -> list of disciplines")
    criteria: list[dict[str, Any]] = []
    for rule in RULES:
        item: dict[str, Any] = {"name": rule, "rule": rule}
        if rule == "X1" and raw.get("linkage") is not None:  # issue 13: schema 1's linkage.fallback
            linkage = raw["linkage"]
            if not isinstance(linkage, Mapping):
                fail("linkage", "not a mapping", "linkage: {fallback: include|exclude}")
            known_keys(linkage, ("fallback",), "linkage")
            if "fallback" in linkage:
                item["fallback"] = linkage["fallback"]
        if rule == "X6":
            sufficiency = raw.get("practice_sufficiency") or {}
            if not isinstance(sufficiency, Mapping):
                fail("practice_sufficiency", "not a mapping", "keys min_patients, min_weeks, min_icpc_share")
            known_keys(sufficiency, ("min_patients", "min_weeks", "min_icpc_share"), "practice_sufficiency")
            item |= dict(sufficiency)
        criteria.append(item)
    outcomes: list[dict[str, Any]] = [
        {"type": "contacts", "dietetics_all_cause": raw.get("dietetics_all_cause", True),
         "disciplines": {str(c): list(v) if isinstance(v, (list, tuple)) else v for c, v in disciplines.items()}},
        {"type": "referrals"},
        {"type": "top", "n": raw.get("top_n", 15)},
    ]
    acsc = raw.get("acsc") or {}
    if acsc.get("years") or acsc.get("codes"):
        outcomes.append({"type": "acsc", "years": list(acsc.get("years") or []), "codes": list(acsc.get("codes") or [])})
    costs = raw.get("costs")
    if costs is not None:  # schema 1's claimed costs of the prevalent persons per sector (cohort.costs)
        if not isinstance(costs, Mapping):
            fail("costs", "not a mapping", "costs: {sectors: [...]}")
        known_keys(costs, ("sectors",), "costs")
        outcomes.append({"type": "costs", "disciplines": costs.get("sectors")})
    return {
        "schema": 2,
        "name": raw.get("name", "study"),
        "cohort": {"type": "prevalence", "years": raw.get("reference_years"), "conditions": [str(c) for c in disciplines]},
        "population": "registered",
        "criteria": criteria,
        "outcomes": outcomes,
        "strata": list(raw.get("strata") or []),
    }


# Keys of the converted study -> the schema 1 keys they come from, so that a refusal names the
# key the researcher wrote (outcomes by their type: their positions depend on the file).
_V1_NAMES = (("cohort.years", "reference_years"), ("cohort.conditions", "disciplines"),
             ("criteria[5]", "practice_sufficiency"), ("criteria[0].fallback", "linkage.fallback"))
_V1_OUTCOMES = {"contacts": "disciplines", "top": "top_n", "acsc": "acsc", "costs": "costs.sectors"}


def load_study(raw: Mapping[str, Any], catalogue: ConditionCatalogue, *,
               data_years: tuple[int, int] = (2017, 2023)) -> Study:
    """A checked :class:`Study` from a schema 1 or schema 2 mapping."""
    if "schema" in raw:
        return parse_study_v2(raw, catalogue, data_years=data_years)
    converted = to_schema2(raw)
    try:
        return parse_study_v2(converted, catalogue, data_years=data_years)
    except ConfigError as exc:
        names = list(_V1_NAMES)
        for i, outcome in enumerate(converted["outcomes"]):
            if outcome["type"] == "contacts":
                names.append((f"outcomes[{i}].dietetics_all_cause", "dietetics_all_cause"))
            if outcome["type"] in _V1_OUTCOMES:
                names.append((f"outcomes[{i}]", _V1_OUTCOMES[outcome["type"]]))
        message = str(exc)
        for new, old in names:
            prefix = f"study config: {new}"
            if message.startswith(prefix):
                rest = message[len(prefix):]
                if rest.startswith((".disciplines", ".n:", ".years", ".codes")):  # the schema 1 key says it
                    rest = rest[rest.index(":"):] if old != "acsc" else rest
                message = f"study config: {old}{rest}"
                break
        raise ConfigError(message) from None


def main(argv: list[str] | None = None) -> int:
    """Print the schema 2 form of a schema 1 study file (exit 2 on a bad file)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m cohort.convert STUDY.yaml  (prints the schema 2 study)", file=sys.stderr)
        return 2
    path = Path(args[0])
    try:
        if not path.is_file():
            msg = f"study file not found: {path}"
            raise ConfigError(msg)
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(raw, Mapping):
            fail(str(path), "not a mapping", "a study file")
        if raw.get("schema") == 2:
            fail("schema", "already schema 2", "a schema 1 file (without 'schema')")
        out = to_schema2(raw)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ConfigError.exit_code
    except yaml.YAMLError:
        print(f"error: {path}: not a readable YAML file", file=sys.stderr)
        return ConfigError.exit_code
    sys.stdout.write(yaml.safe_dump(out, sort_keys=False, default_flow_style=None, width=110))
    return 0


if __name__ == "__main__":
    sys.exit(main())
