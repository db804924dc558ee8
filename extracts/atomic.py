"""Outputs that are complete or absent, one run at a time: lock, stage, then swap into place.

Every stage writes its folder through :func:`claim_output` and :func:`staging`:

- **One run per output.** A run holds an exclusive lock on ``.<name>.lock`` beside the output (in
  its parent folder) from its first check to its publication (``fcntl.flock``: the kernel drops
  the lock when the process dies, so a killed run leaves no stale lock). A second run on the same
  output fails at once with :class:`~extracts.errors.OutputBusyError` (exit 9); it never waits.
- **Staging.** Work happens in an owner-only ``.<name>.partial-<random>`` folder beside the
  output; on success the folder is given the mode a new folder gets (the umask's) and moved into
  place, on any failure it is removed. Whether the
  output may be replaced (``overwrite``) is checked at the start and again at publication.
- **Crash-safe publication.** A replacement is one atomic exchange of the two folders
  (``renameat2(RENAME_EXCHANGE)`` on Linux): at every instant the output's name holds the old or
  the new complete output. Where the exchange is not available the old folder is first renamed to
  ``.<name>.old``; a run killed between the two renames is repaired by the next run on that
  output, which puts ``.old`` back under the lock before doing anything else.
- **Scratch.** Person-level intermediate files go to an owner-only ``.<name>.scratch-<random>``
  folder beside the output (:func:`scratch`), removed when the run ends; the next run on the output
  removes what a killed run left (partial, scratch and old folders alike), under the lock.

The file system's refusals (disk or quota full, permission denied, read-only file system) are
turned into a :class:`~extracts.errors.StorageError` naming the output and the reason, here
where the output is known: polars and pyarrow report them as their own error types with the
operating system's error number in the text, which would otherwise surface as an internal error.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import hashlib
import os
import re
import secrets
import shutil
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from extracts.errors import EngineError, ExtractNotFoundError, OutputBusyError, OutputExistsError, StorageError
from extracts.targets import check_target

__all__ = [
    "check_output",
    "claim_output",
    "file_sha256",
    "os_error_number",
    "output_lock",
    "scratch",
    "staging",
    "storage_error",
]

_NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
_REFUSED = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})
_MISSING = frozenset({errno.ENOENT, errno.ENOTDIR})
# polars: "... underlying IO error: No space left on device (os error 28)";
# pyarrow: "... Detail: [errno 28] No space left on device".
_ERRNO_IN_TEXT = re.compile(r"(?:os error|errno) (\d+)", re.IGNORECASE)


def os_error_number(exc: BaseException) -> int | None:
    """The operating system's error number behind ``exc``, if it is an I/O error.

    Only ``OSError`` and the error types of polars and pyarrow are looked at; only the number is
    taken from their text, never anything else of it.
    """
    if isinstance(exc, OSError) and exc.errno:
        return exc.errno
    if isinstance(exc, OSError) or type(exc).__module__.split(".")[0] in ("polars", "pyarrow"):
        found = _ERRNO_IN_TEXT.search(str(exc))
        return int(found.group(1)) if found else None
    return None


def storage_error(exc: BaseException, *, output: Path | None = None) -> EngineError | None:
    """The user-facing error for a file-system failure, or None if ``exc`` is not one.

    Args:
        exc: the exception raised while reading inputs or writing an output.
        output: the output folder being written, named in the message when known.

    Returns:
        :class:`~extracts.errors.StorageError` (exit 10) for a full disk, a refused permission
        or another I/O failure; :class:`~extracts.errors.ExtractNotFoundError` (exit 3) for a
        missing file or folder; None for anything else (a bug, reported as an internal error).
    """
    if isinstance(exc, EngineError):
        return None
    number = os_error_number(exc)
    if number is None and not isinstance(exc, OSError):
        return None
    filename = getattr(exc, "filename", None)
    code = errno.errorcode.get(number, "") if number else ""
    reason = os.strerror(number) if number else type(exc).__name__
    reason = f"{reason} ({code})" if code else reason
    if number in _MISSING and filename:
        return ExtractNotFoundError(f"not found: {filename} ({code})")
    if output is not None:
        where = f"cannot write the output {output}"
    elif filename:
        where = f"cannot read or write {filename}"
    else:
        where = "cannot read or write a file"
    if number in _NO_SPACE:
        return StorageError(
            f"{where}: {reason}. The disk or quota is full: free space or choose an output "
            "folder on another disk; nothing was published."
        )
    if number in _REFUSED:
        detail = f" on {filename}" if filename and output is not None else ""
        return StorageError(
            f"{where}: {reason}{detail}. Check that the folder exists, is writable by this user "
            "and is not on a read-only file system; nothing was published."
        )
    return StorageError(f"{where}: {reason}; nothing was published.")


def check_output(out: Path, *, overwrite: bool) -> None:
    """Refuse to replace an existing output folder unless asked to."""
    if (Path(out).exists() or Path(out).is_symlink()) and not overwrite:
        msg = f"output folder exists: {out} (pass overwrite=true to replace it)"
        raise OutputExistsError(msg)


def _translated(exc: BaseException, out: Path) -> BaseException:
    return storage_error(exc, output=out) or exc


# ---- renameat2: atomic exchange and no-replace renames (Linux); None elsewhere -----------------
_AT_FDCWD = -100
_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2


def _load_renameat2():  # noqa: ANN202 - a ctypes function or None
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2  # glibc >= 2.28
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


_RENAMEAT2 = _load_renameat2()


def _renameat2(src: Path, dst: Path, flags: int) -> bool:
    """Rename with ``flags``; False when this system or file system cannot (then fall back)."""
    if _RENAMEAT2 is None:
        return False
    if _RENAMEAT2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), flags) == 0:
        return True
    number = ctypes.get_errno()
    if number in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(number, os.strerror(number), str(dst))


# ---- the lock of an output ----------------------------------------------------------------------
_HELD: dict[str, int] = {}  # outputs whose lock this process holds -> depth (the lock is re-entrant)
_TOKEN = re.compile(r"[0-9a-f]{16}")


def _sibling(out: Path, kind: str) -> Path:
    return out.with_name(f".{out.name}.{kind}-{secrets.token_hex(8)}")


def _leftovers(out: Path, kinds: tuple[str, ...]) -> list[Path]:
    """The ``.<name>.<kind>-<random>`` folders beside ``out`` (and a ``.partial`` of older versions)."""
    found = []
    with contextlib.suppress(OSError):
        for entry in out.parent.iterdir():
            for kind in kinds:
                prefix = f".{out.name}.{kind}"
                rest = entry.name[len(prefix):]
                if entry.name.startswith(prefix) and (rest == "" or (rest[:1] == "-" and _TOKEN.fullmatch(rest[1:]))):
                    found.append(entry)
    return found


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()


def _acquire(lock: Path, out: Path) -> int:
    while True:
        # O_NOFOLLOW: a link another user planted at the lock's name is refused (ELOOP), not
        # followed to create or lock a file wherever it points.
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            msg = (f"output busy: another run is writing {out} (it holds {lock}); wait until it ends "
                   "or choose another output folder")
            raise OutputBusyError(msg) from None
        except BaseException:
            os.close(fd)
            raise
        try:
            here, there = os.fstat(fd), os.stat(lock)
            if (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino):
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)  # a finishing run removed the file we locked: lock the one now at the name


def _recover(out: Path) -> None:
    """Repair what a killed run on ``out`` left; called with the lock held, before anything else."""
    old = out.with_name(f".{out.name}.old")
    if old.exists():
        if not (out.exists() or out.is_symlink()):
            old.rename(out)  # killed between the two renames of a replacement: put the output back
        else:
            _remove(old)
    for leftover in _leftovers(out, ("partial", "scratch")):
        _remove(leftover)


@contextmanager
def output_lock(out: Path) -> Iterator[None]:
    """Hold the exclusive lock of ``out`` for the block (re-entrant within a process).

    On taking the lock, repairs what a killed run left (:func:`_recover`); on leaving, removes
    this run's scratch folders and the lock file.

    Raises:
        OutputBusyError: another process holds the lock (exit 9); nothing was changed.
        StorageError: the lock file cannot be created (permission denied, disk full).
    """
    out = Path(out)
    key = os.path.abspath(out)
    if key in _HELD:
        _HELD[key] += 1
        try:
            yield
        finally:
            _HELD[key] -= 1
        return
    lock = out.with_name(f".{out.name}.lock")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd = _acquire(lock, out)
    except OSError as exc:
        raise _translated(exc, out) from exc
    _HELD[key] = 1
    try:
        try:
            _recover(out)
        except OSError as exc:
            raise _translated(exc, out) from exc
        yield
    finally:
        del _HELD[key]
        for leftover in _leftovers(out, ("scratch",)):
            _remove(leftover)
        with contextlib.suppress(OSError):
            lock.unlink()  # before unlocking: a run that opened this file retries on the new one
        os.close(fd)


@contextmanager
def claim_output(out: Path, *, overwrite: bool, inputs: Mapping[str, Path | str | None] | None = None,
                 setting: str = "out") -> Iterator[Path]:
    """Check where ``out`` is, then hold its lock for the whole run (the block).

    Raises:
        ConfigError: ``out`` is, holds or lies inside an input, or is a folder no command may
            replace (:func:`extracts.targets.check_target`); checked before anything is read.
        OutputBusyError: another run holds the output (exit 9).
        OutputExistsError: ``out`` exists and ``overwrite`` is false (exit 9).
    """
    check_target(out, inputs=inputs, setting=setting)
    with output_lock(out):
        check_output(out, overwrite=overwrite)
        yield Path(out)


@contextmanager
def scratch(out: Path) -> Iterator[Path]:
    """An owner-only folder beside ``out`` for person-level intermediate files of this run.

    Removed when the block ends, and by the next run on ``out`` if this one is killed. A full
    disk or a refused write in the block is reported as a failure to write ``out``.
    """
    out = Path(out)
    with output_lock(out):
        folder = _sibling(out, "scratch")
        try:  # one handler from mkdir on: a Ctrl-C between two statements leaves nothing either
            folder.mkdir(mode=0o700)
            yield folder
        except Exception as exc:
            translated = _translated(exc, out)
            if translated is exc:
                raise
            raise translated from exc
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def _publish(tmp: Path, out: Path, *, overwrite: bool) -> None:
    """Move the complete ``tmp`` to ``out``; at every instant ``out`` is old or new, complete."""
    if not (out.exists() or out.is_symlink()):
        try:
            if _renameat2(tmp, out, _RENAME_NOREPLACE):
                return
            if not (out.exists() or out.is_symlink()):
                os.rename(tmp, out)
                return
        except FileExistsError:
            pass  # created just now by something else than a run of this engine: as below
    check_output(out, overwrite=overwrite)  # again at publication: the output may have appeared
    if _renameat2(tmp, out, _RENAME_EXCHANGE):
        shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the previous output
        return
    # No atomic exchange here: a kill between these renames is repaired by the next run (_recover).
    old = out.with_name(f".{out.name}.old")
    _remove(old)
    os.rename(out, old)
    try:
        os.rename(tmp, out)
    except OSError:
        with contextlib.suppress(OSError):
            os.rename(old, out)  # put the previous output back
        raise
    _remove(old)


@contextmanager
def staging(out: Path, *, overwrite: bool) -> Iterator[Path]:
    """Yield a fresh owner-only temporary folder that becomes ``out`` when the block completes.

    Holds the output's lock (:func:`output_lock`) if the caller does not already.

    Raises:
        OutputBusyError: another run holds the output.
        OutputExistsError: ``out`` exists and ``overwrite`` is false (checked on entry and again
            when publishing).
        StorageError: the file system refused (disk full, permission denied); the temporary
            folder is removed and ``out`` is left as it was.
    """
    out = Path(out)
    with output_lock(out):
        check_output(out, overwrite=overwrite)
        tmp = _sibling(out, "partial")
        # One handler for the whole life of the folder: a Ctrl-C may land anywhere, between two
        # statements too (after mkdir, before the body, before publishing); the folder goes with it.
        try:
            tmp.mkdir()  # empty, under a random name, for an instant: its mode is the umask's
            published_mode = tmp.stat().st_mode & 0o7777
            tmp.chmod(0o700)  # owner-only while it fills
            yield tmp
            tmp.chmod(published_mode)  # complete: the mode any new folder of this user gets
            _publish(tmp, out, overwrite=overwrite)
        except BaseException as exc:  # KeyboardInterrupt, SystemExit: clean up, do not translate
            shutil.rmtree(tmp, ignore_errors=True)
            translated = _translated(exc, out) if isinstance(exc, Exception) else exc
            if translated is exc:
                raise
            raise translated from exc


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, read in 1 MB blocks (manifests and fingerprints of every stage)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
