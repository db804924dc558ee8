"""The ``spark`` executor: partition tasks on a Spark cluster through a ``SparkSession`` (issue 14).

By default Spark's local mode, ``local[N]`` (N = ``workers``, default: the cores); with
``master`` (``spark://HOST:7077``, ``yarn``, ``k8s://…``) a cluster's. Inside a session that is
already running, or without ``master`` under ``spark-submit`` or on Databricks, it uses that
session with the settings it was launched with, and leaves it running when closed. ``map`` is ``sc.parallelize(items, len(items)).map(fn).collect()``: one
Spark task per partition item, the results in the items' order.

Quiet and closed: Spark's log at ERROR, no progress bar, no web UI (``spark.ui.enabled=false``),
no event log; in local mode the driver binds to the loopback address only, answers its own
session only (``spark.authenticate``) and keeps its files in an owner-only folder of this
process (``spark.local.dir``), removed when the process ends. Spark has no
telemetry. A worker's Python is the driver's (``PYSPARK_PYTHON``, default ``sys.executable``) so
that it imports the engine; a local worker sees the driver's import path. An exception in a task
is caught in the worker, shipped back and raised on the driver as itself, with a note naming the
partition (a Spark task failure would otherwise be a Java stack trace).
"""

from __future__ import annotations

import atexit
import functools
import os
import pickle
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from execution.engine_folder import EngineFolder
from execution.executors import Executor, ExecutorError, check_task_arguments, note_partition

__all__ = ["SparkExecutor"]

T = TypeVar("T")
R = TypeVar("R")
_LOG_CONFIG = Path(__file__).with_name("spark-log4j2.properties")
# The masters Spark takes (its SparkSubmit refuses any other with a Java stack trace on the console).
_MASTER = re.compile(r"local(\[(\*|[1-9][0-9]*)(,[1-9][0-9]*)?\])?|local-cluster\[[1-9][0-9]*,[1-9][0-9]*,[1-9][0-9]*\]"
                     r"|spark://[^\s/,:]+:[0-9]+(,[^\s/,:]+:[0-9]+)*|yarn|k8s://\S+")


def _call(fn: Callable[[Any], Any], item: Any) -> tuple[bool, Any]:
    """Runs in the worker: ``(True, result)``, or ``(False, the pickled exception or its type's name)``."""
    try:
        return True, fn(item)
    except Exception as exc:
        try:
            return False, pickle.dumps(exc)
        except Exception:  # an exception that does not pickle: its type only (its text may quote data)
            return False, type(exc).__name__


