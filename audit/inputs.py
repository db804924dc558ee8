"""What the auditor was asked to use besides the release: the ledger and the study folder.

Fail closed (disclosure.md, "The auditor"): ``ledger=`` asks for A5 over every earlier release and
for verification mode (A2 and A4 with the steward's record of this release); ``study=`` asks for
the magnitude rules on the study's statistics. A folder that is no ledger, a ledger without a
readable record of the release or without the copy of a release its index lists, or a folder that
is no study folder is refused with what is missing. A ledger without any record of the release (one
made with another ledger, audited against this one's earlier releases) still gets A5, and the audit
fails with a finding saying that verification mode was not possible: it never passes in release
mode, checking less than was asked for.
"""

from __future__ import annotations

import json
from pathlib import Path

from audit.errors import ReleaseFormatError, ReleaseNotFoundError
from audit.release import Release, read_release

__all__ = ["NO_RECORD", "check_study", "earlier_releases", "ledger_record"]

_AS_ASKED = "audit with the ledger the release was made with, or without ledger= (release mode)"
NO_RECORD = ("the ledger holds no record of this release: A2 and A4 could not be checked with its true values "
             "(verification mode); " + _AS_ASKED)


def _index(ledger: Path) -> dict:
    path = ledger / "ledger.json"
    if not path.is_file():
        msg = f"{ledger}: not a release ledger (no ledger.json); {_AS_ASKED}"
        raise ReleaseNotFoundError(msg)
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        index = None
    if not isinstance(index, dict) or not isinstance(index.get("releases", []), list):
        msg = f"{path}: not a readable ledger index"
        raise ReleaseFormatError(msg)
    return index


def ledger_record(ledger: Path, release_id: str) -> dict | None:
    """The steward's record of the release ``release_id`` in ``ledger`` (verification mode).

    None where the ledger holds no record of it (a release made with another ledger, audited
    against this one's earlier releases): A5 still runs; the caller fails the audit for the
    verification it cannot do (:data:`NO_RECORD`).

    Raises:
        ReleaseNotFoundError: the folder is no ledger.
        ReleaseFormatError: the index or the record cannot be read.
    """
    ledger = Path(ledger)
    _index(ledger)
    if not release_id:
        msg = "the release's manifest has no release_id: its record in the ledger cannot be found"
        raise ReleaseFormatError(msg)
    path = ledger / "records" / f"{release_id}.json"
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        record = None
    if not isinstance(record, dict):
        msg = f"{path}: the ledger's record of the release cannot be read"
        raise ReleaseFormatError(msg)
    return record


def earlier_releases(ledger: Path, release_id: str) -> list[Release]:
    """The copies of every other release of the ledger (A5); each one its index lists must be there."""
    ledger = Path(ledger)
    index = _index(ledger)
    folder = ledger / "releases"
    listed = {str(e.get("release_id")) for e in index.get("releases", []) if isinstance(e, dict)}
    present = {p.name for p in folder.iterdir() if p.is_dir()} if folder.is_dir() else set()
    lacking = sorted(listed - present - {release_id})
    if lacking:
        msg = (f"{ledger}: the ledger lists {len(lacking)} release(s) whose copy is missing from releases/ "
               f"({', '.join(lacking[:3])}): A5 cannot check this release against them")
        raise ReleaseNotFoundError(msg)
    return [read_release(folder / name) for name in sorted(present) if name != release_id
            and not name.startswith(".")]


def check_study(study: Path) -> None:
    """``study=`` must name a study folder (its ``manifest.json``), or nothing would be verified."""
    if not (Path(study) / "manifest.json").is_file():
        msg = f"{study}: not a study folder (no manifest.json); give the study folder the release was made from"
        raise ReleaseNotFoundError(msg)
