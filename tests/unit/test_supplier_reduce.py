"""The supplier step's reduce a token range at a time writes the bytes of one in-memory write (issue 14, item 4)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pseudonymisation import supplier_reduce
from pseudonymisation.errors import PseudonymisationError
from pseudonymisation.prf import pseudonym_table
from pseudonymisation.supplier_reduce import GroupWriter, token_ranges, write_claims_encodings, write_identifiers


def test_token_ranges_cover_every_token_once_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(supplier_reduce, "MERGE_ROWS", 1000)
    for rows in (0, 1, 999, 1000, 1001, 7_777):
        ranges = token_ranges(rows)
        assert len(ranges) == max(1, -(-rows // 1000))
        assert ranges[0][0] == -(2**63) and ranges[-1][1] == 2**63 - 1
        assert all(high + 1 == low for (_, high), (low, _) in zip(ranges, ranges[1:], strict=False))


def test_group_writer_fed_in_pieces_writes_the_bytes_of_one_write_table(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(supplier_reduce, "WRITE_ROW_GROUP", 1000)
    rng = np.random.default_rng(4)
    table = pseudonym_table(rng.integers(0, 256, (3_500, 16), dtype=np.uint8), "P1v1.k",
                            pl.Series("token", rng.integers(-(2**62), 2**62, 3_500)))
    options = {"compression": "none", "use_dictionary": ["p1_label"], "write_statistics": False}
    pq.write_table(table, tmp_path / "whole.parquet", row_group_size=1000, **options)
    writer = GroupWriter(tmp_path / "pieces.parquet", table.schema, **options)
    for start, stop in ((0, 10), (10, 10), (10, 1_700), (1_700, 2_000), (2_000, 3_500)):
        writer.write(table.slice(start, stop - start))
    writer.close()
    assert writer.rows == 3_500
    assert (tmp_path / "pieces.parquet").read_bytes() == (tmp_path / "whole.parquet").read_bytes()


def _identifier_partials(root: Path, tokens: list[list[int]]) -> list[Path]:
    paths = []
    for i, part in enumerate(tokens):
        paths.append(root / f"part-{i:05d}.parquet")
        pl.DataFrame({"token": sorted(part), "p1": [bytes([i]) * 16] * len(part)},
                     schema={"token": pl.Int64, "p1": pl.Binary}).write_parquet(paths[-1])
    return paths


def test_identifiers_in_token_order_over_ranges(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(supplier_reduce, "MERGE_ROWS", 2)
    tokens = [[5, -(2**63), 2**63 - 1], [0, -7], [], [3 * 2**60]]
    written = write_identifiers(_identifier_partials(tmp_path, tokens), "P1v1.k", tmp_path / "ids.parquet",
                                record_tokens=pa.array([1, 2], pa.int64()))
    back = pl.read_parquet(tmp_path / "ids.parquet")
    assert written == back.height == 6
    assert back["token"].to_list() == sorted(t for part in tokens for t in part)
    assert back["p1_label"].unique().to_list() == ["P1v1.k"]


@pytest.mark.parametrize("records", [[], [3 * 2**60]])
def test_identifiers_refuse_a_token_repeated_across_partitions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               records: list[int]) -> None:
    monkeypatch.setattr(supplier_reduce, "MERGE_ROWS", 2)
    tokens = [[5, 9], [0, -7], [3 * 2**60, *([] if records else [9])]]
    with pytest.raises(PseudonymisationError, match=r"1 record token\(s\) of this run repeat") as caught:
        write_identifiers(_identifier_partials(tmp_path, tokens), "P1v1.k", tmp_path / "ids.parquet",
                          record_tokens=pa.array(records, pa.int64()))
    assert "9" not in str(caught.value).replace("1 record", "")  # never a token


def test_claims_encodings_keep_a_persons_rows_in_their_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(supplier_reduce, "MERGE_ROWS", 2)
    parts = [pa.table({"token": [-5, 4, 4, 4], "t_birth": [1, 3, 2, 1]}), pa.table({"token": [2, 9], "t_birth": [7, 8]})]
    paths = []
    for i, part in enumerate(parts):
        paths.append(tmp_path / f"part-{i}.parquet")
        pq.write_table(part, paths[-1], row_group_size=1)
    assert write_claims_encodings(paths, tmp_path / "enc.parquet") == 6
    back = pl.read_parquet(tmp_path / "enc.parquet")
    assert back.rows() == [(-5, 1), (2, 7), (4, 3), (4, 2), (4, 1), (9, 8)]