class SparkExecutor(Executor):
    """A ``SparkSession``: ``local[workers]`` by default, or the cluster at ``master``."""

    name = "spark"

    def __init__(self, workers: int | None = None, master: str | None = None) -> None:
        try:
            from pyspark.sql import SparkSession
        except ImportError as exc:
            msg = ("executor spark needs the spark extra and Java 17: pip install "
                   "'patientflow-linkage[spark]' (./run install installs both)")
            raise ExecutorError(msg) from exc
        if master and not _MASTER.fullmatch(str(master)):
            msg = (f"executor.master must be local, local[N], local[*], spark://HOST:PORT, yarn or "
                   f"k8s://URL, not {master!r}")
            raise ValueError(msg)
        running = SparkSession.getActiveSession()
        if running is None and not master and _launched_by_spark():
            running = SparkSession.builder.getOrCreate()  # spark-submit's or Databricks' own settings
        self._owned = running is None
        self._session = running if running is not None else self._start(SparkSession, workers, master)
        if self._owned:  # a session of spark-submit or Databricks keeps the log level it was given
            self._session.sparkContext.setLogLevel("ERROR")

    def _start(self, session_type: Any, workers: int | None, master: str | None) -> Any:
        local = not master or str(master).startswith("local")
        master = master or f"local[{workers or os.cpu_count() or 1}]"
        # The workers' Python is read from the driver's environment when the context starts.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        python = os.environ["PYSPARK_PYTHON"]
        java_options = f"-Dlog4j2.configurationFile=file:{_LOG_CONFIG}"
        builder = (session_type.builder.master(str(master)).appName("patientflow-linkage")
                   .config("spark.ui.enabled", "false")
                   .config("spark.ui.showConsoleProgress", "false")
                   .config("spark.eventLog.enabled", "false")
                   .config("spark.pyspark.python", python)
                   .config("spark.pyspark.driver.python", sys.executable)
                   .config("spark.driver.extraJavaOptions",
                           java_options + (f" -Djava.io.tmpdir={_local_folder()}" if local else ""))
                   .config("spark.executor.extraJavaOptions", java_options))
        if local:
            path = os.pathsep.join(p for p in sys.path if p and Path(p).is_dir())
            # Spark's local dirs (blockmgr-*, spark-*: spilled blocks, the tasks' arguments and
            # results) default to /tmp with mode 0755, some kept until the JVM exits: an owner-only
            # folder instead. Its ports (on the loopback address, open to every user of the
            # machine) answer only this session (a secret Spark draws for it: spark.authenticate).
            builder = (builder.config("spark.driver.bindAddress", "127.0.0.1")
                       .config("spark.driver.host", "127.0.0.1")
                       .config("spark.executorEnv.PYTHONPATH", path)
                       .config("spark.local.dir", _local_folder())
                       .config("spark.authenticate", "true"))
        try:
            return builder.getOrCreate()
        except Exception as exc:  # the JVM did not start: no Java 17, or a master that is not there
            msg = (f"executor spark: Spark did not start with master {master} ({type(exc).__name__}); "
                   "it needs Java 17 or later (java on PATH or JAVA_HOME) and a reachable master")
            raise ExecutorError(msg) from None

    @property
    def workers(self) -> int:
        return max(1, int(self._session.sparkContext.defaultParallelism))

    def map(self, fn: Callable[[T], R], items: Sequence[T], *, stage: str = "") -> list[R]:
        check_task_arguments(items)
        if not items:
            return []
        sc = self._session.sparkContext
        try:
            outcomes = sc.parallelize(list(items), len(items)).map(functools.partial(_call, fn)).collect()
        except Exception as exc:  # a worker died or could not import the function: no task exception
            # Only the type: Spark's text carries the worker's Python traceback, which may quote data.
            of = f" of the {stage}" if stage else ""
            msg = (f"executor spark lost a partition task{of} ({type(exc).__name__}): its worker died, or lacks "
                   "the project or the driver's Python (docs/guide-cluster.md); nothing was published")
            raise ExecutorError(msg) from None
        results = []
        for index, (done, value) in enumerate(outcomes):
            if not done:
                raise note_partition(_exception(value), index, len(items), self.name, stage) from None
            results.append(value)
        return results

    def close(self) -> None:
        if self._owned and self._session is not None:
            self._session.stop()
        self._session = None


_LOCAL_FOLDER: list[EngineFolder] = []


def _local_folder() -> str:
    """This process's owner-only ``pfl-spark-*`` folder, removed when the process ends.

    One per process, not per session: the JVM (which lives as long as this process) keeps the
    local dirs of its first session for every later one. A killed process's folder is removed by
    the next run (:mod:`execution.engine_folder`); Spark removes its blockmgr-* when a session stops.
    """
    if not _LOCAL_FOLDER:
        _LOCAL_FOLDER.append(EngineFolder("pfl-spark-"))
        atexit.register(_LOCAL_FOLDER[0].remove)
    return _LOCAL_FOLDER[0].path


def _launched_by_spark() -> bool:
    """This driver runs under ``spark-submit`` (a JVM waiting for it) or on a Databricks cluster."""
    return bool(os.environ.get("PYSPARK_GATEWAY_PORT") or os.environ.get("DATABRICKS_RUNTIME_VERSION"))


def _exception(value: bytes | str) -> Exception:
    """The task's own exception; one that does not travel is a RuntimeError naming its type only."""
    if isinstance(value, bytes):
        try:
            exc = pickle.loads(value)
            if isinstance(exc, Exception):
                return exc
        except Exception:
            pass
        return RuntimeError("a partition task failed with an exception that could not be read back")
    return RuntimeError(f"a partition task failed with {value} (an exception that does not pickle)")
