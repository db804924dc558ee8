"""One partition of the supplier step, and the reduce of the partitions' results (issue 14).

The caller (:mod:`pseudonymisation.supplier`) validates the extract once (quarantine, duplicate
keys and shared BSNs are counted over the whole extract: exact by construction), lists the
distinct BSN values with their status and keyed partition (:mod:`pseudonymisation.supplier_tokens`)
and gives every row of a table with a BSN its row number (``__row``), status and partition
(``__part``). A partition then:

- computes the record token and the stage-1 pseudonym P1 of each of its valid BSNs, and writes
  ``token -> P1`` to the scratch folder (``identifiers/part-*.parquet``);
- writes its content rows with the token in place of the BSN (``content/<table>/part-*.parquet``,
  with their row numbers);
- encodes its records for the fallback (:mod:`pseudonymisation.supplier_encodings`).

A worker gets paths only: the tables, the BSN list, and owner-only key files in the run's scratch
folder holding the sub-keys its partition needs (stage 1, the fallback's per-field keys, the run
key: :func:`worker_keys`), never the network key they come from; it loads the keys itself.

The reduce reads the partials back: identifiers in token order, encodings in token order with the
calibration sample drawn over all partitions (both a token range at a time where they are
person-sized: :mod:`pseudonymisation.supplier_reduce`), content in row order (written by
:func:`write_content`, the one writer of content files), and checks that no token repeats across
partitions. With K = 1 the caller runs :func:`pseudonymise_partition` in process on the lazy
tables, writing content straight to the output: the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from polars.io.plugins import register_io_source

from execution.split import PART, partial_file, scan_partition
from extracts.bsn import BsnStatus
from extracts.contract import IDENTIFYING_COLUMNS
from pseudonymisation.encodings import FallbackKeys, fallback_keys
from pseudonymisation.keys import Key, load_key, write_worker_key
from pseudonymisation.prf import p1_from_bsn, parse_bsn_column, stage1_key
from pseudonymisation.supplier_encodings import claims_partition, ehr_partition, parts
from pseudonymisation.supplier_reduce import PARTIAL_ROW_GROUP
from pseudonymisation.supplier_tokens import ROLE, person_tokens, record_tokens

__all__ = ["MERGE_ROWS", "PART", "ROW", "ROW_GROUP_ROWS", "SupplierTask", "pseudonymise_partition",
           "supplier_partition", "worker_keys", "write_content", "write_content_in_row_order"]

ROW = "__row"
ROW_GROUP_ROWS = 100_000
"""Rows per Parquet row group of a content file: fixed, so that the bytes do not depend on how the
rows reached the writer (one pass or K partials)."""


def write_content(lf: pl.LazyFrame, path: Path) -> None:
    """The one writer of ``for_research`` content files (same rows in the same order: same bytes)."""
    lf.sink_parquet(path, compression="zstd", statistics=False, row_group_size=ROW_GROUP_ROWS)


MERGE_ROWS = 1_000_000
"""Row numbers the reduce of the content partials puts in order at once (:func:`write_content_in_row_order`)."""


def write_content_in_row_order(parts: list[Path], path: Path) -> None:
    """The partitions' content partials (rows with ``__row``) as one content file in row order.

    The rows are put back in order ``MERGE_ROWS`` row numbers at a time: each chunk reads the
    partials' rows of its range (their row groups are pruned by the ``__row`` statistics), sorts
    them and hands them to the one writer, :func:`write_content`, which streams them out. Memory
    is a chunk's rows, not the table's (a sort of the whole table held every row: ~6 GB for the
    97 M claim lines of ``nivel``). The row numbers of a table are 0 .. rows - 1, each in one
    partial; the bytes are those of one pass (same rows, same order, same writer).
    """
    schema = pl.scan_parquet(parts[0]).collect_schema()
    total = sum(pq.ParquetFile(p).metadata.num_rows for p in parts)

    def chunks(with_columns: list[str] | None, predicate: pl.Expr | None, n_rows: int | None,
               batch_size: int | None) -> Iterator[pl.DataFrame]:
        for start in range(0, total, MERGE_ROWS):
            rows = pl.col(ROW).is_between(start, start + MERGE_ROWS - 1)
            frame = pl.scan_parquet(parts).filter(rows).collect().sort(ROW)
            if predicate is not None:
                frame = frame.filter(predicate)
            if with_columns is not None:
                frame = frame.select(with_columns)
            if n_rows is not None:
                frame, n_rows = frame.head(n_rows), n_rows - min(n_rows, frame.height)
            yield frame
            if n_rows == 0:
                return

    write_content(register_io_source(chunks, schema=schema).drop(ROW), path)


@dataclass(frozen=True)
class SupplierTask:
    """One partition: paths and numbers only (never key material, never rows)."""

    supplier: str
    tables: tuple[tuple[str, str], ...]  # (table, its split folder: rows with __row, bsn_status, __part)
    stage1_key: str  # owner-only key files in the scratch folder: derived keys only, never K_net
    fallback_keys: tuple[tuple[str, str, str], ...]  # (kind "tokens"/"blooms", field, key file)
    run_key: str
    index: int
    scratch: str


def supplier_partition(task: SupplierTask) -> dict:
    """Run one partition from its scratch files (the executors' entry point)."""
    stage1, run_key = load_key(task.stage1_key, "stage1"), load_key(task.run_key, ROLE)
    found: dict[str, dict[str, Key]] = {"tokens": {}, "blooms": {}}
    for kind, field, path in task.fallback_keys:
        found[kind][field] = load_key(path, "fallback")
    keys = FallbackKeys(tokens=found["tokens"], blooms=found["blooms"])
    tables = {t: scan_partition(Path(p), task.index) for t, p in task.tables}
    scratch = Path(task.scratch)
    targets = {t: partial_file(scratch, f"content/{t}", task.index) for t in tables}
    return pseudonymise_partition(task.supplier, tables, stage1, keys, run_key, scratch, task.index, targets,
                                  keep_row=True)


def worker_keys(folder: Path, network_key: Key, linkage: str) -> tuple[str, tuple[tuple[str, str, str], ...]]:
    """Write the sub-keys a partition needs (stage 1, the fallback's fields) for workers; return their paths.

    Never K_net itself: a worker that can read its scratch folder learns keys for one purpose each.
    """
    keys = fallback_keys(network_key, linkage)
    fallback = tuple((kind, field, write_worker_key(folder, key, f"fallback-{kind}-{field}"))
                     for kind, by_field in (("tokens", keys.tokens), ("blooms", keys.blooms))
                     for field, key in by_field.items())
    return write_worker_key(folder, stage1_key(network_key), "stage1"), fallback


def pseudonymise_partition(supplier: str, tables: dict[str, pl.LazyFrame], stage1: Key,
                           keys: FallbackKeys, run_key: Key, scratch: Path, index: int, targets: dict[str, Path], *,
                           keep_row: bool) -> dict:
    """Tokens, P1, content and encodings of one partition's rows (see the module doc); returns counts."""
    # The partition's distinct BSN values: all rows of a valid one are in this partition.
    distinct = pl.concat([lf.select("bsn", "bsn_status") for lf in tables.values()]).unique().collect(
        engine="streaming")
    is_valid = pl.col("bsn_status") == BsnStatus.VALID.value
    distinct.filter(~is_valid).write_parquet(partial_file(scratch, "invalid", index))
    valid = distinct.filter(is_valid).select("bsn")
    value, _ = parse_bsn_column(valid["bsn"])
    tokens = person_tokens(run_key, value)
    raw = p1_from_bsn(stage1, value)
    p1 = pa.FixedSizeBinaryArray.from_buffers(pa.binary(16), len(raw), [None, pa.py_buffer(raw.tobytes())])
    # In token order, in small row groups: the reduce reads one token range at a time.
    pl.DataFrame({"token": tokens, "p1": pl.Series("p1", p1.cast(pa.binary()))}).sort("token").write_parquet(
        partial_file(scratch, "identifiers", index), row_group_size=PARTIAL_ROW_GROUP)
    mapping = pl.DataFrame({"bsn": valid["bsn"], "token": tokens}).lazy()
    counts: dict = {"persons": len(value)}
    encodings = partial_file(scratch, "encodings", index)
    for table, lf in tables.items():
        dropped = IDENTIFYING_COLUMNS.get((supplier, table), ())
        names = [c for c in lf.collect_schema().names() if c not in (ROW, PART, "bsn_status")]
        columns = [*([ROW] if keep_row else []), *("token" if c == "bsn" else c for c in names if c not in dropped),
                   "bsn_status"]
        joined = lf.join(mapping, on="bsn", how="left", maintain_order="left")
        if (supplier, table) == ("ehr", "patients"):
            frame = joined.collect()
            # A record without a usable BSN carries its own token: the TTP may link it.
            frame = frame.with_columns(person_token=pl.col("token"),
                                       token=pl.coalesce("token", record_tokens(run_key, frame[ROW].to_numpy())))
            counts |= ehr_partition(keys, run_key, parts(frame.lazy(), ROW, "token", "person_token").collect(),
                                    encodings)
            joined = frame.lazy()
        elif (supplier, table) == ("claims", "insured"):
            # One row per person and distinct set of identifiers, made while streaming: the
            # insured table holds a row per person-year (nivel: 46 M rows, ~20 GB if collected).
            insured = parts(joined.filter(pl.col("token").is_not_null()), "token").unique().collect(engine="streaming")
            counts |= claims_partition(keys, insured, encodings)
        if keep_row:
            # Small row groups: the reduce reads them back by ranges of row numbers.
            joined.select(columns).sink_parquet(targets[table], compression="lz4", row_group_size=ROW_GROUP_ROWS)
        else:
            write_content(joined.select(columns), targets[table])
    return counts
