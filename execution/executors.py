"""Executors: ``local`` (in process), ``processes`` (a local process pool), ``dask`` and ``spark``.

``dask`` (:mod:`execution.dask_cluster`) and ``spark`` (:mod:`execution.spark_session`) are in
:data:`EXECUTORS` as factories that import their module, and so their engine, only when chosen
(both are optional extras: ``pip install 'patientflow-linkage[dask,spark]'``).

Every executor keeps the same two promises on top of ``map``'s order: a task's argument is checked
before anything is sent (:func:`check_task_arguments`: no bytes, the form key material takes), and
an exception in a task is raised on the driver as itself, with a note naming the stage, the partition
and the executor (:func:`note_partition`; a command's error message adds the same words).
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import multiprocessing
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

__all__ = ["EXECUTORS", "PARTITION_ATTRIBUTE", "Executor", "ExecutorError", "LocalExecutor", "ProcessExecutor",
           "check_task_arguments", "lost_worker", "note_partition", "open_executor"]

T = TypeVar("T")
R = TypeVar("R")


class ExecutorError(RuntimeError):
    """An executor could not start, or lost a task without the task's own exception."""


def check_task_arguments(items: Sequence[object]) -> None:
    """Refuse task arguments that hold bytes: a key reaches a worker by path or env:NAME only.

    A scheduler may log, persist or ship its task graph, so a task's argument is paths, numbers,
    names and frozen settings (the contract of :mod:`execution`). Bytes anywhere in an argument
    (in a tuple, list, mapping or dataclass) are the form key material takes and are refused
    before anything is sent; the message names the position, never the value.

    Rows of data are refused the same way: a table or an array (polars, numpy, pandas, pyarrow)
    anywhere in an argument.

    Raises:
        TypeError: an item holds bytes, bytearray or memoryview, or a table or an array.
    """
    for position, item in enumerate(items, start=1):
        held = _held(item)
        if held == "bytes":
            msg = (f"task argument {position} of {len(items)} holds bytes; a partition function takes "
                   "paths, numbers and settings, and a key reaches a worker by path or env:NAME")
            raise TypeError(msg)
        if held:
            msg = (f"task argument {position} of {len(items)} holds rows of data ({held}); a partition "
                   "function takes paths, numbers and settings, and reads its rows from a file")
            raise TypeError(msg)


# Tables and arrays: a task argument holding one ships its rows through the scheduler (a lazy
# frame made from a frame in memory carries the rows in its plan). Named, not imported: the
# check imports no engine.
_DATA = {("polars", "DataFrame"), ("polars", "LazyFrame"), ("polars", "Series"), ("numpy", "ndarray"),
         ("pandas", "DataFrame"), ("pandas", "Series"), ("pyarrow", "Table"), ("pyarrow", "RecordBatch"),
         ("pyarrow", "ChunkedArray"), ("pyarrow", "Array")}


def _held(value: object, depth: int = 0) -> str:
    """"bytes", the name of a table or array type held in ``value``, or "" (none)."""
    if isinstance(value, bytes | bytearray | memoryview):
        return "bytes"
    if depth > 20 or isinstance(value, str | int | float | os.PathLike) or value is None:
        return ""
    kinds = {(k.__module__.split(".")[0], k.__name__) for k in type(value).__mro__}
    if kinds & _DATA:
        return f"a {type(value).__module__.split('.')[0]} {type(value).__name__}"
    if isinstance(value, Mapping):
        parts = [x for k, v in value.items() for x in (k, v)]
    elif isinstance(value, list | tuple | set | frozenset):
        parts = list(value)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        parts = [getattr(value, f.name) for f in dataclasses.fields(value)]
    else:
        return ""
    found = [_held(v, depth + 1) for v in parts]
    return "bytes" if "bytes" in found else next((f for f in found if f), "")


def _of(stage: str) -> str:
    return f" of the {stage}" if stage else ""


def lost_worker(executor: str, index: int, count: int, stage: str = "") -> ExecutorError:
    """A worker died running partition ``index`` of ``stage`` (no exception of the task's own to raise)."""
    msg = (f"executor {executor} lost partition {index + 1} of {count}{_of(stage)}: its worker process died (killed by the "
           "system, out of memory or a node lost); nothing was published. Run again, with more memory per "
           "worker or more partitions (partitions=K, or partitions=auto with memory_gb)")
    return ExecutorError(msg)


