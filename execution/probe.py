"""What the workers of an executor see: a check to run before the first partitioned run on a cluster.

``python -m execution --executor dask --address tls://scheduler:8786 --tls-ca-file ... --shared /data/pfl-work
--key env:PFL_NETWORK_KEY`` runs a small partition function on the workers and prints, per task,
where it ran and whether that worker has what a partitioned stage needs (docs/guide-cluster.md):

- the project installed (the engine's packages import, the same version as the driver's);
- the shared folder: a file the driver wrote there is visible, with the same content;
- the key reference: the environment variable is set, or the key file exists and is readable.
  The key is never read, and its value never leaves the worker.

The task's argument is, as for every partition function, paths and names only.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import re
import secrets
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from execution.executors import Executor

__all__ = ["WorkerView", "look_around", "probe_workers"]

_ENGINE = ("execution", "extracts", "pseudonymisation", "linkage", "cohort", "disclosure", "release")


@dataclass(frozen=True)
class WorkerView:
    """What one task saw on its worker (no data, no key: yes/no answers and versions)."""

    host: str
    pid: int
    python: str
    project: str  # the installed version, or "" when the engine's packages do not import
    shared: bool | None  # None: no shared folder asked about
    key: bool | None  # None: no key reference asked about

    def missing(self, expected_project: str) -> list[str]:
        """What this worker lacks, in words."""
        lacks = []
        if self.project != expected_project:
            lacks.append(f"the project (driver {expected_project}, worker {self.project or 'none'})")
        if self.shared is False:
            lacks.append("the shared folder")
        if self.key is False:
            lacks.append("the key reference")
        return lacks


def _version() -> str:
    if any(importlib.util.find_spec(package) is None for package in _ENGINE):
        return ""
    try:
        return importlib.metadata.version("patientflow-linkage")
    except importlib.metadata.PackageNotFoundError:
        return ""


def look_around(item: tuple[int, str | None, str | None, str | None]) -> WorkerView:
    """The partition function: ``(task number, shared probe file, expected token, key reference)``."""
    _, probe_file, token, key_ref = item
    shared = None
    if probe_file is not None:
        try:
            shared = Path(probe_file).read_text(encoding="utf-8") == token
        except OSError:
            shared = False
    key = None
    if key_ref is not None:
        if key_ref.startswith("env:"):
            key = bool(os.environ.get(key_ref.removeprefix("env:")))
        else:
            key = Path(key_ref).is_file() and os.access(key_ref, os.R_OK)
    return WorkerView(socket.gethostname(), os.getpid(), platform.python_version(), _version(), shared, key)


# A key file's header, or 32 bytes or more in hex: key material (the lowest layer imports no
# extracts.key_material; this is its hex and header rule).
_KEY_MATERIAL = re.compile(r"pfl-key/|[0-9a-fA-F]{64}")


def probe_workers(executor: Executor, *, tasks: int, shared: Path | None = None,
                  key_ref: str | None = None) -> list[WorkerView]:
    """Run :func:`look_around` as ``tasks`` partitions; the probe file in ``shared`` is removed after."""
    if key_ref is not None and not key_ref.startswith("env:") and _KEY_MATERIAL.search(key_ref):
        # Never sent in a task (a scheduler may log or persist its tasks) and never echoed.
        msg = ("--key: the value is not shown: it looks like key material, not a key reference; give the "
               "key file's path or env:NAME")
        raise ValueError(msg)
    probe_file, token = None, None
    if shared is not None:
        token = secrets.token_hex(8)
        probe_file = shared / f".pfl-probe-{token}"
        probe_file.write_text(token, encoding="utf-8")
    try:
        items = [(i, str(probe_file) if probe_file else None, token, key_ref) for i in range(tasks)]
        return executor.map(look_around, items, stage="worker check")
    finally:
        if probe_file is not None:
            probe_file.unlink(missing_ok=True)


def report(views: list[WorkerView], executor: str, *, out: TextIO = sys.stdout) -> bool:
    """Print one line per task and a verdict; True when every worker has what it needs."""
    expected = _version()
    ok = True
    for number, view in enumerate(views, start=1):
        lacks = view.missing(expected)
        ok = ok and not lacks
        seen = [f"Python {view.python}", f"patientflow-linkage {view.project or 'missing'}"]
        if view.shared is not None:
            seen.append("shared folder " + ("seen" if view.shared else "NOT seen"))
        if view.key is not None:
            seen.append("key reference " + ("resolves" if view.key else "does NOT resolve"))
        print(f"task {number}: {view.host} pid {view.pid}: " + ", ".join(seen), file=out)
    workers = len({(v.host, v.pid) for v in views})
    if ok:
        print(f"ok: {len(views)} tasks on {workers} worker processes of the {executor} executor "
              "have what a partitioned stage needs", file=out)
    else:
        print(f"error: some workers of the {executor} executor lack what a partitioned stage needs "
              "(docs/guide-cluster.md, 'What a worker must have')", file=sys.stderr)
    return ok
