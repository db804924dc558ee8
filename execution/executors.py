"""Executors: ``local`` (in process) and ``processes`` (a local process pool).

``dask`` and ``spark`` register themselves in :data:`EXECUTORS` from their own modules, which
import their engine only when chosen (both are optional extras).
"""

from __future__ import annotations

import multiprocessing
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

__all__ = ["EXECUTORS", "Executor", "LocalExecutor", "ProcessExecutor", "open_executor"]

T = TypeVar("T")
R = TypeVar("R")


class Executor(ABC):
    """Runs a partition function over items; a context manager that releases its workers."""

    name: str = ""

    @abstractmethod
    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """``[fn(item) for item in items]``, possibly in parallel; results in the items' order."""

    @property
    def workers(self) -> int:
        """How many partitions can run at once (sizes the partition count with ``memory_gb``)."""
        return 1

    def close(self) -> None:
        """Release the executor's workers (a no-op in process)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LocalExecutor(Executor):
    """In process, one partition after the other: K = 1 is today's behaviour."""

    name = "local"

    def __init__(self, workers: int | None = None) -> None:
        del workers  # one at a time, whatever the configuration says

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        return [fn(item) for item in items]


class ProcessExecutor(Executor):
    """A local process pool (spawned, not forked: polars' thread pool does not survive a fork)."""

    name = "processes"

    def __init__(self, workers: int | None = None) -> None:  # noqa: D107
        self._workers = workers or os.cpu_count() or 1
        self._pool: ProcessPoolExecutor | None = None

    @property
    def workers(self) -> int:
        return self._workers

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self._workers, mp_context=multiprocessing.get_context("spawn"))
        return list(self._pool.map(fn, items))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


EXECUTORS: dict[str, Callable[..., Executor]] = {"local": LocalExecutor, "processes": ProcessExecutor}


def open_executor(name: str = "local", **options: Any) -> Executor:
    """The executor called ``name`` with its options (e.g. ``workers=2``)."""
    if name not in EXECUTORS:
        raise ValueError(f"executor must be one of {sorted(EXECUTORS)}, not {name!r}")
    return EXECUTORS[name](**options)