#: The attribute :func:`note_partition` sets on a task's exception: where it was raised (stage,
#: partition, executor; no data), which a command's error message adds (extracts.cli.guarded).
PARTITION_ATTRIBUTE = "pfl_partition"


def note_partition(exc: BaseException, index: int, count: int, executor: str, stage: str = "") -> BaseException:
    """``exc`` with a note naming the stage and partition that raised it (shown under its traceback).

    The same words are kept on ``exc`` as :data:`PARTITION_ATTRIBUTE`, for a command's message,
    which shows an error's text (or only its type) but not its notes.
    """
    where = f"partition {index + 1} of {count}{_of(stage)}, on the {executor} executor"
    exc.add_note(f"(in {where})")
    with contextlib.suppress(AttributeError, TypeError):
        setattr(exc, PARTITION_ATTRIBUTE, where)
    return exc


class Executor(ABC):
    """Runs a partition function over items; a context manager that releases its workers."""

    name: str = ""

    @abstractmethod
    def map(self, fn: Callable[[T], R], items: Sequence[T], *, stage: str = "") -> list[R]:
        """``[fn(item) for item in items]``, possibly in parallel; results in the items' order.

        ``stage`` names the stage the partitions belong to ("study", "supplier step (ehr)"): a
        failure's message says it, beside the partition and the executor.
        """

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

    def map(self, fn: Callable[[T], R], items: Sequence[T], *, stage: str = "") -> list[R]:
        check_task_arguments(items)
        results = []
        for index, item in enumerate(items):
            try:
                results.append(fn(item))
            except Exception as exc:
                raise note_partition(exc, index, len(items), self.name, stage) from None
        return results


class ProcessExecutor(Executor):
    """A local process pool (spawned, not forked: polars' thread pool does not survive a fork)."""

    name = "processes"

    def __init__(self, workers: int | None = None) -> None:  # noqa: D107
        self._workers = workers or os.cpu_count() or 1
        self._pool: ProcessPoolExecutor | None = None

    @property
    def workers(self) -> int:
        return self._workers

    def map(self, fn: Callable[[T], R], items: Sequence[T], *, stage: str = "") -> list[R]:
        check_task_arguments(items)
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self._workers, mp_context=multiprocessing.get_context("spawn"))
        futures = [self._pool.submit(fn, item) for item in items]
        results = []
        for index, future in enumerate(futures):
            try:
                results.append(future.result())
            except BrokenProcessPool:  # a worker was killed: the pool is gone, the next map starts one
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None
                raise lost_worker(self.name, index, len(items), stage) from None
            except Exception as exc:
                for later in futures[index + 1:]:
                    later.cancel()
                raise note_partition(exc, index, len(items), self.name, stage) from None
        return results

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def _dask(**options: Any) -> Executor:
    from execution.dask_cluster import DaskExecutor

    return _opened(DaskExecutor, options)


def _spark(**options: Any) -> Executor:
    from execution.spark_session import SparkExecutor

    return _opened(SparkExecutor, options)


def _opened(kind: Callable[..., Executor], options: dict[str, Any]) -> Executor:
    """``kind(**options)``, an unknown option refused with the ones it takes (not a TypeError)."""
    accepted = [p for p in inspect.signature(kind).parameters if p != "self"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        msg = (f"executor {getattr(kind, 'name', kind)!s} has no option {', '.join(unknown)}; "
               f"it takes {', '.join(accepted) or 'none'}")
        raise ValueError(msg)
    for name in _COUNTS & set(options):
        value = options[name]
        # 0 would read as "unset" (every core), -1 fail only after the data was read, "abc" deep
        # inside the engine: refused here, before anything starts.
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"executor.{name} must be a whole number >= 1, not {value!r}")
    return kind(**options)


_COUNTS = frozenset({"workers", "threads_per_worker"})


EXECUTORS: dict[str, Callable[..., Executor]] = {
    "local": LocalExecutor, "processes": ProcessExecutor, "dask": _dask, "spark": _spark}


def open_executor(name: str = "local", **options: Any) -> Executor:
    """The executor called ``name`` with its options (e.g. ``workers=2``)."""
    if name not in EXECUTORS:
        raise ValueError(f"executor must be one of {sorted(EXECUTORS)}, not {name!r}")
    factory = EXECUTORS[name]
    return _opened(factory, options) if isinstance(factory, type) else factory(**options)
