"""Writing the audit's JSON report complete or not at all.

The report is written to a temporary file beside its target (``.<name>.<random>.partial``),
flushed to disk and renamed over the target; on any failure (disk or quota full, a read-only or
missing folder, permission denied, Ctrl-C) the temporary file is removed, the target is left as
it was, and :class:`~audit.errors.ReportWriteError` (``pfl-audit`` exit 10, "storage refused")
names the file and the reason. A full disk is then never mistaken for a failed audit (exit 1).
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path

from audit.errors import ReportWriteError

__all__ = ["write_atomically"]

# What the user can do about each storage failure (the OS's own text comes first).
_ADVICE = {
    errno.ENOSPC: "the disk or quota is full: free space or write the report elsewhere (report=FILE)",
    errno.EDQUOT: "the disk or quota is full: free space or write the report elsewhere (report=FILE)",
    errno.EROFS: "the file system is read-only: write the report elsewhere (report=FILE)",
    errno.EACCES: "the folder is not writable by this user: write the report elsewhere (report=FILE)",
    errno.EPERM: "the folder is not writable by this user: write the report elsewhere (report=FILE)",
    errno.ENOENT: "the folder does not exist: create it or write the report elsewhere (report=FILE)",
}


def _reason(exc: OSError) -> str:
    number = exc.errno or errno.EIO
    name = errno.errorcode.get(number, "EIO")
    advice = _ADVICE.get(number, "the file system refused the file")
    return f"{os.strerror(number)} ({name}); {advice}"


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` complete, or leave ``path`` as it was.

    Raises:
        ReportWriteError: the file system refused the file; nothing was written (exit 10).
    """
    path = Path(path)
    data = text.encode("utf-8")
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
        with os.fdopen(fd, "wb") as handle:
            view = memoryview(data)
            while view:
                written = os.write(handle.fileno(), view)
                view = view[written:]
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        msg = f"cannot write the audit report {path}: {_reason(exc)}; no report was written"
        raise ReportWriteError(msg, exc.errno or errno.EIO, str(path)) from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
