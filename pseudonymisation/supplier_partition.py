"""One partition of the supplier step, the content pass, and the reduce (issue 14).

The caller (:mod:`pseudonymisation.supplier`) validates the extract once (quarantine, duplicate
keys and shared BSNs are counted over the whole extract: exact by construction) and gives every
row of a table with a BSN its row number (``__row``), status and keyed partition (``__part``, a
keyed hash of the BSN: :mod:`pseudonymisation.supplier_tokens`). With K > 1 it splits, per table,
only what a partition reads (:func:`partition_columns`: the BSN, its status and partition, the row
number and, in the table the fallback encodes, the identifying parts), never the care content. A
partition then:

- computes the token and the stage-1 pseudonym P1 of each of its valid BSNs, and writes
  ``token -> P1`` to the scratch folder (``identifiers/part-*.parquet``);
- lists its distinct invalid BSN values (counted by status in the report);
- encodes its records for the fallback (:mod:`pseudonymisation.supplier_encodings`).

The content files are written in one streaming pass per table, in the extract's row order
(:func:`tokenised_content`): a person's token is a keyed function of the BSN under the run key
(:func:`pseudonymisation.supplier_tokens.person_tokens`), so each row gets the token its
person's partition put in the identifiers without a join, a list of persons or a trip through
the partitions. On the country preset's claims the trip (content split to scratch, rewritten
with tokens, put back in row order) took most of the step's time and 14 GB of scratch.

A worker gets paths only: its rows, and owner-only key files in the run's scratch folder holding
the sub-keys its partition needs (stage 1, the fallback's per-field keys, the run key:
:func:`worker_keys`), never the network key they come from; it loads the keys itself.

The reduce reads the partials back: identifiers in token order, encodings in token order with the
calibration sample drawn over all partitions (both a token range at a time where they are
person-sized: :mod:`pseudonymisation.supplier_reduce`), and checks that no token repeats across
partitions. With K = 1 the caller runs :func:`pseudonymise_partition` in process on the lazy
tables: the same bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa

from execution.split import PART, partial_file, scan_partition
from extracts.bsn import BsnStatus
from extracts.contract import IDENTIFYING_COLUMNS
from pseudonymisation.encodings import FallbackKeys, fallback_keys
from pseudonymisation.keys import Key, load_key, write_worker_key
from pseudonymisation.prf import p1_from_bsn, parse_bsn_column, stage1_key
from pseudonymisation.supplier_encodings import PARTS, claims_partition, ehr_partition, parts
from pseudonymisation.supplier_reduce import PARTIAL_ROW_GROUP
from pseudonymisation.supplier_tokens import ROLE, of_valid_bsns, person_tokens, record_tokens

__all__ = ["ENCODED", "PART", "ROW", "ROW_GROUP_ROWS", "SupplierTask", "partition_columns", "pseudonymise_partition",
           "supplier_partition", "tokenised_content", "worker_keys", "write_content"]

ROW = "__row"
ROW_GROUP_ROWS = 100_000
"""Rows per Parquet row group of a content file: fixed, so that the bytes do not depend on how the
rows reached the writer (one pass or K partials)."""


def write_content(lf: pl.LazyFrame, path: Path) -> None:
    """The one writer of ``for_research`` content files (same rows in the same order: same bytes)."""
    lf.sink_parquet(path, compression="zstd", statistics=False, row_group_size=ROW_GROUP_ROWS)


@dataclass(frozen=True)
class SupplierTask:
    """One partition: paths and numbers only (never key material, never rows)."""

    supplier: str
    tables: tuple[tuple[str, str], ...]  # (table, its split folder: partition_columns of its rows)
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
    return pseudonymise_partition(task.supplier, tables, stage1, keys, run_key, Path(task.scratch), task.index)


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
                           keys: FallbackKeys, run_key: Key, scratch: Path, index: int) -> dict:
    """Tokens, P1 and encodings of one partition's persons (see the module doc); returns counts."""
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
        if (supplier, table) == ("ehr", "patients"):
            frame = lf.join(mapping, on="bsn", how="left", maintain_order="left").collect()
            # A record without a usable BSN carries its own token: the TTP may link it.
            frame = frame.with_columns(person_token=pl.col("token"),
                                       token=pl.coalesce("token", record_tokens(run_key, frame[ROW].to_numpy())))
            counts |= ehr_partition(keys, run_key, parts(frame.lazy(), ROW, "token", "person_token").collect(),
                                    encodings)
        elif (supplier, table) == ("claims", "insured"):
            # One row per person and distinct set of identifiers, made while streaming: the
            # insured table holds a row per person-year (nivel: 46 M rows, ~20 GB if collected).
            joined = lf.join(mapping, on="bsn", how="inner")
            insured = parts(joined, "token").unique().collect(engine="streaming")
            counts |= claims_partition(keys, insured, encodings)
    return counts


ENCODED = {"ehr": "patients", "claims": "insured"}
"""The table of each supplier whose identifying parts the fallback encodes."""


def partition_columns(supplier: str, table: str, schema: pl.Schema) -> list[str]:
    """What a partition reads of a BSN table: the row number, the BSN, its status and partition,
    and the identifying parts where the fallback encodes them. Never the care content: that is
    written in one pass (:func:`tokenised_content`)."""
    columns = [ROW, "bsn", "bsn_status", PART]
    if ENCODED[supplier] == table:
        columns += [c for c in PARTS if c in schema]
    return [c for c in columns if c in schema]


TOKENS = pl.Struct({"token": pl.Int64, "bsn_status": pl.String})


def _tokens(run_key: Key, records: bool) -> Callable[[pl.Series], pl.Series]:
    """A batch of (``bsn``, ``__row``) -> each row's token and BSN status. A valid BSN's token is
    the person's (a keyed function of the BSN: what its partition put in the identifiers); without
    one, an EHR record gets its own token (by row number, ``records``), a claims row none."""

    def tokenise(batch: pl.Series) -> pl.Series:
        frame = batch.struct.unnest()
        token, valid, status = of_valid_bsns(frame["bsn"], lambda value: person_tokens(run_key, value))
        if records:
            own = record_tokens(run_key, frame[ROW].to_numpy()[~valid]).to_numpy()
            token[~valid] = own
            tokens = pl.Series("token", token)
        else:
            tokens = pl.Series("token", token).set(pl.Series(~valid), None)
        return pl.DataFrame({"token": tokens, "bsn_status": status.cast(pl.String)}).to_struct("tokens")
    return tokenise


def tokenised_content(lf: pl.LazyFrame, supplier: str, table: str, run_key: Key) -> pl.LazyFrame:
    """A BSN table's ``for_research`` rows, in the extract's order, made in one streaming pass: the
    BSN replaced by its token, the identifying columns left out, the BSN status last. The same rows
    for every K: no content passes through the partitions."""
    dropped = IDENTIFYING_COLUMNS.get((supplier, table), ())
    names = [c for c in lf.collect_schema().names() if c not in dropped]
    records = (supplier, table) == ("ehr", "patients")
    inputs = pl.struct("bsn", pl.col(ROW)) if records else pl.struct("bsn")
    tokens = inputs.map_batches(_tokens(run_key, records), return_dtype=TOKENS, is_elementwise=True)
    if records:
        lf = lf.with_row_index(ROW).with_columns(pl.col(ROW).cast(pl.Int64))
    return (lf.with_columns(tokens.alias("__tokens")).unnest("__tokens")
            .select(*("token" if c == "bsn" else c for c in names), "bsn_status"))
