"""Where partitioned work runs: one function over K partitions, on the executor a command names.

Every person-level stage (supplier step, TTP step, linkage, study) splits its input into K
partitions keyed so that one person's rows stay together, runs one function per partition, and
combines the partial results exactly (issue 14). This package is the only place that knows *how*
the partitions run: in process, in a local process pool, or on an existing cluster engine (Dask,
Spark). It never schedules anything itself.

The contract for a partition function, on every executor:

- it is a module-level function of the engine (importable by name on a worker);
- its argument is small and picklable: paths, numbers, names and frozen settings; never key
  material (keys reach a worker by path or environment variable, :mod:`extracts.key_material`)
  and never rows of data, because a scheduler may log or persist its task graph;
- it writes its person-level partial results to files under a folder the caller owns and returns
  only small things: paths, counts, small aggregate tables;
- it is deterministic: the same partition gives the same result on every executor.

``map`` returns the results in the order of the items, whatever order they finished in, so that a
reduce step that concatenates them is deterministic. Every executor refuses a task argument that
holds bytes (the form of key material) or rows of data (a table, a lazy frame, an array) before
sending anything, and raises a task's exception on
the driver as itself, with a note naming the stage, the partition and the executor. ``python -m execution`` checks what the
workers of an executor see (docs/guide-cluster.md).
"""

from __future__ import annotations

from execution.executors import (
    EXECUTORS,
    Executor,
    ExecutorError,
    LocalExecutor,
    ProcessExecutor,
    check_task_arguments,
    open_executor,
)
from execution.partitions import Partition, partitions, person_partition

__all__ = ["EXECUTORS", "Executor", "ExecutorError", "LocalExecutor", "Partition", "ProcessExecutor",
           "check_task_arguments", "open_executor", "partitions", "person_partition"]
