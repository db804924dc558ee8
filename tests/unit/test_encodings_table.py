"""The encodings table holds the Bloom filters' own memory, not a copy (issue 14, item 4).

At K = 1 the claims supplier step encodes every insured person's identifier sets at once (nivel:
about 7 M rows, 272 bytes of filters each); copying the filters into the Arrow table held them
twice. The table's filter columns now point at the arrays the encoder made, and read back equal.
"""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from pseudonymisation.comparison import encodings_table, read_encodings
from pseudonymisation.encodings import BLOOM_FIELDS, TOKEN_FIELDS


def _encoded(n: int) -> dict[str, object]:
    rng = np.random.default_rng(n)
    out: dict[str, object] = {f: pl.Series(f, rng.integers(0, 2**40, n), pl.Int64) for f in TOKEN_FIELDS}
    for field, spec in BLOOM_FIELDS.items():
        out[field] = rng.integers(0, 2**63, (n, spec.words), dtype=np.uint64)
        out[f"{field}_present"] = np.ones(n, dtype=bool)
    return out


def test_the_filter_columns_are_the_encoders_arrays_not_copies() -> None:
    encoded = _encoded(1000)
    table = encodings_table(np.arange(1000, dtype=np.int64), encoded)
    for field in BLOOM_FIELDS:
        data = table.column(field).chunk(0).buffers()[1]
        assert data.address == encoded[field].ctypes.data, field  # the same memory
        assert data.size == encoded[field].nbytes


def test_the_table_outlives_the_arrays_it_was_made_from_and_reads_back_equal(tmp_path: Path) -> None:
    encoded = _encoded(300)
    expected = {field: encoded[field].copy() for field in BLOOM_FIELDS}
    table = encodings_table(np.arange(300, dtype=np.int64), encoded)
    del encoded
    gc.collect()  # the table keeps the arrays alive: its buffers still hold the filters
    pq.write_table(table, tmp_path / "encodings.parquet")
    back = read_encodings(tmp_path / "encodings.parquet")
    for field, words in expected.items():
        assert np.array_equal(back.blooms[field], words), field
