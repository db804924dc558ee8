"""execution.split: rows into partition files in one pass; an empty partition reads as no rows."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal

from execution.split import PART, scan_partition, split


def test_split_puts_each_row_in_its_partition_and_an_empty_partition_reads_empty(tmp_path: Path) -> None:
    rows = pl.DataFrame({"v": list(range(12)), "d": [None, 1.5] * 6}).with_columns(
        (pl.col("v") % 3).cast(pl.Int64).alias(PART))  # partitions 0..2 of K = 4: partition 3 is empty
    split(rows.lazy(), tmp_path / "t")
    for i in range(4):
        got = scan_partition(tmp_path / "t", i).collect().sort("v")
        assert_frame_equal(got, rows.filter(pl.col(PART) == i))
    assert scan_partition(tmp_path / "t", 3).collect().schema == rows.schema
