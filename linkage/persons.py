"""Person numbers of a linkage in bounded memory (issue 14, item 4).

A person number (``p2`` of the linked layout) is the rank of the TTP's labelled project pseudonym
among all pseudonyms of the project's token maps, in label order (``persons.parquet``). Computed
by sorting every distinct label at once, it held the register's labels in memory twice (the sort
and the join that gives each token its number): 1.6 and 2.9 GB on ``nivel``, more than 4 GB on
``national``, whatever K.

Here the labels are numbered a **bucket** at a time. A label is ``<scheme>.<key id>.<hex>`` (the
TTP's pseudonyms: ``pseudonymisation.prf``); all of a project's labels share the part before the
last dot, so their order is that of the hex digits after it, and the first ``d`` of those digits
cut the labels into 16^d ranges, in order. One streaming pass splits the token maps' rows
(token, label, link method) by range (:func:`execution.split.split`); then each range, in order,
is read alone: its distinct labels sorted and numbered from where the range before it ended, and
its tokens given their numbers. ``d`` is the least that keeps a range at about
:data:`BUCKET_ROWS` rows of the token maps (the labels are random: the ranges are even).

Labels of another shape (hand-made test layouts, several key ids) are numbered at once, as
before: the same numbers. Either way the outputs are ``persons.parquet`` (``p2, p2_label``, one
writer: the same bytes) and, per token map, ``token -> p2, link_method`` files that the linkage
reads lazily (:func:`numbered_tokens`).
"""

from __future__ import annotations

import math
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from execution.split import PART, SPLIT_BUFFER_ROWS, scan_partition, split
from linkage.partitioned import LINK_METHOD, ROW_GROUP_ROWS

__all__ = ["BUCKET_ROWS", "number_persons", "numbered_tokens", "write_persons"]

BUCKET_ROWS = 2_000_000
"""Rows of the token maps numbered at once (about 150 MB): the bound of the numbering's memory."""
MAX_DIGITS = 2
"""At most 256 ranges, the files one split writes at once (each costs its writer's buffers: 256
cost about 50 MB); above 512 M rows of token maps a range grows beyond ``BUCKET_ROWS``."""
_MAP = "__map"


def _token_map(path: Path) -> pl.LazyFrame:
    """token, p2 (the label), link_method of one token map (maps made before issue 13: all by BSN)."""
    lf = pl.scan_parquet(path)
    method = pl.col("link_method") if "link_method" in lf.collect_schema().names() else pl.lit("bsn")
    return lf.select("token", "p2", method.cast(LINK_METHOD).alias("link_method"))


def _ranges(maps: list[pl.LazyFrame], rows: int) -> tuple[int, int]:
    """Where the hex digits that cut the labels into ranges begin, and how many (the least that
    keeps a range at about ``BUCKET_ROWS`` rows, at most :data:`MAX_DIGITS`); (0, 0): number the
    labels at once (few rows, or labels of another shape).

    One streaming pass: every label must have the same head (up to its last dot: the least and
    the greatest head are one) followed by at least ``digits`` hex digits; then the labels' order
    is that of those digits, range by range."""
    if rows <= BUCKET_ROWS:
        return 0, 0
    digits = min(MAX_DIGITS, max(1, math.ceil(math.log(rows / BUCKET_ROWS, 16))))
    head = pl.col("p2").str.extract(r"^(.*\.)[^.]*$", 1)
    shaped = pl.col("p2").str.contains(rf"\.[0-9a-f]{{{digits}}}[^.]*$").fill_null(False)
    least, greatest, bad = pl.concat([m.select("p2") for m in maps]).select(
        head.min(), head.max().alias("greatest"), (~shaped | head.is_null()).sum().alias("bad"),
    ).collect(engine="streaming").row(0)
    return (len(least), digits) if bad == 0 and least is not None and least == greatest else (0, 0)


def write_persons(persons: pl.LazyFrame, path: Path) -> None:
    """The one writer of ``persons.parquet`` (``p2, p2_label``): one streaming pass, row groups of
    a fixed size, so that the bytes do not depend on how the rows reached it."""
    persons.select(pl.col("p2").cast(pl.Int64), "p2_label").sink_parquet(
        path, compression="zstd", statistics=False, row_group_size=ROW_GROUP_ROWS)


def number_persons(token_maps: dict[str, Path], persons: Path, folder: Path) -> int:
    """Number every pseudonym of ``token_maps`` (supplier -> ``token_map.parquet``) in label order:
    write ``persons`` and, under ``folder`` (owner-only scratch), each map's tokens with their
    numbers (:func:`numbered_tokens`); return the number of persons."""
    maps = [_token_map(path) for path in token_maps.values()]
    rows = sum(pq.ParquetFile(path).metadata.num_rows for path in token_maps.values())
    at, digits = _ranges(maps, rows)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if digits == 0:  # at once: the labels' sort and join in memory
        numbers = _numbers(pl.concat([m.select("p2") for m in maps]).collect(), 0)
        write_persons(numbers.lazy(), persons)
        for supplier, m in zip(token_maps, maps, strict=True):
            _numbered(m, numbers).sink_parquet(folder / f"{supplier}.parquet")
        return numbers.height
    ranges = folder / "ranges"
    bucket = pl.col("p2").str.slice(at, digits).str.to_integer(base=16).cast(pl.Int64)
    # Each of the 16^d open files buffers one row group: SPLIT_BUFFER_ROWS rows in all, whatever d
    # (polars' PartitionBy holds about a row group per file; with 4,096-row groups, 256 files held 145 MB).
    split(pl.concat([m.with_columns(pl.lit(i, pl.Int64).alias(_MAP)) for i, m in enumerate(maps)])
          .with_columns(bucket.alias(PART)), ranges, row_group_size=max(256, SPLIT_BUFFER_ROWS // 16**digits))
    numbered = folder / "numbered"
    for supplier in token_maps:
        (folder / supplier).mkdir()
    numbered.mkdir()
    start = 0  # the first number of the range
    for b in range(16**digits):  # in label order: a range's labels all sort before the next range's
        part = scan_partition(ranges, b).drop(PART).collect()
        numbers = _numbers(part, start)
        start += numbers.height
        numbers.write_parquet(numbered / f"{b:05d}.parquet")
        for i, supplier in enumerate(token_maps):
            mine = part.lazy().filter(pl.col(_MAP) == i)
            _numbered(mine, numbers).sink_parquet(folder / supplier / f"{b:05d}.parquet")
    write_persons(pl.scan_parquet(sorted(numbered.glob("*.parquet"))), persons)
    return start


def _numbers(labels: pl.DataFrame, start: int) -> pl.DataFrame:
    """``p2, p2_label``: the distinct labels of ``labels.p2`` in label order, numbered from ``start``."""
    return (labels.select(pl.col("p2").alias("p2_label")).unique().sort("p2_label")
            .with_row_index("p2", offset=start).with_columns(pl.col("p2").cast(pl.Int64)))


def _numbered(token_map: pl.LazyFrame, numbers: pl.DataFrame) -> pl.LazyFrame:
    """token -> p2 (the number of its label), link_method."""
    return (token_map.join(numbers.lazy(), left_on="p2", right_on="p2_label", how="left")
            .select("token", pl.col("p2_right").alias("p2"), "link_method"))


def numbered_tokens(folder: Path, supplier: str) -> pl.LazyFrame:
    """token -> p2, link_method of ``supplier``'s token map, as :func:`number_persons` wrote it."""
    one = folder / f"{supplier}.parquet"
    return pl.scan_parquet(one if one.is_file() else sorted((folder / supplier).glob("*.parquet")))
