"""The release ledger: every release over one population, kept by the steward (audit check A5).

``docs/release-format.md`` ("Ledger") fixes the layout::

    <ledger>/ledger.json                index: the population, the steward's policy and its history,
                                        the releases
    <ledger>/releases/<release_id>/     a copy of each release folder (public)
    <ledger>/records/<release_id>.json  steward only: every cell of the release with its true value
    <ledger>/records/<release_id>.persons.parquet
                                        steward only: the person numbers behind each person count
                                        (cell, person), for matching releases by who is counted
    <ledger>/.lock                      held (fcntl.flock) by the one process using the ledger

The ledger stays in the secure environment: its records hold the true values of hidden cells.
The data steward creates it (:func:`create_ledger`, ``pfl-ledger init``) with the disclosure
policy of the population, at or above the engine's floor; the policy can only be tightened, by a
recorded steward command (:func:`tighten_policy`). ``pfl-release`` takes the policy from here and
nowhere else (:meth:`Ledger.policy` checks it again: a policy edited by hand is refused).
A release is recorded in the ledger if and only if it was published
(:mod:`release.transaction`). :func:`merge_earlier` adds the earlier releases to a
release's model by name (one quantity, one value: another value is *two versions* and refuses the
release); :mod:`release.overlaps` then relates them by who is counted, from the person sets
(:meth:`Ledger.person_sets`) every record keeps.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from disclosure import Policy, below_floor
from disclosure.policy import _looser_keys
from release.errors import LedgerRefusal
from release.model import Key, Model, key_label
from extracts.atomic import file_sha256
from extracts.errors import ConfigError, OutputExistsError

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from release.transaction import Transaction

__all__ = [
    "FORMAT",
    "RECORD_FORMAT",
    "Earlier",
    "Ledger",
    "create_ledger",
    "key_from_json",
    "key_to_json",
    "merge_earlier",
    "tighten_policy",
]

FORMAT = "pfl-release-ledger/2"
RECORD_FORMAT = "pfl-ledger-record/1"
#: The format of the engine before the steward's policy, the population and the person sets.
OLDER_FORMAT = "pfl-release-ledger/1"


def _older_format(index_path: Path) -> str:
    """Why a /1 ledger takes no release and what the steward does instead (no value of it)."""
    return (f"{index_path}: a ledger of format {OLDER_FORMAT}, written by an older engine; this engine keeps "
            f"ledgers of format {FORMAT}, which hold the population's disclosure policy (set by pfl-ledger init, "
            "only tightened), are bound to one population, and keep the persons behind every released count, so "
            "that a release is checked against the earlier ones by who is counted. A /1 ledger has none of these "
            "and cannot be carried over: checked by name only, its releases could be differenced with a renamed "
            "or widened definition. Keep it unchanged (owner-only) as the record of what was released, and create "
            "the population's ledger with pfl-ledger init --ledger NEW_FOLDER (docs/release-format.md, \"Ledgers "
            "of an older format\"); nothing was released")


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
    cell_ids: list[list[int]] = field(default_factory=list)  # per record, the registered id of each cell


class Ledger:
    """A ledger folder, created by the data steward (:func:`create_ledger`)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @property
    def index_path(self) -> Path:
        return self.path / "ledger.json"

    def index(self) -> dict:
        """The index (``ledger.json``), checked for its format.

        Raises:
            LedgerRefusal: there is no ledger here, or its index cannot be read.
        """
        if not self.index_path.is_file():
            msg = (f"{self.path}: no release ledger here (no ledger.json). The data steward creates the "
                   f"ledger of a population once, with its disclosure policy: pfl-ledger init --ledger {self.path}; "
                   "nothing was released")
            raise LedgerRefusal(msg)
        try:
            index = json.loads(self.index_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            msg = f"{self.index_path}: the ledger's index cannot be read; nothing was released"
            raise LedgerRefusal(msg) from None
        if isinstance(index, dict) and index.get("format") == OLDER_FORMAT:
            raise LedgerRefusal(_older_format(self.index_path))
        if not isinstance(index, dict) or index.get("format") != FORMAT or not isinstance(index.get("releases"), list):
            found = index.get("format") if isinstance(index, dict) else None
            msg = f"{self.index_path}: not a ledger of format {FORMAT}"
            if isinstance(found, str):
                msg += f" (it is {found})"
            raise LedgerRefusal(msg + "; nothing was released")
        return index

    def policy(self, index: dict | None = None) -> Policy:
        """The steward's policy of this ledger, checked against the floor and the ledger's history.

        Raises:
            LedgerRefusal: the policy is malformed, below the engine's floor, or differs from the
                one its recorded history ends with, or is looser than a policy the ledger's
                releases were made under (the file was edited by hand); nothing may be released.
        """
        index = self.index() if index is None else index
        where = f"{self.index_path}: the ledger's policy"
        try:
            policy = Policy.from_dict(index.get("policy"))
            history = [_history_policy(h) for h in index.get("policy_history", [])]
            earlier = [Policy.from_dict(e.get("ledger_policy")) for e in index["releases"]]
        except (ConfigError, AttributeError, KeyError, TypeError) as exc:
            msg = f"{where} is malformed ({exc}); nothing was released"
            raise LedgerRefusal(msg) from None
        floor = below_floor(policy)
        if floor:
            msg = (f"{where} is below the engine's floor ({'; '.join(floor)}): was the file edited by hand? "
                   "A ledger's policy is set by pfl-ledger init and only tightened by pfl-ledger tighten; "
                   "nothing was released")
            raise LedgerRefusal(msg)
        if not history or history[-1] != policy:
            msg = (f"{where} differs from the last one its history records: was the file edited by hand? "
                   "Only pfl-ledger tighten changes it; nothing was released")
            raise LedgerRefusal(msg)
        looser = sorted({p for old in history + earlier for p in _looser_keys(old, policy, whose="an earlier policy's")})
        if looser:
            msg = (f"{where} is looser than one it had before ({'; '.join(looser)}): was the file edited by hand? "
                   "nothing was released")
            raise LedgerRefusal(msg)
        return policy

    def records(self, index: dict | None = None) -> list[dict]:
        """The steward's record of every earlier release, oldest first."""
        out = []
        for entry in (self.index() if index is None else index)["releases"]:
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

    def person_sets(self, records: list[dict]) -> list[pl.LazyFrame | None]:
        """Per record, its person sets as (``cell``: index into its cells, ``person``), lazily; None if it keeps none.

        Raises:
            LedgerRefusal: a record names a person-set file that is missing, unreadable or altered.
        """
        out: list[pl.LazyFrame | None] = []
        for record in records:
            entry = record.get("persons")
            if entry is None:
                out.append(None)
                continue
            name = entry.get("file") if isinstance(entry, dict) else None
            path = self.path / "records" / str(name)
            if (not isinstance(name, str) or "/" in name or not path.is_file()
                    or file_sha256(path) != entry.get("sha256")):
                msg = (f"{self.path}: the person sets of release {record.get('release_id', '?')} are missing or "
                       "altered; nothing was released")
                raise LedgerRefusal(msg)
            try:  # read lazily, a bucket of persons at a time (release.overlaps): a country's sets are billions of rows
                schema = pl.read_parquet_schema(path)
                if not {"cell", "person"} <= set(schema):
                    raise pl.exceptions.ColumnNotFoundError
                frame = pl.scan_parquet(path).select(pl.col("cell").cast(pl.Int64), pl.col("person").cast(pl.Int64))
            except (pl.exceptions.PolarsError, OSError):
                msg = f"{path}: the person sets of a release cannot be read; nothing was released"
                raise LedgerRefusal(msg) from None
            out.append(frame)
        return out

    def transaction(self) -> AbstractContextManager[Transaction]:
        """Hold the ledger (exclusively), finish any release a stopped run left, yield a transaction."""
        from release.transaction import transaction  # it imports this module

        return transaction(self)


def _history_policy(item: object) -> Policy:
    if not isinstance(item, dict):
        raise TypeError("a policy history entry is not a mapping")
    return Policy.from_dict(item.get("new", item.get("policy")))


def create_ledger(path: Path, policy: Policy) -> Ledger:
    """Create the release ledger of a population with the steward's disclosure policy.

    Args:
        path: the ledger folder to create (must not hold a ledger, or anything else).
        policy: the steward's policy; at least as strict as the engine's floor in every key.

    Raises:
        ConfigError: the policy is below the engine's floor (exit 2).
        OutputExistsError: ``path`` holds a ledger or other files (exit 9).
    """
    path = Path(path)
    floor = below_floor(policy)
    if floor:
        msg = f"disclosure policy: below the engine's floor (shared/spec/disclosure.md): {'; '.join(floor)}"
        raise ConfigError(msg)
    if (path / "ledger.json").exists():
        msg = f"{path}: a release ledger exists here; its policy can only be tightened (pfl-ledger tighten)"
        raise OutputExistsError(msg)
    if path.exists() and (not path.is_dir() or any(not p.name.startswith(".") for p in path.iterdir())):
        msg = f"{path}: exists and is not an empty folder; a ledger needs a folder of its own"
        raise OutputExistsError(msg)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)  # true values of hidden cells: the steward's eyes only
    for sub in ("records", "releases"):
        (path / sub).mkdir(mode=0o700, exist_ok=True)
    # Groups of four: an id never holds a run of nine digits (a BSN-like number to the audit).
    raw = uuid.uuid4().hex[:16]
    now = _now()
    index = {"format": FORMAT, "ledger_id": "-".join(raw[i:i + 4] for i in range(0, 16, 4)), "created": now,
             "population": None, "policy": policy.as_dict(),
             "policy_history": [{"time": now, "action": "created", "policy": policy.as_dict()}], "releases": []}
    # Written whole under a name of its own, then linked into place: of two steward commands
    # creating one ledger at once, exactly one succeeds (link refuses an existing name).
    tmp = path / f".ledger.json.{os.getpid()}.new"
    write_file(tmp, json.dumps(index, indent=1, sort_keys=True))
    try:
        os.link(tmp, path / "ledger.json")
    except FileExistsError:
        msg = f"{path}: a release ledger exists here; its policy can only be tightened (pfl-ledger tighten)"
        raise OutputExistsError(msg) from None
    finally:
        tmp.unlink(missing_ok=True)
    return Ledger(path)


