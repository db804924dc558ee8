"""The release stage: a study folder in, a release folder out, the ledger updated.

Order of work, so that a failure publishes nothing: the policy (steward's, made stricter by the
study) is checked, the study folder read and checked, the ledger locked and read, the release
decided against every earlier release (:func:`cohort.release.build.build_release`; a refusal
raises here, before anything is written), the files written to a staging folder, the release
recorded in the ledger, and only then the staging folder renamed into place.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from cohort.disclosure import Policy
from cohort.release.build import ReleaseContent, build_release
from cohort.release.ledger import Ledger
from cohort.release.public_ids import checksum
from cohort.release.public_ids import release_id as new_release_id
from cohort.release.study_folder import read_study
from cohort.release.writer import manifest, summary, write_manifest, write_tables
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


def engine_version() -> str:
    try:
        return metadata.version("patientflow-linkage")
    except metadata.PackageNotFoundError:  # running from a source tree
        return "0.1.0"


def make_release(study: Path, out: Path, *, steward: Policy, overrides: Mapping | None = None, ledger: Path,
                 overwrite: bool = False, time_limit: float = 60.0) -> ReleaseResult:
    """Make a release of a study folder under the steward's policy (made stricter by the study).

    Args:
        study: the study folder (``pfl-study``'s output).
        out: the release folder to write (must not exist unless ``overwrite``).
        steward: the data steward's policy.
        overrides: the study's stricter settings (:meth:`Policy.stricter`), if any.
        ledger: the release ledger of the population.
        overwrite: replace an existing release folder.
        time_limit: seconds per integer program; an unproven bound withholds its table.

    Raises:
        ConfigError: the overrides would loosen the policy, or ``out`` is, holds or lies inside the
            study folder or the ledger (:func:`extracts.targets.check_target`).
        cohort.release.errors.ReleaseError: the study folder is missing, unreadable or broken
            (exit 3, 4, 5), or the ledger refuses the release (exit 11).
        OutputExistsError: ``out`` exists and ``overwrite`` is false (exit 9).
    """
    began = time.perf_counter()
    overrides = dict(overrides or {})
    policy = steward.stricter(overrides)
    study, out, ledger = Path(study), Path(out), Path(ledger)
    check_target(out, inputs={"study": study, "ledger": ledger})  # the ledger is never in or around the release
    with output_lock(out):  # one run per release folder, from its first check to its publication
        return _make_release(study, out, policy=policy, steward=steward, overrides=overrides, ledger=ledger,
                             overwrite=overwrite, time_limit=time_limit, began=began)


def _make_release(study: Path, out: Path, *, policy: Policy, steward: Policy, overrides: dict, ledger: Path,
                  overwrite: bool, time_limit: float, began: float) -> ReleaseResult:
    check_output(out, overwrite=overwrite)
    folder = read_study(study)
    book = Ledger(ledger)
    with book.lock():
        index = book.index()
        content = build_release(folder, policy, earlier_records=book.records(), time_limit=time_limit)
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
                     "project_key_id": m.get("project_key_id"), "manifest_sha256": file_sha256(tmp / "manifest.json"),
                     "tables": sorted(content.frames), "withheld": dict(content.withheld),
                     "hidden_by_reason": content.hidden_by_reason, "hidden_cells_by_reason": content.cells_by_reason}
            book.record(entry, record, tmp)
    return ReleaseResult(out, release_id, policy, content, time.perf_counter() - began)
