"""The engines' own folder on this machine: a local Dask cluster's spill, Spark's local dirs.

Owner-only (0700), this run's alone, removed when the executor closes, and removed by the next
run after a kill (SIGKILL, the out-of-memory killer, a power loss), like the stages' scratch
folders beside their outputs (:mod:`extracts.atomic`). A folder is in use while its run holds a
lock on it (``flock`` on the folder itself: the kernel drops it when the process dies); the next
executor to open removes every folder of the same prefix, in the temporary folder, that is
owned by this user, marked as one of these folders and not locked. A folder is locked and marked
before it gets its name, so a live run's folder is never seen unlocked. Symbolic links, other
users' folders and folders without the mark (an older version's, which may be in use) are left
alone.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
import stat
import tempfile
from pathlib import Path

__all__ = ["EngineFolder", "remove_stale"]

MARK = ".pfl-engine-folder"


class EngineFolder:
    """``<tmp>/<prefix><random>``: owner-only, locked while this process holds it."""

    def __init__(self, prefix: str) -> None:
        remove_stale(prefix)
        fresh = tempfile.mkdtemp(prefix=".pfl-new-")  # 0700; not yet under a name remove_stale reads
        self._fd: int | None = os.open(fresh, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.close(os.open(os.path.join(fresh, MARK), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            self.path = os.path.join(os.path.dirname(fresh), f"{prefix}{secrets.token_hex(8)}")
            os.rename(fresh, self.path)  # the lock goes with the folder
        except BaseException:
            os.close(self._fd)
            shutil.rmtree(fresh, ignore_errors=True)
            raise

    def remove(self) -> None:
        """Remove the folder, then release its lock."""
        if self._fd is not None:
            shutil.rmtree(self.path, ignore_errors=True)
            os.close(self._fd)
            self._fd = None


def remove_stale(prefix: str, folder: Path | None = None) -> list[Path]:
    """Remove the unlocked ``<prefix>*`` folders of this user in ``folder`` (default: the temporary one)."""
    root = Path(folder if folder is not None else tempfile.gettempdir())
    removed = []
    for entry in sorted(root.glob(f"{prefix}*")):
        try:
            info = entry.lstat()
        except OSError:
            continue
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or not (entry / MARK).is_file():
            continue
        try:
            fd = os.open(entry, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue  # a live run's
        try:
            with contextlib.suppress(OSError):
                if os.fstat(fd).st_ino == entry.lstat().st_ino:
                    shutil.rmtree(entry, ignore_errors=True)
                    removed.append(entry)
        finally:
            os.close(fd)
    return removed
