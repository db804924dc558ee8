"""Writing a study's tables: one Parquet file per table and a manifest, atomically.

These are aggregates *before* disclosure control. The manifest says so, and the folder is
never a release: releases are made by the disclosure-control stage from these tables.

The manifest names the *population* the tables were counted on (:func:`population_fingerprint`
of the linked folder): a release ledger belongs to one population and refuses studies of another.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from cohort.config import StudyConfig
from cohort.members import FOLDER, Members, write_members
from cohort.population import AGE_BANDS
from cohort.schema import Study
from cohort.study import is_all_cause
from extracts.atomic import staging

__all__ = ["attrition_steps", "cohort_definition", "config_hash", "definitions", "population_fingerprint", "write_study"]

NOT_RELEASABLE = "pre-disclosure aggregates: NOT releasable; run disclosure control first"


def config_hash(config: StudyConfig) -> str:
    fields = asdict(config)
    if not fields["cost_sectors"]:  # a study without costs hashes as it did before costs existed
        del fields["cost_sectors"]
    payload = json.dumps(fields, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def population_fingerprint(linked: Path) -> str:
    """SHA-256 of the population a linked folder holds: the same for every rerun on the same data.

    Hashed: the project and its key id, the row count of every linked table (the linked
    manifest's ``rows``) and every person's labelled project pseudonym in person-number order
    (``persons.parquet``). Not the files' bytes, nor the batch ids: they change with each run of
    the supplier steps (random record tokens) although the persons and their data do not.
    """
    linked = Path(linked)
    manifest = json.loads((linked / "manifest.json").read_text(encoding="utf-8"))
    digest = hashlib.sha256(json.dumps(
        {"project": manifest.get("project"), "project_key_id": manifest.get("project_key_id"),
         "rows": manifest.get("rows")}, sort_keys=True).encode())
    for batch in pq.ParquetFile(linked / "persons.parquet").iter_batches(columns=["p2_label"], batch_size=1 << 20):
        digest.update(("\n".join(batch.column(0).to_pylist()) + "\n").encode())
    return digest.hexdigest()


def definitions(config: StudyConfig) -> dict:
    """What the study's counts *mean*, for the release's domain relations (docs/release-format.md).

    The age bands, per condition its age rule and its case-finding sources (an ICPC base code of
    an EHR episode; a claims code with its lookback in years), and per reported discipline whether
    its care is counted all-cause or condition-specific. From these the release derives every
    relation the definitions imply (``release.semantics``): the age rule, conditions that
    contain others, all-cause care of one condition containing the care of another.
    """
    conditions, care = {}, {}
    for cond in config.catalogue.conditions:
        sources = {("icpc", "", code, 0) for code in cond.icpc}
        for sub in cond.subconditions:
            sources |= {("claims", c.sector, f"{c.specialism}:{c.code}" if c.specialism else c.code,
                         sub.lookback_years) for c in sub.claims}
        conditions[cond.name] = {"min_age": cond.min_age, "all_cause": cond.all_cause,
                                 "sources": [list(s) for s in sorted(sources)]}
        care[cond.name] = {d: ("all-cause" if is_all_cause(config, cond.name, d) else "specific")
                           for d in config.disciplines.get(cond.name, ())}
    out = {"age_bands": {band: list(limits) for band, limits in AGE_BANDS.items()},
           "conditions": conditions, "care": care}
    if config.cost_sectors:
        # Claimed costs are all-cause: every netted claim unit of the sector in the year, so the
        # costs of a condition contain those of any condition it contains (release.semantics).
        out["costs"] = {"sectors": list(config.cost_sectors), "scope": "all-cause"}
    return out


def attrition_steps(study: Study) -> tuple[str, ...]:
    """The attrition chain's steps after ``base``: the criteria, with ``entry`` before the index-date ones."""
    if not study.has_index:
        return tuple(c.name for c in study.criteria)
    return (*(c.name for c in study.criteria if not c.uses_index), "entry",
            *(c.name for c in study.criteria if c.uses_index))


def cohort_definition(study: Study) -> dict:
    """A schema 2 study's design for the manifest: cohort type, criteria in order, outcome windows."""
    return {
        "schema": 2,
        "type": study.cohort_type,
        "washout_days": study.washout_days if study.cohort_type == "incidence" else None,
        "criteria": [c.name for c in study.criteria],
        "chain": list(attrition_steps(study)),
        "outcomes": {o.table: {"window": [o.window.unit, o.window.start, o.window.end], "cause": o.cause}
                     for o in study.outcomes},
    }


def write_study(tables: dict[str, pl.DataFrame], out: Path, config: StudyConfig, *, linked_manifest: dict,
                population: str | None = None, overwrite: bool = False, study: Study | None = None,
                members: Members | None = None) -> Path:
    """Write a study folder: its tables and manifest (``population``: of the linked folder).

    ``study``: the schema 2 study the tables come from (``config`` is its seed-engine form); its
    design is recorded under ``cohort`` and its hash is the manifest's ``study_config_sha256``.
    The persons behind each count (``members``, or the ``.members`` that :func:`cohort.study.run_study`
    gives its tables) go to ``persons/`` (:mod:`cohort.members`): owner-only, never releasable.
    """
    manifest_extra = {} if study is None else {"cohort": cohort_definition(study)}
    meaning = definitions(config)
    if study is not None and study.has_index:
        # Incidence and index cohorts: each condition's cohort has its own index dates and windows,
        # so the prevalence definitions (age rule, sources, all-cause care containing specific care
        # across conditions) imply nothing about them; only the age bands are stated.
        meaning = {"age_bands": meaning["age_bands"], "conditions": {}, "care": {}}
    config_sha = config_hash(config) if study is None else hashlib.sha256(
        json.dumps(asdict(study), sort_keys=True, default=str).encode()).hexdigest()
    out = Path(out)
    members = members if members is not None else getattr(tables, "members", None)
    with staging(out, overwrite=overwrite) as tmp:
        for name, frame in tables.items():
            frame.write_parquet(tmp / f"{name}.parquet")
        persons = write_members(members, tmp) if members is not None else None
        (tmp / "manifest.json").write_text(json.dumps({
            "status": NOT_RELEASABLE,
            "study": config.name,
            "study_config_sha256": config_sha,
            "reference_years": list(config.reference_years),
            "conditions": list(config.catalogue.names),
            "project": linked_manifest.get("project"),
            "project_key_id": linked_manifest.get("project_key_id"),
            "population": population,
            "rows": {name: frame.height for name, frame in tables.items()},
            "definitions": meaning,
            **manifest_extra,
            "persons": None if persons is None else {
                "folder": FOLDER, "tables": persons,
                "status": "person numbers behind each count: person-level, owner only, NEVER releasable"},
        }, indent=2))
    return out
