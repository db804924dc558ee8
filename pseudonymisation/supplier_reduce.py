"""The supplier step's person-sized reduce in bounded memory: identifiers and encodings in token order.

The partitions each write their ``token -> P1`` (``identifiers/part-*.parquet``) and the claims'
fallback encodings (``encodings/part-*.parquet``) sorted by token, in small row groups. The
outputs hold every person's rows of all partitions in token order; before issue 14's item 4 the
reduce read all partitions at once and sorted them in the command's own process (about 1 GB
on ``nivel``'s 6.9 M insured, growing with the persons whatever K).

Here the token space (64-bit, drawn uniformly: :mod:`pseudonymisation.supplier_tokens`) is cut
into equal ranges of about ``MERGE_ROWS`` rows each. Each range reads the partials' rows of that
range (row groups outside it are skipped by their token statistics), sorts them stably by token
and hands them to a :class:`GroupWriter`, which writes row groups of exactly the size that one
``pyarrow.parquet.write_table`` of the whole table writes: the bytes are those of the in-memory
reduce, for every K. Tokens of different ranges differ, so the check that no token repeats
across partitions is made range by range, exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pseudonymisation.errors import PseudonymisationError
from pseudonymisation.prf import decode_binary, pseudonym_table

__all__ = ["MERGE_ROWS", "PARTIAL_ROW_GROUP", "GroupWriter", "token_ranges", "write_claims_encodings",
           "write_identifiers"]

MERGE_ROWS = 1_000_000
"""Rows (about: tokens are uniform) of one token range that the reduce puts in order at once."""
PARTIAL_ROW_GROUP = 100_000
"""Rows per row group of a partition's identifiers and encodings: a range reads only its own."""
WRITE_ROW_GROUP = 1024 * 1024
"""Rows per row group of ``identifiers.parquet`` and ``encodings.parquet``: pyarrow's default, which
the reduce before item 4 wrote with (one ``write_table`` of the whole table)."""

_LOW, _HIGH = -(2**63), 2**63 - 1


def token_ranges(rows: int) -> list[tuple[int, int]]:
    """Inclusive (low, high) ranges covering every Int64 token, about ``MERGE_ROWS`` rows each."""
    n = max(1, -(-rows // MERGE_ROWS))
    bounds = [_LOW + (i * 2**64) // n for i in range(n)] + [_HIGH + 1]
    return [(bounds[i], bounds[i + 1] - 1) for i in range(n)]


def _in_token_order(paths: list[Path]) -> Iterator[tuple[tuple[int, int], pa.Table]]:
    """Each token range's rows of all partials (partition order, then stably by token)."""
    total = sum(pq.ParquetFile(p).metadata.num_rows for p in paths)
    for low, high in token_ranges(total):
        within = [("token", ">=", low), ("token", "<=", high)]
        table = pa.concat_tables([pq.read_table(p, filters=within) for p in paths])
        yield (low, high), table.take(pc.sort_indices(table, sort_keys=[("token", "ascending")]))


class GroupWriter:
    """A Parquet writer fed in pieces that writes the row groups one ``write_table`` would."""

    def __init__(self, path: Path, schema: pa.Schema, **options: object) -> None:
        self._writer = pq.ParquetWriter(path, schema, **options)
        self._pending: list[pa.Table] = []
        self._rows = 0
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        self._pending.append(table)
        self._rows += table.num_rows
        self.rows += table.num_rows
        while self._rows >= WRITE_ROW_GROUP:
            whole = pa.concat_tables(self._pending).combine_chunks()
            self._writer.write_table(whole.slice(0, WRITE_ROW_GROUP), row_group_size=WRITE_ROW_GROUP)
            rest = whole.slice(WRITE_ROW_GROUP)
            self._pending, self._rows = [rest], rest.num_rows

    def close(self) -> None:
        if self._rows or not self.rows:  # an empty table still gets its (empty) row group
            self._writer.write_table(pa.concat_tables(self._pending).combine_chunks(), row_group_size=WRITE_ROW_GROUP)
        self._writer.close()


def write_identifiers(paths: list[Path], label_value: str, path: Path, *, record_tokens: pa.Array) -> int:
    """``identifiers.parquet`` (token, P1, label) in token order from the partitions' partials.

    ``record_tokens``: the EHR records' own tokens, which may repeat no person's token either.

    Raises:
        PseudonymisationError: a token repeats across partitions (nothing is published).
    """
    records = pl.Series(record_tokens).cast(pl.Int64)
    repeated, writer = 0, None
    for (low, high), table in _in_token_order(paths):
        frame = pl.from_arrow(table)
        tokens = frame["token"].cast(pl.Int64)
        every = pl.concat([tokens, records.filter(records.is_between(low, high))])
        repeated += every.len() - every.n_unique()
        chunk = pseudonym_table(decode_binary(frame["p1"], source="partitions' identifiers"), label_value, tokens)
        if writer is None:
            writer = GroupWriter(path, chunk.schema, compression="none", use_dictionary=["p1_label"],
                                 write_statistics=False)
        writer.write(chunk)
    writer.close()
    if repeated:
        msg = (f"internal: {repeated} record token(s) of this run repeat across its partitions (odds about 1 in "
               "100,000 at register size); nothing written: run the step again (a new run draws new tokens)")
        raise PseudonymisationError(msg)
    return writer.rows


def write_claims_encodings(paths: list[Path], path: Path) -> int:
    """The claims' ``encodings.parquet`` in token order (a stable sort: a person's rows keep their
    order, all in one partition) from the partitions' partials; returns its rows."""
    writer = None
    for _, table in _in_token_order(paths):
        if writer is None:
            writer = GroupWriter(path, table.schema, compression="none", write_statistics=False)
        writer.write(table)
    writer.close()
    return writer.rows

