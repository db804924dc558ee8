"""The persons behind a partitioned study's counts, united on disk (issue 14, item 4).

Each partition of a study (:mod:`cohort.partitioned`) writes the persons behind its counts, one
file per table, every part of the table tagged with its number (``__part``). Part ``i`` of a table
in the unpartitioned run is part ``i`` of every partition put together, in the order
:meth:`cohort.members.Members.add` gives it: by its key columns (nulls last) then ``person``, or by
the caller's order column then ``person``. Every partition's part is already in that order, and a
person is in one partition only, so the united part is a **k-way merge** of the partitions' parts:
one streaming pass (polars ``merge_sorted``) that holds a few batches of each file, never the
united set, and writes the part to a file. The study's members then are scans of those files, written
to ``persons/`` by another streaming pass (:func:`cohort.members.write_members`).

``merge_sorted`` merges on one column. The sort key (keys, person) is packed into one integer:
the rank of the row's cell among the part's cells (the distinct key tuples, a small table sorted
the way :meth:`~cohort.members.Members.add` sorts) in the high bits, ``person`` in the low 40 bits.
A part whose cells or persons do not fit those bits (not seen at any size the project generates) is
sorted in memory instead: the same rows in the same order.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import polars as pl

from cohort.members import ORDER, Members, keys_of

__all__ = ["unite_members"]

_PART = "__part"  # which member part a row of a partition's persons file belongs to
_KEY = "__key"
_CELL = "__cell"
_LOW = 40  # bits of the packed key that hold the person (offset by 2**39: persons may be negative)
_OFFSET = 1 << (_LOW - 1)
_MAX_CELLS = 1 << (63 - _LOW)


def _merge(frames: list[pl.LazyFrame]) -> pl.LazyFrame:
    """A balanced tree of two-way merges on ``__key`` (depth log2 K, not K)."""
    while len(frames) > 1:
        frames = [frames[i].merge_sorted(frames[i + 1], key=_KEY) if i + 1 < len(frames) else frames[i]
                  for i in range(0, len(frames), 2)]
    return frames[0]


def _packable(scans: list[pl.LazyFrame]) -> bool:
    """Whether every person fits the packed key's low bits (one pass over one column)."""
    bounds = pl.concat([s.select("person") for s in scans]).select(
        pl.col("person").min().alias("lo"), pl.col("person").max().alias("hi")).collect(engine="streaming")
    lo, hi = bounds["lo"].item(), bounds["hi"].item()
    return lo is None or (lo >= -_OFFSET and hi < _OFFSET)


def _unite_part(scans: list[pl.LazyFrame], keys: list[str], ordered: bool, packable: bool, target: Path) -> None:
    """Write part of a table: the partitions' rows (``scans``, each in the part's order) merged."""
    if ordered:
        ranks = [s.with_columns(pl.col(ORDER).cast(pl.Int64).alias(_CELL)) for s in scans]
        bounds = pl.concat([s.select(_CELL) for s in ranks]).select(
            pl.col(_CELL).min().alias("lo"), pl.col(_CELL).max().alias("hi")).collect(engine="streaming")
        lo, hi = bounds["lo"].item(), bounds["hi"].item()
        fits = lo is None or (lo >= 0 and hi < _MAX_CELLS)
        by = [ORDER, "person"]
    else:
        cells = (pl.concat([s.select(keys) for s in scans]).unique().collect(engine="streaming")
                 .sort(keys, nulls_last=True).with_row_index(_CELL))
        ranks = [s.join(cells.lazy(), on=keys, how="left", nulls_equal=True, maintain_order="left") for s in scans]
        fits = cells.height < _MAX_CELLS
        by = [*keys, "person"]
    if fits and packable:
        keyed = [r.with_columns((pl.col(_CELL).cast(pl.Int64) * (1 << _LOW) + pl.col("person") + _OFFSET).alias(_KEY))
                 for r in ranks]
        united = _merge(keyed).drop(_KEY, _CELL)
    else:  # outside the packed key's range: the same order, sorted in memory
        united = pl.concat(scans).collect().sort(by, nulls_last=True).lazy()
    united.drop(ORDER, strict=False).sink_parquet(target, compression="lz4")


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
        packable = _packable([pl.scan_parquet(f) for f in files])
        for i, keep_order in enumerate(ordered):
            columns = [*keys, "column", "person", *([ORDER] if keep_order else [])]
            scans = [pl.scan_parquet(f).filter(pl.col(_PART) == i).select(columns) for f in files]
            path = target / f"{table}-{i:05d}.parquet"
            _unite_part(scans, keys, keep_order, packable, path)
            out.unite_file(table, path)
    return out
