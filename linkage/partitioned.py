"""Linkage in K partitions: the same linked files as one pass, person by person (issue 14).

What is global and what is partitioned:

- **Person numbers** are the rank of the TTP's labelled pseudonym among all pseudonyms of the
  project, computed once by the caller a range of labels at a time (:mod:`linkage.persons`) and
  written to ``persons.parquet``, with each token map's tokens numbered.
- **Content rows** that carry a token are split by the token: ``token mod K`` on the token read
  as an unsigned 64-bit integer. Tokens are random (the supplier's), so the split is even and
  says nothing; one person's rows share a token, hence a partition. A row without a token (a
  record the supplier could not pseudonymise) goes by its row number: ``row mod K``. Only what a
  partition needs travels: the split of a content file (:mod:`execution.split`) carries each
  row's number, token and partition (``__row, token, __part``), never the care content; the
  token map is split with its person numbers (``token, p2[, link_method]``). Each partition
  joins its rows to its part of the map and writes ``__row, p2[, link_method]`` to an
  owner-only scratch folder.
- **The reduce** writes each linked file in the content file's row order, ``MERGE_ROWS`` rows at
  a time (:func:`write_linked_in_row_order`): the content's rows of the range read straight
  from the content file, the partials' person numbers of the range (row groups pruned by their
  ``__row`` statistics) sorted by row number and put in the token's place. Memory is a chunk,
  not the table (before issue 14's item 4 the reduce sorted the whole wide table: 20.6 GB on
  the ``country`` preset). Unpartitioned linkage writes the rows in the order of the content
  file too (a left join that keeps the left order), with the same columns in the same places,
  and both write through :func:`write_rows`, so the files are byte-identical whatever K and
  executor.

Tables without tokens (the EHR's registrations, contacts, ...) are copied as in one pass. The
partition function gets paths and numbers only (:mod:`execution`): no rows, no keys (linkage
holds none).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from polars.io.plugins import register_io_source

from execution import Executor, ExecutorError
from execution.split import PART, partial_file, partials, row_group_for, scan_partition, split

__all__ = ["LINK_METHOD", "MERGE_ROWS", "ROW_GROUP_ROWS", "LinkTask", "by_token", "link_partition", "link_partitioned",
           "linked_schema", "replace_tokens", "token_partition", "write_linked_in_row_order", "write_rows"]

LINK_METHOD = pl.Enum(["bsn", "insurance_number", "probabilistic"])
"""How a record got its project pseudonym (the TTP's cascade, ``pseudonymisation/matching.py``)."""

ROW_GROUP_ROWS = 100_000
"""Rows per Parquet row group of a linked file: fixed, so that the bytes do not depend on how the
rows reached the writer (one pass or K partials)."""
_ROW = "__row"
MERGE_ROWS = 1_000_000
"""Content rows the reduce writes at once (:func:`write_linked_in_row_order`)."""
PARTIAL_ROW_GROUP = 100_000
"""Rows per row group of a partition's partial: the reduce reads the row groups of a chunk's range only."""


def write_rows(lf: pl.LazyFrame, target: Path) -> None:
    """The one writer of linked content files (same bytes for the same rows in the same order)."""
    lf.sink_parquet(target, compression="zstd", row_group_size=ROW_GROUP_ROWS)


def by_token(count: int) -> pl.Expr:
    """``token mod count``, the token read as an unsigned 64-bit integer."""
    return (pl.col("token").reinterpret(signed=False) % count).cast(pl.Int64)


def token_partition(count: int) -> pl.Expr:
    """The partition of each content row: by its token, else by its row number (``row mod count``)."""
    return pl.when(pl.col("token").is_not_null()).then(by_token(count)).otherwise((pl.col(_ROW) % count).cast(pl.Int64))


def replace_tokens(lf: pl.LazyFrame, tokens: pl.LazyFrame, *, method: bool, keep: tuple[str, ...] = ()) -> pl.LazyFrame:
    """Content rows with the person number in place of the token, in the content's row order."""
    columns = [c if c != "token" else "p2" for c in lf.collect_schema().names() if c not in keep]
    return (lf.join(tokens, on="token", how="left", maintain_order="left")
            .select(*keep, *columns, *(["link_method"] if method else [])))


@dataclass(frozen=True)
class LinkTask:
    """One partition of one content file: its split folders and numbers only."""

    rows: str  # split folder of the content's narrow rows (__row, token, __part)
    tokens: str  # split folder of the token -> person number map
    method: bool
    index: int
    partial: str


def link_partition(task: LinkTask) -> int:
    """Give the rows of one partition their person numbers; write ``__row, p2[, link_method]``; return the rows."""
    rows = scan_partition(Path(task.rows), task.index).drop(PART)
    tokens = scan_partition(Path(task.tokens), task.index).drop(PART)
    (rows.join(tokens, on="token", how="left", maintain_order="left")
     .select(_ROW, "p2", *(["link_method"] if task.method else []))
     .sink_parquet(task.partial, compression="lz4", row_group_size=PARTIAL_ROW_GROUP))
    return pl.scan_parquet(task.partial).select(pl.len()).collect().item()


def linked_schema(content: pl.Schema, numbers: pl.Schema) -> pl.Schema:
    """The columns of :func:`replace_tokens`: the content's, ``p2`` in the token's place, ``link_method`` last."""
    columns = {(c if c != "token" else "p2"): (t if c != "token" else numbers["p2"]) for c, t in content.items()}
    if "link_method" in numbers:
        columns["link_method"] = numbers["link_method"]
    return pl.Schema(columns)


def write_linked_in_row_order(content: Path, parts: list[Path], target: Path) -> None:
    """One linked file from the content file and the partitions' person numbers (``__row, p2[, link_method]``).

    ``MERGE_ROWS`` row numbers at a time: the content's rows of the range are read straight from
    the content file, the partials' rows of the range (row groups pruned by their ``__row``
    statistics) are sorted by row number and put in the token's place, and the chunk goes to the
    one writer, :func:`write_rows`, which streams it out. Memory: a chunk, not the table. The rows
    and columns are those of :func:`replace_tokens` in one pass, hence the same bytes.

    Raises:
        ExecutorError: the partials do not hold exactly one row for each content row (exit 12).
    """
    total = pl.scan_parquet(content).select(pl.len()).collect().item()
    numbers_schema = pl.scan_parquet(parts[0]).collect_schema()
    schema = linked_schema(pl.scan_parquet(content).collect_schema(), numbers_schema)
    added = [c for c in numbers_schema.names() if c != _ROW]

    def chunk(start: int) -> pl.DataFrame:
        n = min(MERGE_ROWS, total - start)
        rows = pl.scan_parquet(content).slice(start, n).collect()
        numbers = pl.scan_parquet(parts).filter(pl.col(_ROW).is_between(start, start + n - 1)).collect().sort(_ROW)
        if rows.height != n or numbers.height != n or (n and not numbers[_ROW].diff().drop_nulls().eq(1).all()):
            msg = (f"the partitions' results for {content.name} do not hold one row for each content row "
                   "(a partition lost or repeated rows); nothing was published")
            raise ExecutorError(msg)
        return (rows.with_columns(numbers["p2"].alias("token")).rename({"token": "p2"})
                .with_columns([numbers[c] for c in added if c != "p2"]))

    def chunks(with_columns: list[str] | None, predicate: pl.Expr | None, n_rows: int | None,
               batch_size: int | None) -> Iterator[pl.DataFrame]:
        for start in range(0, max(total, 1), MERGE_ROWS):  # an empty file: one empty chunk
            frame = chunk(start)
            if predicate is not None:
                frame = frame.filter(predicate)
            if with_columns is not None:
                frame = frame.select(with_columns)
            if n_rows is not None:
                frame, n_rows = frame.head(n_rows), n_rows - min(n_rows, frame.height)
            yield frame
            if n_rows == 0:
                return

    write_rows(register_io_source(chunks, schema=schema), target)


def link_partitioned(jobs: list[tuple[Path, str, bool, Path]], tokens: dict[str, pl.LazyFrame], scratch: Path, *,
                     executor: Executor, partitions: int) -> None:
    """Link each (content, its token map's name in ``tokens``, with link method, target) in
    ``partitions`` partitions; ``tokens``: token -> p2, link_method per token map
    (:func:`linkage.persons.numbered_tokens`).

    One pass per file splits the content's row numbers and tokens, and the token map (with its
    person numbers), by partition (:func:`execution.split.split`); each partition then reads its
    own rows only; the reduce writes each file a chunk of rows at a time
    (:func:`write_linked_in_row_order`).
    """
    tasks, split_maps = [], {}
    buffer = row_group_for(partitions)
    for n, (content, token_map, method, _) in enumerate(jobs):
        if token_map not in split_maps:
            split_maps[token_map] = scratch / f"tokens-{len(split_maps)}"
            split(tokens[token_map].with_columns(by_token(partitions).alias(PART)),
                  split_maps[token_map], row_group_size=buffer)
        rows = scratch / f"content-{n}"
        split(pl.scan_parquet(content).select("token").with_row_index(_ROW)
              .with_columns(token_partition(partitions).alias(PART)), rows, row_group_size=buffer)
        (scratch / f"link-{n}").mkdir()
        tasks += [LinkTask(str(rows), str(split_maps[token_map]), method, i,
                           str(partial_file(scratch, f"link-{n}", i))) for i in range(partitions)]
    executor.map(link_partition, tasks, stage="linkage step")
    for n, (content, *_, target) in enumerate(jobs):
        write_linked_in_row_order(content, partials(scratch, f"link-{n}", partitions), target)
