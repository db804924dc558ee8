"""The persons behind a partitioned study's counts, united on disk (issue 14, item 4).

Each partition of a study (:mod:`cohort.partitioned`) writes the persons behind its counts, one
file per table, every part of the table tagged with its number (``__member_part``). Part ``i`` of a table
in the unpartitioned run is part ``i`` of every partition put together, in the order
:meth:`cohort.members.Members.add` gives it: by its key columns (nulls last) then ``person``, or by
the caller's order column then ``person``.

The parent never holds a united part: it sorts it in **buckets** that follow the sort order. The
part's *cells* (its distinct key tuples, or order values: a small table) are counted and ranked in
the sort's order; consecutive cells share a bucket up to :data:`BUCKET_ROWS` rows, and a cell of
n > :data:`BUCKET_ROWS` rows is cut into ceil(n / :data:`BUCKET_ROWS`) buckets, ranges of equal
width of the person numbers (one bucket per cell, as before, cost a file, a sort and a share of a
pass for each of a study's hundreds of small cells). A streaming pass writes the rows of up to
:data:`GROUP` buckets to their buckets' folders (:func:`execution.split.split`; each open file
buffers one small row group); then each of those buckets, in order, is read, sorted (cell rank,
person) and written to its own file; then the next buckets. The part is those files in order: the
rows of the unpartitioned run in its order, row for row. Memory: about one bucket (person numbers
are ranks, spread evenly over their range), whatever the size of the data. The members then are
scans of those files, written to
``persons/`` by one more streaming pass (:func:`cohort.members.write_members`).

(polars' ``merge_sorted``, a k-way merge of the partitions' sorted parts, was measured here to
buffer its inputs: its memory grew with the data.)
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import polars as pl

from cohort.members import ORDER, Members, keys_of
from execution.split import PART, scan_partition, split

__all__ = ["BUCKET_ROWS", "MEMBER_PART", "unite_members"]

BUCKET_ROWS = 1_000_000
"""Rows of a part sorted in memory at once (about 50-100 MB): the bound of the reduce's memory."""
GROUP = 128  # buckets written by one streaming pass (files open at once, each buffering SPLIT_ROWS rows)
SPLIT_ROWS = 4_096  # rows per row group of a bucket's file: what each open file buffers (GROUP x 4,096 in all)
MEMBER_PART = "__member_part"  # which member part a row of a partition's persons file belongs to
_CELL = "__cell"


def _buckets(scans: list[pl.LazyFrame], by: list[str]) -> tuple[pl.DataFrame, int]:
    """The part's cells (``by``: key columns or the order column) ranked in sort order, with the
    first bucket of each and its number of buckets; and the number of buckets in all.

    Consecutive cells share a bucket up to :data:`BUCKET_ROWS` rows; a larger cell gets
    ceil(rows / BUCKET_ROWS) buckets of its own, ranges of person numbers. So a part has about
    rows / BUCKET_ROWS buckets, not one (a file, a sort) per cell: a study's parts have hundreds
    of cells, most of them small. A loop over the cells, not the rows: a small table.
    """
    cells = (pl.concat([s.select(by) for s in scans]).group_by(by).agg(pl.len().alias("rows"))
             .collect(engine="streaming").sort(by, nulls_last=True).with_row_index(_CELL))
    first, slices = [], []
    bucket = filled = 0  # the bucket being filled with small cells, and its rows so far
    for rows in cells["rows"].to_list():
        if rows > BUCKET_ROWS:  # buckets of its own, after the small cells before it
            bucket += filled > 0
            first.append(bucket)
            slices.append(-(-rows // BUCKET_ROWS))
            bucket, filled = bucket + slices[-1], 0
            continue
        if filled + rows > BUCKET_ROWS:
            bucket, filled = bucket + 1, 0
        first.append(bucket)
        slices.append(1)
        filled += rows
    cells = cells.with_columns(pl.Series("slices", slices, pl.Int64), pl.Series("first", first, pl.Int64))
    return cells.drop("rows"), bucket + (filled > 0)


def _unite_part(scans: list[pl.LazyFrame], by: list[str], span: tuple[int, int], work: Path,
                target: Path) -> list[Path]:
    """Write part of a table (the partitions' rows ``scans``) sorted, bucket by bucket; the files in order."""
    cells, count = _buckets(scans, by)
    lo, hi = span
    offset = (pl.col("person") - lo) * pl.col("slices") // (hi - lo + 1)
    rows = (pl.concat(scans).join(cells.lazy(), on=by, how="left", nulls_equal=True)
            .with_columns((pl.col("first") + offset).cast(pl.Int64).alias(PART)).drop("first", "slices"))
    files = []
    if count == 1:  # one bucket: sorted in memory at once, no split (most parts of a study)
        files.append(target.with_name(f"{target.stem}-00000.parquet"))
        (rows.collect(engine="streaming").sort(_CELL, "person").drop(_CELL, PART, ORDER, strict=False)
         .write_parquet(files[0], compression="lz4"))
        return files
    for group in range(0, count, GROUP):  # at most GROUP files open at once, each buffering little
        split(rows.filter(pl.col(PART).is_between(group, group + GROUP - 1)), work, row_group_size=SPLIT_ROWS)
        for bucket in range(group, min(count, group + GROUP)):
            path = target.with_name(f"{target.stem}-{bucket:05d}.parquet")
            (scan_partition(work, bucket).collect().sort(_CELL, "person")
             .drop(_CELL, PART, ORDER, strict=False).write_parquet(path, compression="lz4"))
            files.append(path)
        shutil.rmtree(work)
    if not files:  # a part nobody is in: no rows, the part's columns
        path = target.with_name(f"{target.stem}-empty.parquet")
        pl.concat(scans).drop(ORDER, strict=False).clear().collect().write_parquet(path)
        files.append(path)
    return files


def unite_members(strata: tuple[str, ...], folders: list[Path], written: list[dict], *,
                  target: Path | None = None) -> Members:
    """The partitions' persons united, part by part, into files under ``target``.

    ``target``: an owner-only folder that outlives the returned members until they are written
    (the run's scratch folder); None: a temporary folder of the system, removed when the members
    are (library use and tests).
    """
    out = Members(strata)
    if target is None:
        keep = tempfile.TemporaryDirectory(prefix="pfl-members-")
        out.keep = keep  # removed with the members
        target = Path(keep.name)
    target.mkdir(mode=0o700, parents=True, exist_ok=True)
    for table, ordered in written[0]["persons"].items():
        if any(w["persons"][table] != ordered for w in written):
            msg = f"partitioned study: the partitions added different {table} parts"
            raise RuntimeError(msg)
        if not ordered:
            continue
        keys = keys_of(table, strata)
        files = [f / "persons" / f"{table}.parquet" for f in folders]
        bounds = pl.concat([pl.scan_parquet(f).select("person") for f in files]).select(
            pl.col("person").min().alias("lo"), pl.col("person").max().alias("hi")).collect(engine="streaming")
        span = (bounds["lo"].item() or 0, bounds["hi"].item() or 0)
        for i, keep_order in enumerate(ordered):
            columns = [*keys, "column", "person", *([ORDER] if keep_order else [])]
            scans = [pl.scan_parquet(f).filter(pl.col(MEMBER_PART) == i).select(columns) for f in files]
            parts = _unite_part(scans, [ORDER] if keep_order else keys, span, target / f"split-{table}-{i}",
                                target / f"{table}-{i:05d}.parquet")
            out.unite_file(table, parts)
    return out
