"""The TTP step in K partitions: project pseudonyms computed person by person (issue 14).

The partition key is the stage-1 pseudonym P1 itself: it is already pseudorandom (AES under the
network's stage-1 key), so its first eight bytes read as an unsigned big-endian integer, mod K,
spread persons evenly and reveal nothing; no further hashing or key is needed. A person's P1 is
the same at every supplier, so one person's rows of *all* suppliers fall in one partition.

Each supplier's ``identifiers.parquet`` is split by partition in one pass (:mod:`execution.split`);
each partition (:func:`ttp_partition`) reads its rows of every supplier by path, loads the project key from an owner-only key file in the run's scratch folder (the
coordinator writes the derived project key there, never the TTP's master key, and passes only
the path), computes P2 = AES(K_proj, P1), and writes ``token -> p2`` per supplier to the scratch
folder. It returns counts: distinct P1 and P2 of the partition over all suppliers.

The reduce (:func:`write_token_map`, :func:`global_collisions`) is exact:

- distinct P1: the sum over partitions (a P1 lies in one partition);
- collisions (two P1, one P2): distinct P1 minus the distinct P2 of *all* partials together (a
  P2 collision of two P1 in two partitions is invisible to either partition, so it is counted
  over all of them);
- token uniqueness per supplier: checked by the caller over the supplier's whole identifier file
  before any partition runs (a repeated token may carry two P1 in two partitions);
- each token map: the partials of the supplier (each sorted by token) with the fallback's links,
  put in token order a token range at a time and written by one streaming pass with fixed row
  groups (:func:`write_token_map`, which K = 1 uses too): the same bytes for every K; its tokens
  checked for repeats range by range (:func:`repeated_tokens`).

The fallback (probabilistic and insurance-number linkage of EHR records without a usable BSN,
:mod:`pseudonymisation.ttp_fallback`) has no person key to partition on: it compares records
across persons. It stays one global step over the small set of records without a usable BSN,
before the partitions; its links (token -> P1 of the claims person) join the EHR token map in the
reduce.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from execution import Executor
from execution.split import PART, partial_file, partials, scan_partition, split
from pseudonymisation.errors import PseudonymisationError
from pseudonymisation.keys import Key, load_key, write_worker_key
from pseudonymisation.matching import METHODS
from pseudonymisation.prf import P2_SCHEME, decode_binary, encode_labelled, p2_from_p1
from pseudonymisation.supplier_reduce import token_ranges

__all__ = ["LINK_METHOD", "MAP_ROW_GROUP", "PARTIAL_ROW_GROUP", "TtpTask", "global_collisions", "p1_partition",
           "p2_maps", "partial_maps", "partitioned_p2", "repeated_tokens", "ttp_partition", "write_token_map"]

LINK_METHOD = pl.Enum(list(METHODS))
"""How the TTP linked a token: by BSN, or one of the fallback's methods (a column of every token map)."""
PARTIAL_ROW_GROUP = 100_000
"""Rows per row group of a partition's ``token -> p2`` (sorted by token): a token range reads only its own."""
MAP_ROW_GROUP = 512 * 512
"""Rows per row group of ``token_map.parquet``: polars' default, which wrote the maps before."""


def p1_partition(count: int) -> pl.Expr:
    """The partition of each P1: its first eight bytes, big-endian, mod ``count``."""
    first = pl.col("p1").cast(pl.Binary).bin.head(8).bin.reinterpret(dtype=pl.UInt64, endianness="big")
    return (first % count).cast(pl.Int64)


@dataclass(frozen=True)
class TtpTask:
    """One partition: paths, numbers and the key's role; never key material or rows."""

    identifiers: tuple[tuple[str, str], ...]  # (supplier, its identifiers split by partition)
    key_path: str
    key_role: str
    index: int
    scratch: str


def p2_maps(frames: dict[str, pl.DataFrame], k_proj: Key) -> tuple[dict[str, pl.DataFrame], int, int, dict[str, int]]:
    """``token -> p2`` per supplier for one partition's identifiers (``token, p1`` per supplier), or
    for the whole files when K = 1 (the same function, so K changes nothing); with the distinct P1
    and P2 over all suppliers and the distinct P1 per supplier."""
    maps, pairs, per_supplier = {}, [], {}
    for supplier, frame in frames.items():
        p2 = encode_labelled(p2_from_p1(k_proj, decode_binary(frame["p1"], source=f"{supplier} identifiers")),
                             P2_SCHEME, k_proj.id)
        maps[supplier] = pl.DataFrame({"token": frame["token"], "p2": p2})
        pairs.append(pl.DataFrame({"p1": frame["p1"], "p2": p2}))
        per_supplier[supplier] = frame["p1"].n_unique()
    unique = pl.concat(pairs).unique()
    return maps, unique["p1"].n_unique(), unique["p2"].n_unique(), per_supplier


