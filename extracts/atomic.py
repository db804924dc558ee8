"""Outputs that are complete or absent: write under a temporary name, then rename.

Every stage writes its folder through :func:`staging`: work happens in ``.<name>.partial``
beside the target; on success the folder is moved into place (replacing an old one only when
asked), on any failure it is removed. A reader never sees half an output that looks complete,
and an interrupted run leaves nothing a rerun could mistake for a result (a run killed with
SIGKILL leaves at most the ``.partial`` folder, which the next run removes).

The file system's refusals (disk or quota full, permission denied, read-only file system) are
turned into a :class:`~extracts.errors.StorageError` naming the output and the reason, here
where the output is known: polars and pyarrow report them as their own error types with the
operating system's error number in the text, which would otherwise surface as an internal error.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from extracts.errors import EngineError, ExtractNotFoundError, OutputExistsError, StorageError

__all__ = ["check_output", "file_sha256", "os_error_number", "staging", "storage_error"]

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
    if Path(out).exists() and not overwrite:
        msg = f"output folder exists: {out} (pass overwrite=true to replace it)"
        raise OutputExistsError(msg)


def _translated(exc: BaseException, out: Path) -> BaseException:
    return storage_error(exc, output=out) or exc


@contextmanager
def staging(out: Path, *, overwrite: bool) -> Iterator[Path]:
    """Yield a fresh temporary folder that becomes ``out`` when the block completes.

    Raises:
        OutputExistsError: ``out`` exists and ``overwrite`` is false.
        StorageError: the file system refused (disk full, permission denied); the temporary
            folder is removed and ``out`` is left as it was.
    """
    out = Path(out)
    check_output(out, overwrite=overwrite)
    tmp = out.with_name(f".{out.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
    except OSError as exc:
        raise _translated(exc, out) from exc
    try:
        yield tmp
    except Exception as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        translated = _translated(exc, out)
        if translated is exc:
            raise
        raise translated from exc
    except BaseException:  # KeyboardInterrupt, SystemExit: clean up, do not translate
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = out.with_name(f".{out.name}.old")
    try:
        if out.exists():
            shutil.rmtree(old, ignore_errors=True)
            out.rename(old)
        tmp.rename(out)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not out.exists():
            with contextlib.suppress(OSError):
                old.rename(out)  # put the previous output back
        raise _translated(exc, out) from exc
    shutil.rmtree(old, ignore_errors=True)


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, read in 1 MB blocks (manifests and fingerprints of every stage)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
