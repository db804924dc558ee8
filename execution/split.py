"""Rows into K partition files in one pass, and one partition read back (issue 14).

A stage that splits a large table gives every row its partition in a column ``__part`` (its own
rule: a keyed hash of the BSN at the supplier, the token in linkage) and calls :func:`split`:
one streaming pass writes ``<folder>/__part=<i>/*.parquet``. Each partition function then reads
only its own rows with :func:`scan_partition` -- not the whole table K times. A partition without
rows has no folder; it reads as an empty frame of the table's schema (kept in
``<folder>/schema.parquet``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import polars as pl

from execution.executors import ExecutorError

__all__ = ["PART", "SPLIT_BUFFER_ROWS", "partial_file", "partial_files", "partials", "row_group_for",
           "scan_partition", "split"]

PART = "__part"
SPLIT_BUFFER_ROWS = 250_000
"""Rows that the K open files of one split buffer together, at most (:func:`row_group_for`); on
``nivel380k``'s claims (K = 5) the split peaked 0.17 GB above validation with 250,000, 0.6 GB with
a million."""


def row_group_for(partitions: int) -> int:
    """Rows per row group of a split into ``partitions`` files: each open file buffers one row
    group, so all of them together hold about ``SPLIT_BUFFER_ROWS`` rows whatever K (issue 14,
    item 4; with polars' default row group every file added its own, 0.26 M rows each)."""
    return max(4_096, SPLIT_BUFFER_ROWS // max(1, partitions))


def split(lf: pl.LazyFrame, folder: Path, *, row_group_size: int | None = None) -> None:
    """Write the rows of ``lf`` (with an integer column ``__part``) to one folder per partition.

    ``row_group_size``: rows per row group of each file. Each open file buffers up to one row
    group: with many partitions of few rows each, a small row group keeps that buffer small.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    pl.DataFrame(schema=lf.collect_schema()).write_parquet(folder / "schema.parquet")
    lf.sink_parquet(pl.PartitionBy(folder, key=PART, include_key=True), mkdir=True, compression="lz4",
                    row_group_size=row_group_size)


def scan_partition(folder: Path, index: int) -> pl.LazyFrame:
    """The rows :func:`split` wrote for partition ``index`` (all columns, ``__part`` included)."""
    folder = Path(folder)
    files = sorted((folder / f"{PART}={index}").glob("*.parquet"))
    if not files:
        return pl.scan_parquet(folder / "schema.parquet")
    return pl.scan_parquet(files, hive_partitioning=False)


def partial_file(folder: Path | str, name: str, index: int) -> Path:
    """The file partition ``index`` writes for ``name``: ``<folder>/<name>/part-<index>.parquet``
    (every partitioned stage names its partial results so; :func:`partials` reads them back)."""
    return Path(folder) / name / f"part-{index:05d}.parquet"


def partials(folder: Path | str, name: str, partitions: int) -> list[Path]:
    """Every partition's :func:`partial_file` for ``name``, when every one is there (:func:`partial_files`)."""
    return partial_files([partial_file(folder, name, i) for i in range(partitions)])


def partial_files(paths: Sequence[Path]) -> list[Path]:
    """``paths``, the file each partition was to write (partition i: ``paths[i]``), when every one is
    there. A reduce reads them by name, never by listing a folder: a file the driver cannot see
    (a worker's filesystem not shared, a directory listing cached on NFS) is refused, not left out
    of an output that would look complete.

    Raises:
        ExecutorError: a partition's file is missing (exit 12, as a lost worker).
    """
    for index, path in enumerate(paths):
        if not Path(path).is_file():
            msg = (f"partition {index + 1} of {len(paths)} wrote no result that this machine can see "
                   f"({Path(path).name} in the run's work folder): the workers must write to the filesystem "
                   "the command's output is on, at the same path (docs/guide-cluster.md); nothing was published")
            raise ExecutorError(msg)
    return [Path(p) for p in paths]