def ttp_partition(task: TtpTask) -> tuple[int, int, dict[str, int]]:
    """P2 of one partition's P1 for every supplier, written to the scratch folder; returns the
    partition's distinct P1 and P2 over all suppliers, and its distinct P1 per supplier."""
    frames = {supplier: scan_partition(Path(path), task.index).select("token", "p1").collect()
              for supplier, path in task.identifiers}
    maps, distinct_p1, distinct_p2, per_supplier = p2_maps(frames, load_key(task.key_path, task.key_role))
    for supplier, token_p2 in maps.items():  # in token order, small row groups: a token range reads only its own
        token_p2.sort("token").write_parquet(partial_file(task.scratch, supplier, task.index),
                                             row_group_size=PARTIAL_ROW_GROUP, statistics=True)
    return distinct_p1, distinct_p2, per_supplier


def partitioned_p2(identifiers: dict[str, Path], k_proj: Key, scratch: Path, *, executor: Executor,
                   partitions: int) -> tuple[int, dict[str, int]]:
    """Run the partitions into ``scratch``; returns the distinct P1 over all suppliers and per
    supplier (exact sums: a P1 lies in one partition)."""
    items = []
    for supplier, path in identifiers.items():
        (scratch / supplier).mkdir()
        # One pass per supplier: each partition then reads its own rows only.
        split(pl.scan_parquet(path).select("token", "p1", p1_partition(partitions).alias(PART)),
              scratch / f"{supplier}-identifiers")
        items.append((supplier, str(scratch / f"{supplier}-identifiers")))
    key_path = write_worker_key(scratch, k_proj, "project")
    tasks = [TtpTask(tuple(items), key_path, k_proj.role, i, str(scratch)) for i in range(partitions)]
    results = executor.map(ttp_partition, tasks, stage="TTP step")
    per_supplier = {s: sum(r[2][s] for r in results) for s in identifiers}
    return sum(r[0] for r in results), per_supplier


def global_collisions(scratch: Path, suppliers: list[str], distinct_p1: int, partitions: int) -> int:
    """Distinct P1 minus distinct P2 over every partial of every supplier (see the module doc).

    The P2 are split by a hash of their own into ``partitions`` parts by one streaming pass, and
    counted part by part (a P2 lies in one part): memory follows a part, not the persons.
    """
    files = [p for s in suppliers for p in partials(scratch, s, partitions)]
    by_p2 = scratch / "p2-by-hash"
    split(pl.scan_parquet(files).select("p2", (pl.col("p2").hash() % partitions).cast(pl.Int64).alias(PART)),
          by_p2)
    distinct_p2 = sum(scan_partition(by_p2, i).select(pl.col("p2").n_unique()).collect().item()
                      for i in range(partitions))
    return distinct_p1 - distinct_p2


def partial_maps(scratch: Path, supplier: str, partitions: int) -> tuple[pl.LazyFrame, int]:
    """``token -> p2`` of one supplier's BSN-linked persons over all its partials, and their rows."""
    paths = partials(scratch, supplier, partitions)
    return pl.scan_parquet(paths), sum(pq.ParquetFile(p).metadata.num_rows for p in paths)


def repeated_tokens(maps: pl.LazyFrame, rows: int) -> int:
    """How many rows of ``maps`` repeat a token of another row, counted a token range at a time
    (two ranges share no token: exact)."""
    repeated = 0
    for low, high in token_ranges(rows):
        tokens = maps.select("token").filter(pl.col("token").is_between(low, high)).collect()["token"]
        repeated += tokens.len() - tokens.n_unique()
    return repeated


def write_token_map(bsn: pl.LazyFrame, links: pl.DataFrame, path: Path, *, rows: int, scratch: Path) -> int:
    """One supplier's token map (``token, p2, link_method``) in token order; returns its rows.

    ``bsn``: the BSN links (``token, p2``); ``links``: the fallback's (``token, p2, link_method``).
    A token range of about ``MERGE_ROWS`` rows is sorted at a time into ``scratch``, and one
    streaming pass with fixed row groups writes them all: the bytes do not depend on the ranges,
    hence not on K (K = 1, its map in memory, writes through the same pass). Before, the whole map
    was sorted at once (``national``: the TTP step's 4.6 GB at K = 4, whatever K).
    """
    scratch.mkdir(mode=0o700, parents=True, exist_ok=True)
    files = []
    for i, (low, high) in enumerate(token_ranges(rows + links.height)):
        within = pl.col("token").is_between(low, high)
        piece = pl.concat([bsn.filter(within).select("token", "p2", link_method=pl.lit("bsn")).collect(),
                           links.filter(within).select("token", "p2", "link_method")])
        files.append(scratch / f"{i:05d}.parquet")
        piece.with_columns(pl.col("link_method").cast(LINK_METHOD)).sort("token").write_parquet(files[-1])
    pl.scan_parquet(files).sink_parquet(path, compression="zstd", statistics=False, row_group_size=MAP_ROW_GROUP)
    written = pq.ParquetFile(path).metadata.num_rows
    if written != rows + links.height:  # every token lies in one range: none may be lost (fail closed)
        msg = f"internal: the token map holds {written:,} of {rows + links.height:,} links; nothing was published"
        raise PseudonymisationError(msg)
    return written
