"""The release stage: a study folder in, a release folder out, the ledger updated.

Order of work, so that a failure publishes nothing: the policy is the ledger's (the steward's,
at or above the engine's floor; made stricter, never looser, by the study), checked before the
study folder is read and checked; then the ledger is locked and read, the study checked to be of
the ledger's population, the release decided against every earlier release
(:func:`release.build.build_release`; a refusal raises here, before anything is written),
the files written to a staging folder, the ledger's record prepared, the staging folder renamed
into place, and the record committed: recorded if and only if published
(:mod:`release.transaction`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from disclosure import Policy
from release.build import ReleaseContent, build_release
from release.errors import LedgerRefusal
from release.ledger import Ledger
from release.public_ids import checksum
from release.public_ids import release_id as new_release_id
from release.study_folder import read_study
from release.writer import manifest, summary, write_manifest, write_tables
from extracts.atomic import check_output, file_sha256, output_lock, staging
from extracts.targets import check_target

__all__ = ["ReleaseResult", "engine_version", "make_release"]


@dataclass(frozen=True)
class ReleaseResult:
    """What :func:`make_release` did."""

    out: Path
    release_id: str
    policy: Policy
    content: ReleaseContent
    seconds: float
    notes: tuple[str, ...] = ()


def engine_version() -> str:
    try:
        return metadata.version("patientflow-linkage")
    except metadata.PackageNotFoundError:  # running from a source tree
        return "0.1.0"


def make_release(study: Path, out: Path, *, ledger: Path, overrides: Mapping | None = None,
                 overwrite: bool = False, time_limit: float = 60.0) -> ReleaseResult:
    """Make a release of a study folder under its ledger's policy (made stricter by the study).

    Args:
        study: the study folder (``pfl-study``'s output).
        out: the release folder to write (must not exist unless ``overwrite``).
        ledger: the release ledger of the study's population, created by the data steward
            (:func:`release.ledger.create_ledger`); its policy is the steward's.
        overrides: the study's stricter settings (:meth:`Policy.stricter`), if any.
        overwrite: replace an existing release folder.
        time_limit: seconds per integer program; an unproven bound withholds its table.

    Raises:
        ConfigError: the overrides would loosen the policy, or ``out`` is, holds or lies inside the
            study folder or the ledger (:func:`extracts.targets.check_target`).
        release.errors.ReleaseError: the study folder is missing, unreadable or broken
            (exit 3, 4, 5), or the ledger refuses the release (exit 11): no ledger, a policy below
            the engine's floor or edited by hand, a study of another population, two versions.
        OutputExistsError: ``out`` exists and ``overwrite`` is false (exit 9).
    """
    began = time.perf_counter()
    overrides = dict(overrides or {})
    study, out, ledger = Path(study), Path(out), Path(ledger)
    check_target(out, inputs={"study": study, "ledger": ledger})  # the ledger is never in or around the release
    with output_lock(out):  # one run per release folder, from its first check to its publication
        return _make_release(study, out, overrides=overrides, ledger=ledger, overwrite=overwrite,
                             time_limit=time_limit, began=began)


def _make_release(study: Path, out: Path, *, overrides: dict, ledger: Path, overwrite: bool, time_limit: float,
                  began: float) -> ReleaseResult:
    check_output(out, overwrite=overwrite)
    book = Ledger(ledger)
    book.policy().stricter(overrides)  # a looser study policy fails before any data is read
    folder = read_study(study)
    population = folder.manifest.get("population")
    if not isinstance(population, str) or not population:
        msg = (f"{study / 'manifest.json'}: the study folder does not say which population it was made from "
               "(made by an older pfl-study?); rerun pfl-study on the linked folder; nothing was released")
        raise LedgerRefusal(msg)
    with book.transaction() as txn:
        index = txn.index
        steward = book.policy(index)  # again, under the lock: the policy the release is made under
        policy = steward.stricter(overrides)
        if index.get("population") not in (None, population):
            msg = (f"the study {study} is over another population than the ledger {ledger} (one ledger per "
                   "population: the linked data differ); release it into the ledger of its own population; "
                   "nothing was released")
            raise LedgerRefusal(msg)
        records = book.records(index)
        content = build_release(folder, policy, earlier_records=records, earlier_persons=book.person_sets(records),
                                time_limit=time_limit)
        now = datetime.now(UTC).replace(microsecond=0)
        created = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        release_id = new_release_id(now)  # random: an id derived from the inputs would be a hash of them
        with staging(out, overwrite=overwrite) as tmp:
            files = write_tables(content, tmp)
            (tmp / "summary.md").write_text(
                summary(content, folder, release_id=release_id, created=created, policy=policy, overrides=overrides),
                encoding="utf-8")
            files["summary.md"] = checksum(tmp / "summary.md")
            data = manifest(content, folder, release_id=release_id, created=created, policy=policy, steward=steward,
                            overrides=overrides, ledger_id=index["ledger_id"], files=files, version=engine_version())
            write_manifest(tmp, data)
            # The study folder's fingerprints are the release's provenance, for the steward only:
            # published, a hash of a table with hidden cells confirms guesses of them (issue 11.1).
            record = {**content.record, "release_id": release_id, "created": created,
                      "inputs": {"study_manifest_sha256": folder.fingerprints["manifest.json"],
                                 "files": {k: v for k, v in folder.fingerprints.items() if k != "manifest.json"}}}
            m = folder.manifest
            entry = {"release_id": release_id, "created": created, "study": m.get("study"),
                     "study_config_sha256": m.get("study_config_sha256"), "project": m.get("project"),
                     "project_key_id": m.get("project_key_id"), "population": population,
                     "ledger_policy": steward.as_dict(), "manifest_sha256": file_sha256(tmp / "manifest.json"),
                     "tables": sorted(content.frames), "withheld": dict(content.withheld),
                     "hidden_by_reason": content.hidden_by_reason, "hidden_cells_by_reason": content.cells_by_reason}
            if content.overlaps is not None:  # steward only: which earlier cells it was related to, by who is counted
                entry["overlaps"] = {**content.overlaps.relations, "implied_cells": content.overlaps.implied,
                                     "implied_primaries": content.overlaps.implied_small}
            txn.prepare(entry, record, tmp, out, persons=content.persons)
        txn.commit()
    return ReleaseResult(out, release_id, policy, content, time.perf_counter() - began, tuple(txn.notes))
