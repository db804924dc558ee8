"""Partition functions for the executor contract tests (module-level: a worker imports them by name).

Each takes one small picklable item (paths, numbers), as execution/__init__.py's contract asks,
and runs the engine's kind of work: a polars plan over a partition file, its result written to a
folder the caller owns, a small summary returned.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

import polars as pl


def square(x: int) -> int:
    return x * x


def slow_first(x: int) -> int:
    """Finishes later the lower its number: results must still come back in the items' order."""
    import time

    time.sleep(0.05 * (4 - x % 4))
    return x


def refuse_two(x: int) -> int:
    if x == 2:
        msg = f"partition {x} refused: no rows for practice P{x:03d}"
        raise ValueError(msg)
    return x


def summarise_partition(item: tuple[str, str]) -> tuple[int, int]:
    """A polars plan over one partition file: per-person totals written out, (persons, total) back."""
    source, out = item
    totals = (pl.scan_parquet(source)
              .group_by("p2").agg(pl.col("amount").sum().alias("amount"), pl.len().alias("lines"))
              .sort("p2")
              .collect())
    target = Path(out) / f"{Path(source).stem}.totals.parquet"
    totals.write_parquet(target)
    return totals.height, int(totals["amount"].sum())


def keyed_digest(item: tuple[str, str]) -> str:
    """A keyed digest of a partition file, the key loaded inside the worker from its path."""
    source, key_ref = item
    key_path = os.environ[key_ref.removeprefix("env:")] if key_ref.startswith("env:") else key_ref
    key = Path(key_path).read_bytes()
    return hmac.new(key, Path(source).read_bytes(), hashlib.sha256).hexdigest()


def worker_identity(_: int) -> tuple[int, str]:
    """The worker's process id and Python (to see where a task ran)."""
    import sys

    return os.getpid(), sys.executable


def die_on_one(x: int) -> int:
    """Partition 1's worker process is killed outright (as the out-of-memory killer does)."""
    if x == 1:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)
    return x


def refuse_one_as_configuration(x: int) -> int:
    """An engine error (exit 2) in partition 2: what a user sees must name the stage that failed."""
    from extracts.errors import ConfigError

    if x == 1:
        raise ConfigError("a practice code list names no practice of this partition")
    return x