def tighten_policy(path: Path, changes: dict, *, reason: str) -> tuple[Policy, Policy]:
    """Make a ledger's policy stricter, recording the time, the old and new policy and the reason.

    Returns:
        The old and the new policy.

    Raises:
        ConfigError: a change is unknown, invalid or looser, nothing changes, or no reason (exit 2).
        LedgerRefusal: no ledger at ``path``, or it cannot be read or is in use (exit 11).
    """
    if not reason.strip():
        msg = "reason: say why the policy is tightened (it is recorded in the ledger)"
        raise ConfigError(msg)
    book = Ledger(path)
    with book.transaction() as txn:
        old = book.policy(txn.index)
        new = replace(old, **changes) if set(changes) <= {f.name for f in fields(Policy)} else old.stricter(changes)
        looser = _looser_keys(old, new, whose="the ledger's")
        if looser:
            msg = f"disclosure policy: a ledger's policy can only be tightened, never loosened; refused: {'; '.join(looser)}"
            raise ConfigError(msg)
        if new == old:
            msg = "disclosure policy: the changes leave the ledger's policy as it is; nothing was recorded"
            raise ConfigError(msg)
        index = dict(txn.index)
        index["policy"] = new.as_dict()
        index["policy_history"] = [*index["policy_history"], {
            "time": _now(), "action": "tightened", "old": old.as_dict(), "new": new.as_dict(), "reason": reason.strip()}]
        txn.write_index(index)
    return old, new


def write_file(path: Path, text: str) -> None:
    """Write a steward-only file (0600), flushed to disk before it is renamed anywhere."""
    with os.fdopen(os.open(path, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600), "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def write_atomic(path: Path, text: str) -> None:
    """Write a steward-only file under a temporary name, then rename it into place."""
    tmp = path.with_name(f".{path.name}.partial")
    write_file(tmp, text)
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
    cell_ids: list[list[int]] = []
    for record in records:
        rid = record.get("release_id", "?")
        seen = len(model.conflicts)
        cell_ids.append([])
        try:
            for cell in record["cells"]:
                keys = [key_from_json(k) for k in cell["keys"]]
                value = int(cell["value"])
                ids = [model.add(k, value, kind=str(cell.get("kind", "count")), unit=str(cell.get("unit", "persons")))
                       for k in keys]
                for i in ids[1:]:
                    model.merge(ids[0], i, "an earlier release")
                cell_ids[-1].append(ids[0])
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
    return Earlier(len(records), published, hidden, primary, cell_ids)
