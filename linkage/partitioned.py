"""Linkage in K partitions: the same linked files as one pass, person by person (issue 14).

What is global and what is partitioned:

- **Person numbers** are the rank of the TTP's labelled pseudonym among all pseudonyms of the
  project (:func:`linkage.link._person_numbers`): one small table, computed once by the caller
  and written to ``persons.parquet``; every partition reads it by path (broadcast).
- **Content rows** that carry a token are split by the token: ``token mod K`` on the token read
  as an unsigned 64-bit integer. Tokens are random (the supplier's), so the split is even and
  says nothing; one person's rows share a token, hence a partition. A row without a token (a
  record the supplier could not pseudonymise) goes by its row number: ``row mod K``. The content
  and the token map are split in one pass each (:mod:`execution.split`); each partition joins its
  rows to its part of the token map and writes them, with their row number, to an owner-only
  scratch folder.
- **The reduce** reads the partials of a table back in row order (a sort on the row number) and
  writes the one file. Unpartitioned linkage writes the rows in the order of the content file
  too (a left join that keeps the left order), and both write through :func:`write_rows`, so
  the files are byte-identical whatever K and executor.

Tables without tokens (the EHR's registrations, contacts, ...) are copied as in one pass. The
partition function gets paths and numbers only (:mod:`execution`): no rows, no keys (linkage
holds none).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from execution import Executor
from execution.split import PART, partial_file, partials, scan_partition, split

__all__ = ["LINK_METHOD", "ROW_GROUP_ROWS", "LinkTask", "by_token", "link_partition", "link_partitioned", "replace_tokens",
           "token_partition", "tokens_frame", "write_rows"]

LINK_METHOD = pl.Enum(["bsn", "insurance_number", "probabilistic"])
"""How a record got its project pseudonym (the TTP's cascade, ``pseudonymisation/matching.py``)."""

ROW_GROUP_ROWS = 100_000
"""Rows per Parquet row group of a linked file: fixed, so that the bytes do not depend on how the
rows reached the writer (one pass or K partials)."""
_ROW = "__row"


def write_rows(lf: pl.LazyFrame, target: Path) -> None:
    """The one writer of linked content files (same bytes for the same rows in the same order)."""
    lf.sink_parquet(target, compression="zstd", row_group_size=ROW_GROUP_ROWS)


def by_token(count: int) -> pl.Expr:
    """``token mod count``, the token read as an unsigned 64-bit integer."""
    return (pl.col("token").reinterpret(signed=False) % count).cast(pl.Int64)


def token_partition(count: int) -> pl.Expr:
    """The partition of each content row: by its token, else by its row number (``row mod count``)."""
    return pl.when(pl.col("token").is_not_null()).then(by_token(count)).otherwise((pl.col(_ROW) % count).cast(pl.Int64))


def tokens_frame(token_map: Path, persons: Path) -> pl.LazyFrame:
    """token -> person number and link method of one supplier's token map (lazy)."""
    lf = pl.scan_parquet(token_map)
    # Token maps made before issue 13 have no link_method: every link there is by BSN.
    method = (pl.col("link_method") if "link_method" in lf.collect_schema().names() else pl.lit("bsn"))
    numbers = pl.scan_parquet(persons)
    return (lf.join(numbers, left_on="p2", right_on="p2_label", how="left")
            .select("token", pl.col("p2_right").alias("p2"), method.cast(LINK_METHOD).alias("link_method")))


def replace_tokens(lf: pl.LazyFrame, tokens: pl.LazyFrame, *, method: bool, keep: tuple[str, ...] = ()) -> pl.LazyFrame:
    """Content rows with the person number in place of the token, in the content's row order."""
    columns = [c if c != "token" else "p2" for c in lf.collect_schema().names() if c not in keep]
    return (lf.join(tokens, on="token", how="left", maintain_order="left")
            .select(*keep, *columns, *(["link_method"] if method else [])))


@dataclass(frozen=True)
class LinkTask:
    """One partition of one content file: its split folders and numbers only."""

    content: str  # split folder of the content rows (with __row and __part)
    tokens: str  # split folder of the token -> person number map
    method: bool
    index: int
    partial: str


def link_partition(task: LinkTask) -> int:
    """Link the content rows of one partition; write them with their row numbers; return the rows."""
    content = scan_partition(Path(task.content), task.index).drop(PART)
    tokens = scan_partition(Path(task.tokens), task.index).drop(PART)
    replace_tokens(content, tokens, method=task.method, keep=(_ROW,)).sink_parquet(task.partial, compression="lz4")
    return pl.scan_parquet(task.partial).select(pl.len()).collect().item()


def link_partitioned(jobs: list[tuple[Path, Path, bool, Path]], persons: Path, scratch: Path, *,
                     executor: Executor, partitions: int) -> None:
    """Link each (content, token map, with link method, target) in ``partitions`` partitions.

    One pass per file splits the content rows and the token map (with its person numbers) by
    partition (:func:`execution.split.split`); each partition then reads its own rows only.
    """
    tasks, split_maps = [], {}
    for n, (content, token_map, method, _) in enumerate(jobs):
        if token_map not in split_maps:
            split_maps[token_map] = scratch / f"tokens-{len(split_maps)}"
            split(tokens_frame(token_map, persons).with_columns(by_token(partitions).alias(PART)),
                  split_maps[token_map])
        rows = scratch / f"content-{n}"
        split(pl.scan_parquet(content).with_row_index(_ROW).with_columns(token_partition(partitions).alias(PART)), rows)
        (scratch / f"link-{n}").mkdir()
        tasks += [LinkTask(str(rows), str(split_maps[token_map]), method, i,
                           str(partial_file(scratch, f"link-{n}", i))) for i in range(partitions)]
    executor.map(link_partition, tasks, stage="linkage step")
    for n, (*_, target) in enumerate(jobs):
        write_rows(pl.scan_parquet(partials(scratch, f"link-{n}", partitions)).sort(_ROW).drop(_ROW), target)
