"""The release ledger: every release over one population, kept by the steward (audit check A5).

``docs/release-format.md`` ("Ledger") fixes the layout::

    <ledger>/ledger.json                index of the releases
    <ledger>/releases/<release_id>/     a copy of each release folder (public)
    <ledger>/records/<release_id>.json  steward only: every cell of the release with its true value

The ledger stays in the secure environment: its records hold the true values of hidden cells.
:func:`merge_earlier` adds the earlier releases to a release's model (one quantity, one value:
another value is *two versions* and refuses the release); :meth:`Ledger.record` appends a
release. One release at a time: a lock file guards the ledger while a release is recorded.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cohort.release.errors import LedgerRefusal
from cohort.release.model import Key, Model, key_label

__all__ = ["FORMAT", "RECORD_FORMAT", "Earlier", "Ledger", "key_from_json", "key_to_json", "merge_earlier"]

FORMAT = "pfl-release-ledger/1"
RECORD_FORMAT = "pfl-ledger-record/1"


def key_to_json(key: Key) -> list:
    return [key[0], dict(key[1])]


def key_from_json(value: object) -> Key:
    if (not isinstance(value, list) or len(value) != 2 or not isinstance(value[0], str)
            or not isinstance(value[1], dict)):
        msg = "a ledger record holds a malformed cell key"
        raise LedgerRefusal(msg)
    return value[0], tuple(sorted((str(c), str(v)) for c, v in value[1].items()))


@dataclass(frozen=True)
class Earlier:
    """What the earlier releases decided, per registered id of the model."""

    releases: int
    published: set[int]
    hidden: set[int]
    primary: set[int]


class Ledger:
    """A ledger folder (created by the first release recorded in it)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @property
    def index_path(self) -> Path:
        return self.path / "ledger.json"

    def index(self) -> dict:
        """The index, or a new empty one when the ledger does not exist yet."""
        if not self.index_path.exists():
            if self.path.exists() and any(p.name != ".lock" for p in self.path.iterdir()):
                msg = f"{self.path}: not a release ledger (no ledger.json, and the folder is not empty)"
                raise LedgerRefusal(msg)
            # Groups of four: an id never holds a run of nine digits (a BSN-like number to the audit).
            raw = uuid.uuid4().hex[:16]
            ledger_id = "-".join(raw[i:i + 4] for i in range(0, 16, 4))
            return {"format": FORMAT, "ledger_id": ledger_id, "created": _now(), "releases": []}
        try:
            index = json.loads(self.index_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            msg = f"{self.index_path}: the ledger's index cannot be read; nothing was released"
            raise LedgerRefusal(msg) from None
        if not isinstance(index, dict) or index.get("format") != FORMAT or not isinstance(index.get("releases"), list):
            msg = f"{self.index_path}: not a ledger of format {FORMAT}; nothing was released"
            raise LedgerRefusal(msg)
        return index

    def records(self) -> list[dict]:
        """The steward's record of every earlier release, oldest first."""
        out = []
        for entry in self.index()["releases"]:
            path = self.path / "records" / f"{entry.get('release_id')}.json"
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                msg = f"{path}: a release recorded in the ledger has no readable record; nothing was released"
                raise LedgerRefusal(msg) from None
            if not isinstance(record, dict) or record.get("format") != RECORD_FORMAT:
                msg = f"{path}: not a ledger record of format {RECORD_FORMAT}; nothing was released"
                raise LedgerRefusal(msg)
            out.append(record)
        return out

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the ledger for one release (a second release at the same time is refused)."""
        self.path.mkdir(parents=True, exist_ok=True)
        lock = self.path / ".lock"
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            msg = (f"{self.path}: the ledger is in use by another release (remove {lock.name} if no "
                   "release is running); nothing was released")
            raise LedgerRefusal(msg) from None
        os.close(fd)
        try:
            yield
        finally:
            lock.unlink(missing_ok=True)

    def record(self, entry: dict, record: dict, folder: Path) -> None:
        """Append a release: its record, a copy of its folder, then the index (atomically)."""
        index = self.index()
        release_id = entry["release_id"]
        records, copies = self.path / "records", self.path / "releases"
        records.mkdir(parents=True, exist_ok=True)
        copies.mkdir(parents=True, exist_ok=True)
        _write_atomic(records / f"{release_id}.json", json.dumps(record, separators=(",", ":"), sort_keys=True))
        target = copies / release_id
        partial = copies / f".{release_id}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(folder, partial)
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
        index["releases"].append(entry)
        _write_atomic(self.index_path, json.dumps(index, indent=1, sort_keys=True))


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(text, encoding="utf-8")
    os.chmod(tmp, 0o600)
    tmp.replace(path)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_earlier(model: Model, records: list[dict], *, threshold: int) -> Earlier:
    """Add the earlier releases' cells and equations to the model.

    Raises:
        LedgerRefusal: a quantity of this release has another value in an earlier one (two
            versions), or an earlier release published a count of 1..T-1 under the current T.
    """
    before = len(model.conflicts)
    published: set[int] = set()
    hidden: set[int] = set()
    primary: set[int] = set()
    small: list[str] = []
    involved: list[str] = []
    for record in records:
        rid = record.get("release_id", "?")
        seen = len(model.conflicts)
        try:
            for cell in record["cells"]:
                keys = [key_from_json(k) for k in cell["keys"]]
                value = int(cell["value"])
                ids = [model.add(k, value, kind=str(cell.get("kind", "count")), unit=str(cell.get("unit", "persons")))
                       for k in keys]
                for i in ids[1:]:
                    model.merge(ids[0], i, "an earlier release")
                state = str(cell["state"])
                if state == "published":
                    published.add(ids[0])
                elif state == "hidden":
                    hidden.add(ids[0])
                if cell.get("primary"):
                    primary.add(ids[0])
                if state == "published" and 1 <= value < threshold:
                    small.append(key_label(keys[0]))
            for total, children in record["equations"]:
                model.equations.append((model.index[key_from_json(total)],
                                        tuple(model.index[key_from_json(c)] for c in children)))
        except (KeyError, TypeError, ValueError):
            msg = f"the ledger's record of release {rid} is malformed; nothing was released"
            raise LedgerRefusal(msg) from None
        if len(model.conflicts) > seen:
            involved.append(str(rid))
    conflicts = model.conflicts[before:]
    if conflicts:
        first = ("population[", "prevalent[", "care_use[", "referral_base[", "referred[")  # the key figures first
        labels = sorted({c.split(": one quantity")[0].split(" (")[0].split(" and ")[0] for c in conflicts},
                        key=lambda lab: (not lab.startswith(first), len(lab), lab))
        shown = "; ".join(labels[:8]) + (f"; and {len(labels) - 8} more" if len(labels) > 8 else "")
        msg = (f"the ledger refuses the release: {len(labels)} quantities have another value than in earlier "
               f"release(s) {', '.join(involved)} over the same population (two versions of one quantity let "
               f"the difference be derived; were the data or the definitions changed?): {shown}. "
               "Nothing was written.")
        raise LedgerRefusal(msg)
    if small:
        msg = (f"the ledger refuses the release: earlier releases published {len(small)} counts below the current "
               f"threshold (e.g. {small[0]}); they cannot be protected any more. Nothing was written.")
        raise LedgerRefusal(msg)
    return Earlier(len(records), published, hidden, primary)
