"""One use of a release ledger at a time; a release recorded if and only if it was published.

**Lock.** ``<ledger>/.lock`` is held with ``fcntl.flock`` for the whole run of ``pfl-release`` or
``pfl-ledger tighten``: the operating system releases it when the process ends, however it ends
(SIGKILL too), so a killed run never leaves the ledger refused. The file keeps its holder's
process id for messages; an id left there by a run that ended without releasing the ledger is
reported as a stale lock and cleared by the next run. The file itself is never removed (removing
a locked file would let two runs lock two different files).

**Transaction of a release**, in three steps around the publishing rename:

1. *prepare* (:meth:`Transaction.prepare`), before the release folder is renamed into place: the
   record, its person sets (``records/<release_id>.persons.parquet``, named with their SHA-256 in
   the record), the copy of the release folder and the next index are written under dot-names (which
   readers and the auditor skip) and flushed; ``.pending.json`` then names the release and its
   folder. A full disk fails here: nothing is published, and the dot-names are removed.
2. the caller renames the release folder into place (:func:`extracts.atomic.staging`): published.
3. *commit* (:meth:`Transaction.commit`): the dot-names are renamed to their final names (the
   person sets before the record that names them, the index last), and ``.pending.json`` removed.

**Recovery**, each time the ledger is locked (and when a run fails after step 1): a
``.pending.json`` whose release folder holds that release (its manifest's ``release_id``) is
rolled forward, any other is rolled back; dot-name leftovers of a run stopped during step 1 are
removed. So a run killed at any point leaves the ledger holding exactly the published releases.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import signal
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from extracts.atomic import file_sha256, os_error_number
from extracts.errors import StorageError
from release.errors import LedgerRefusal
from release.ledger import Ledger, write_atomic, write_file

__all__ = ["KILL_POINT_VARIABLE", "Transaction", "transaction"]

PENDING = ".pending.json"
NEXT_INDEX = ".ledger.json.next"
# Tests only (tests/robustness/test_ledger_transactions.py): a run SIGKILLs itself at the named
# point (``<point>``), as an operator's kill -9 would, or sends itself Ctrl-C (``<point>:INT``).
# Unset (always, outside those tests), it does nothing.
KILL_POINT_VARIABLE = "PFL_TEST_LEDGER_KILL_AT"


def _kill_point(name: str) -> None:
    point, _, how = os.environ.get(KILL_POINT_VARIABLE, "").partition(":")
    if point == name:
        os.kill(os.getpid(), signal.SIGINT if how == "INT" else signal.SIGKILL)


def _storage(exc: OSError, ledger: Path, *, published: Path | None = None) -> StorageError:
    """A file-system refusal while writing the ledger: names the ledger, never the release."""
    number = os_error_number(exc)
    reason = os.strerror(number) if number else type(exc).__name__
    code = errno.errorcode.get(number, "") if number else ""
    reason = f"{reason} ({code})" if code else reason
    if published is not None:
        return StorageError(
            f"the release was published to {published}, but the release ledger {ledger} could not finish "
            f"its record: {reason}. Free space on the ledger's disk; the next pfl-release or pfl-ledger on "
            "this ledger completes the record")
    return StorageError(
        f"cannot write the release ledger {ledger}: {reason}. Free space on the ledger's disk (or make it "
        "writable) and rerun; the release was not published and the ledger is unchanged")


def _holder(fd: int) -> str:
    text = os.pread(fd, 32, 0).decode("ascii", errors="replace").strip()
    return f"process {text}" if text.isdigit() else ""


@contextmanager
def _lock(ledger: Ledger) -> Iterator[list[str]]:
    """Hold ``<ledger>/.lock`` exclusively; yields the notes to show (a stale lock cleared)."""
    try:
        fd = os.open(ledger.path / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise _storage(exc, ledger.path) from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd) or "another process"
            msg = (f"{ledger.path}: the ledger is in use by another release or steward command ({holder}); "
                   "run again when it has finished; nothing was released")
            raise LedgerRefusal(msg) from None
        notes = []
        stale = _holder(fd)
        if stale:
            notes.append(f"{ledger.path}: cleared a stale lock of {stale}, which ended without releasing the "
                         "ledger (killed?)")
        with suppress(OSError):  # the holder's id is for messages only: a full disk must not stop here
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        try:
            yield notes
        finally:
            with suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _published(out: object, release_id: object) -> bool:
    """Whether the release folder ``out`` holds the release ``release_id``."""
    try:
        manifest = json.loads((Path(str(out)) / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(manifest, dict) and manifest.get("release_id") == release_id


def _leftovers(ledger: Ledger) -> list[Path]:
    found = [ledger.path / name for name in (NEXT_INDEX, f".{PENDING}.partial", ".ledger.json.partial")]
    for sub in ("records", "releases"):
        folder = ledger.path / sub
        if folder.is_dir():
            found += [p for p in folder.iterdir() if p.name.startswith(".")]
    return [p for p in found if p.exists() or p.is_symlink()]


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _roll_forward(ledger: Ledger, release_id: str) -> None:
    records, copies = ledger.path / "records", ledger.path / "releases"
    staged = records / f".{release_id}.persons.parquet.partial"  # before the record that names it
    if staged.exists():
        staged.replace(records / f"{release_id}.persons.parquet")
    staged = records / f".{release_id}.json.partial"
    if staged.exists():
        staged.replace(records / f"{release_id}.json")
    staged = copies / f".{release_id}.partial"
    if staged.exists():
        if (copies / release_id).exists():
            shutil.rmtree(copies / release_id)
        staged.rename(copies / release_id)
    _kill_point("committing")
    if (ledger.path / NEXT_INDEX).exists():
        (ledger.path / NEXT_INDEX).replace(ledger.index_path)  # the commit point
    (ledger.path / PENDING).unlink(missing_ok=True)


def _recover(ledger: Ledger, notes: list[str]) -> None:
    """Finish what a stopped run left: forward if its release was published, back otherwise."""
    pending_path = ledger.path / PENDING
    if pending_path.exists():
        try:
            pending = json.loads(pending_path.read_text(encoding="utf-8"))
            release_id, out = str(pending["release_id"]), pending["out"]
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError):
            release_id, out = "", None
        if release_id and _published(out, release_id):
            _roll_forward(ledger, release_id)
            notes.append(f"{ledger.path}: completed the record of release {release_id}, which a stopped run "
                         f"had published to {out}")
        else:
            pending_path.unlink()
            notes.append(f"{ledger.path}: removed the unfinished record of release {release_id or '?'}, which a "
                         "stopped run never published")
    for path in _leftovers(ledger):
        _remove(path)


class Transaction:
    """The ledger, held by this run: its index, and the release being recorded."""

    def __init__(self, ledger: Ledger, notes: list[str]) -> None:
        self.ledger = ledger
        self.notes = notes
        self.index = ledger.index()
        self._prepared: tuple[str, Path] | None = None

    def write_index(self, index: dict) -> None:
        """Replace the index at once (a policy change: no release folder to wait for)."""
        try:
            write_atomic(self.ledger.index_path, json.dumps(index, indent=1, sort_keys=True))
        except OSError as exc:
            (self.ledger.path / ".ledger.json.partial").unlink(missing_ok=True)
            raise _storage(exc, self.ledger.path) from exc
        self.index = index

    def prepare(self, entry: dict, record: dict, folder: Path, out: Path, *,
                persons: pl.DataFrame | pl.LazyFrame | None = None) -> None:
        """Stage the release's record, its person sets, its copy and the next index, before ``folder`` becomes ``out``.

        ``persons`` (``cell``, ``person``): the person numbers behind each person count of the
        record, written to ``records/<release_id>.persons.parquet`` a batch at a time (a lazy
        frame is never held whole) and named, with its SHA-256, in the record.

        Raises:
            StorageError: the ledger's disk refused (full, read-only); nothing is left staged.
        """
        release_id = entry["release_id"]
        path = self.ledger.path
        index = {**self.index, "population": entry["population"], "releases": [*self.index["releases"], entry]}
        try:
            for sub in ("records", "releases"):
                (path / sub).mkdir(mode=0o700, exist_ok=True)
            if persons is not None:
                staged = path / "records" / f".{release_id}.persons.parquet.partial"
                rows = _write_persons(persons, staged)
                record = {**record, "persons": {"file": f"{release_id}.persons.parquet", "sha256": file_sha256(staged),
                                                "rows": rows}}
            write_file(path / "records" / f".{release_id}.json.partial",
                       json.dumps(record, separators=(",", ":"), sort_keys=True))
            shutil.copytree(folder, path / "releases" / f".{release_id}.partial")
            write_file(path / NEXT_INDEX, json.dumps(index, indent=1, sort_keys=True))
            write_atomic(path / PENDING, json.dumps({"release_id": release_id, "out": str(Path(out).resolve())}))
        except OSError as exc:
            for left in _leftovers(self.ledger):
                with suppress(OSError):
                    _remove(left)
            raise _storage(exc, path) from exc
        self._prepared = (release_id, Path(out))
        _kill_point("prepared")

    def commit(self) -> None:
        """Record the prepared release, now published (its folder renamed into place).

        Raises:
            StorageError: the ledger could not finish the record (the next run finishes it).
        """
        _kill_point("published")
        if self._prepared is None:
            return
        release_id, out = self._prepared
        if not _published(out, release_id):  # pragma: no cover - the caller published it just before
            msg = f"release {release_id} is not in {out}; the ledger does not record it"
            raise LedgerRefusal(msg)
        try:
            _roll_forward(self.ledger, release_id)
        except OSError as exc:
            raise _storage(exc, self.ledger.path, published=out) from exc
        self._prepared = None
        self.index = self.ledger.index()


@contextmanager
def transaction(ledger: Ledger) -> Iterator[Transaction]:
    """Lock the ledger, recover what a stopped run left, and yield the run's transaction.

    On leaving (also by an error or an interrupt), a release that was prepared is recorded if its
    folder was published, and its staged record removed if not.

    Raises:
        LedgerRefusal: there is no ledger at the path, or another process holds it.
    """
    ledger.index()  # no ledger here: the steward's instruction, before any file is created
    with _lock(ledger) as notes:
        try:
            _recover(ledger, notes)
        except OSError as exc:
            raise _storage(exc, ledger.path) from exc
        txn = Transaction(ledger, notes)
        _kill_point("locked")
        try:
            yield txn
        finally:
            with suppress(OSError):  # if this fails too, the next run recovers it
                _recover(ledger, [])


def _write_persons(persons: pl.DataFrame | pl.LazyFrame, path: Path) -> int:
    """Write the person sets to ``path`` (owner-only), a batch at a time; returns the rows written.

    Through a file of our own, so the disk's refusal is an OSError of our own write (a storage
    error naming the ledger), and fsynced before the record names it.
    """
    schema = pa.schema([("cell", pa.int64()), ("person", pa.int64())])
    rows = 0
    with os.fdopen(os.open(path, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600), "wb") as fh:
        with pq.ParquetWriter(fh, schema, compression="zstd", write_statistics=False) as writer:
            for batch in persons.lazy().select(pl.col("cell").cast(pl.Int64), pl.col("person").cast(pl.Int64)
                                               ).collect_batches(chunk_size=1 << 20):
                if batch.height:
                    writer.write_table(batch.to_arrow().cast(schema))
                    rows += batch.height
        fh.flush()
        os.fsync(fh.fileno())
    return rows
