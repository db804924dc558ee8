"""The persons of a partitioned study united in buckets (``cohort.unite``): consecutive small cells
share a bucket, a large cell gets buckets of its own, and the united rows are those of the
unpartitioned run, in its order, whatever the bucket size."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cohort import unite
from cohort.members import ORDER
from cohort.unite import MEMBER_PART, unite_members

PARTITIONS = 3


def _write(root: Path, cells: list[int], seed: int) -> tuple[list[Path], list[dict], pl.DataFrame]:
    """Partition folders holding one prevalence part: cell i (a year) has cells[i] persons, each
    person in partition person mod 3; returns the folders, what they wrote and the whole part sorted."""
    rng = np.random.default_rng(seed)
    whole = pl.concat([pl.DataFrame({"year": np.full(n, 2000 + i, np.int64), "condition": "asthma",
                                     "column": "numerator",
                                     "person": np.sort(rng.choice(10 * max(cells) + 10, n, replace=False))})
                       for i, n in enumerate(cells) if n])
    folders, written = _partitions(root, "prevalence", whole, ordered=False)
    return folders, written, whole.sort("year", "person")


def _partitions(root: Path, table: str, frame: pl.DataFrame, *, ordered: bool) -> tuple[list[Path], list[dict]]:
    """Each partition's persons file of ``table`` (one part: the rows of its persons, person mod 3)."""
    folders = []
    for k in range(PARTITIONS):
        folder = root / f"part-{k}"
        (folder / "persons").mkdir(parents=True)
        frame.filter(pl.col("person") % PARTITIONS == k).with_columns(pl.lit(0, pl.Int64).alias(MEMBER_PART)) \
            .write_parquet(folder / "persons" / f"{table}.parquet")
        folders.append(folder)
    return folders, [{"tables": [], "persons": {table: [ordered]}}] * PARTITIONS


@settings(max_examples=25, deadline=None)
@given(cells=st.lists(st.one_of(st.integers(0, 3), st.integers(20, 60)), min_size=1, max_size=30),
       bucket=st.integers(1, 25), seed=st.integers(0, 2**16))
def test_united_persons_are_the_whole_part_in_order(cells, bucket, seed, tmp_path_factory) -> None:
    if not any(cells):
        cells = [*cells, 1]
    root = tmp_path_factory.mktemp("unite")
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(unite, "BUCKET_ROWS", bucket)
        folders, written, whole = _write(root, cells, seed)
        members = unite_members((), folders, written, target=root / "united")
        got = members.lazy_frames()["prevalence"].collect()
    assert got.select("year", "person").equals(whole.select("year", "person"))
    files = sorted((root / "united").glob("prevalence-*.parquet"))
    # Small cells share buckets: about rows / bucket files; a large cell may add its last range and
    # close the small cells' bucket before it.
    rows = sum(cells)
    assert len(files) <= math.ceil(rows / bucket) + 2 * sum(1 for n in cells if n > bucket) + 1, (len(files), cells)


def test_many_small_cells_need_few_buckets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """400 cells of 1-3 persons in buckets of 100 rows: a handful of files, not one per cell."""
    monkeypatch.setattr(unite, "BUCKET_ROWS", 100)
    cells = [1 + i % 3 for i in range(400)]
    folders, written, whole = _write(tmp_path, cells, 7)
    members = unite_members((), folders, written, target=tmp_path / "united")
    assert members.lazy_frames()["prevalence"].collect().select("year", "person").equals(whole.select("year", "person"))
    assert len(list((tmp_path / "united").glob("prevalence-*.parquet"))) <= 9  # 800 rows / 100, and a spare


def test_an_ordered_part_keeps_its_callers_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A distinct part (the attrition chain) is united by its order column, then person."""
    monkeypatch.setattr(unite, "BUCKET_ROWS", 5)
    frame = pl.DataFrame({"year": 2020, "condition": "all", "step": "base", "column": "before",
                          "person": np.arange(60, dtype=np.int64), ORDER: np.repeat(np.arange(6, dtype=np.int64), 10)})
    folders, written = _partitions(tmp_path, "attrition", frame, ordered=True)
    got = unite_members((), folders, written, target=tmp_path / "united").lazy_frames()["attrition"].collect()
    assert got["person"].to_list() == frame.sort(ORDER, "person")["person"].to_list()
