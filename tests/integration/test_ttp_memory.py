"""The TTP's fallback reads the claims register in bounded memory (issue 14, item 4).

The fallback compares the few EHR records without a usable BSN with the claims register. Before
item 4 it held the whole register's encodings (2.9 GB for the 10.8 M rows of ``nivel``); now it
reads, by streaming passes, the rows that can pair (``pseudonymisation.ttp_register``). Measured
here as the peak resident memory (VmHWM) of a fresh process doing only the fallback, for the same
EHR records against registers of two sizes, 10x apart: the larger may not take more than a small
slack above the smaller.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest

from pseudonymisation.comparison import encodings_table
from pseudonymisation.encodings import BLOOM_FIELDS, TOKEN_FIELDS

SLACK_MB = 25
LABELLED, QUERIES = 300, 100
QUIET = {"POLARS_MAX_THREADS": "1", "POLARS_IDEAL_MORSEL_SIZE": "5000", "POLARS_ROW_GROUP_PREFETCH_SIZE": "1",
         "POLARS_MAX_CONCURRENT_SCANS": "1", "_RJEM_MALLOC_CONF": "dirty_decay_ms:0,muzzy_decay_ms:0"}
# Runs the fallback on the files in the folder given; prints its peak memory in KiB.
FALLBACK = """
import dataclasses, sys
from pathlib import Path
import polars as pl
from pseudonymisation.comparison import read_encodings
from pseudonymisation.matching import FallbackSettings
root, settings = Path(sys.argv[1]), FallbackSettings()
ehr = read_encodings(root / "ehr.parquet")
try:
    from pseudonymisation import ttp_register
    from pseudonymisation.ttp_fallback import run_fallback
    ttp_register.BATCH_ROWS = 5000
    plan, linked = ttp_register.fallback_plan(ehr, root / "ehr_ids.parquet", root / "claims_ids.parquet")
    # The model's samples: fixed counts of rows, made small for a small register.
    plan = dataclasses.replace(plan, random_pairs=2000, address_pairs=500)
    found = run_fallback(ehr, ttp_register.read_register(root / "claims.parquet", ehr, plan, linked), plan, settings)
except ImportError:  # before item 4: the whole register in memory
    from fallback_oracle import link_fallback
    found = link_fallback(ehr, read_encodings(root / "claims.parquet"), pl.read_parquet(root / "ehr_ids.parquet"),
                          pl.read_parquet(root / "claims_ids.parquet"), settings)
assert found.report["linked_by_method"], "the queries are linked"
print(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")))
"""


def _columns(rng: np.random.Generator, n: int) -> dict:
    """One row per person: distinct tokens of every field, random filters (few shared keys)."""
    columns: dict = {f: pl.Series(rng.integers(0, 2**62, n)) for f in TOKEN_FIELDS}
    for f, spec in BLOOM_FIELDS.items():
        columns[f] = rng.integers(1, 2**63, (n, spec.words), dtype=np.int64).view(np.uint64)
        columns[f"{f}_present"] = np.ones(n, dtype=bool)
    return columns


def _write_encodings(path: Path, tokens: np.ndarray, columns: dict) -> None:
    # A pass holds one row group (the supplier writes 1 M rows a group): small groups for a small test.
    pq.write_table(encodings_table(tokens.astype(np.int64), columns), path, row_group_size=5000)


def _suppliers(root: Path, persons: int) -> Path:
    """A register of ``persons``; the same EHR records (copies of its first persons) at every size."""
    root.mkdir(parents=True)
    rng = np.random.default_rng(5)
    first = _columns(rng, LABELLED + QUERIES)  # the persons the EHR records copy: the same at every size
    rest = _columns(np.random.default_rng(persons), persons - LABELLED - QUERIES)
    columns = {k: (pl.concat([first[k], rest[k]]) if isinstance(first[k], pl.Series) else np.concatenate([first[k], rest[k]]))
               for k in first}
    tokens = np.arange(1, persons + 1, dtype=np.int64) * 7919
    _write_encodings(root / "claims.parquet", tokens, columns)
    ehr = {k: (v[: LABELLED + QUERIES] if not isinstance(v, pl.Series) else v.head(LABELLED + QUERIES))
           for k, v in first.items()}
    ehr["t_insurance"] = ehr["t_insurance"].scatter(np.arange(LABELLED, LABELLED + QUERIES), None)
    ehr_tokens = -np.arange(1, LABELLED + QUERIES + 1, dtype=np.int64)
    _write_encodings(root / "ehr.parquet", ehr_tokens, ehr)
    p1 = [i.to_bytes(16, "big") for i in range(persons)]
    pl.DataFrame({"token": ehr_tokens[:LABELLED], "p1": p1[:LABELLED]}).write_parquet(root / "ehr_ids.parquet")
    pl.DataFrame({"token": tokens, "p1": p1}).write_parquet(root / "claims_ids.parquet", row_group_size=5000)
    return root


def _peak_mb(root: Path) -> float:
    done = subprocess.run([sys.executable, "-c", FALLBACK, str(root)], capture_output=True, text=True,
                          env={**os.environ, **QUIET}, check=True)
    return int(done.stdout.split()[-1]) / 1024


def test_the_fallback_does_not_hold_the_claims_register(tmp_path: Path) -> None:
    small = _peak_mb(_suppliers(tmp_path / "small", 30_000))
    large = _peak_mb(_suppliers(tmp_path / "large", 300_000))
    assert large - small < SLACK_MB, f"peak {small:.0f} MB at 30 k register rows, {large:.0f} MB at 300 k"


# Writes one supplier's token map from partials of the rows given; prints its peak memory in KiB.
TOKEN_MAP = """
import sys
from pathlib import Path
import polars as pl
from pseudonymisation import supplier_reduce
from pseudonymisation.ttp_partitioned import partial_maps, repeated_tokens, write_token_map
root, partitions = Path(sys.argv[1]), int(sys.argv[2])
supplier_reduce.MERGE_ROWS = int(sys.argv[3])
maps, rows = partial_maps(root, "claims", partitions)
assert repeated_tokens(maps, rows) == 0
links = pl.DataFrame(schema={"token": pl.Int64, "p2": pl.String, "link_method": pl.String})
assert write_token_map(maps, links, root / "token_map.parquet", rows=rows, scratch=root / "ranges") == rows
print(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")))
"""
MAP_PARTITIONS = 2


def _map_peak_mb(root: Path, rows: int, partitions: int = MAP_PARTITIONS) -> float:
    """Partials as the TTP's partitions write them (sorted by token, small row groups), then the map."""
    from pseudonymisation.ttp_partitioned import PARTIAL_ROW_GROUP

    rng = np.random.default_rng(rows)
    (root / "claims").mkdir(parents=True)
    for i in range(partitions):
        tokens = rng.integers(-2**63, 2**63 - 1, rows // partitions, dtype=np.int64, endpoint=True)
        p2 = pl.Series(np.frombuffer(rng.bytes(16 * rows // partitions), dtype="S16"), dtype=pl.Binary)
        p2 = p2.bin.encode("hex")
        pl.DataFrame({"token": tokens, "p2": "P2v1.68ac950b." + p2}).sort("token").write_parquet(
            root / "claims" / f"part-{i:05d}.parquet", row_group_size=PARTIAL_ROW_GROUP, statistics=True)
    done = subprocess.run([sys.executable, "-c", TOKEN_MAP, str(root), str(partitions), "50000"],
                          capture_output=True, text=True, env={**os.environ, **QUIET})
    assert done.returncode == 0, done.stderr[-3000:]
    written = pl.read_parquet(root / "token_map.parquet")
    assert written.height == rows and written["token"].is_sorted()
    return int(done.stdout.split()[-1]) / 1024


def test_a_token_map_is_written_in_memory_that_does_not_grow_with_its_rows(tmp_path: Path) -> None:
    """Before, the reduce read every partial and sorted the whole map at once (national's TTP step
    peaked at 4.6 GB at K = 4, whatever K; sorted at once, 3 M rows here held 296 MB more
    than 600 k); now a token range at a time: five times the rows, the same peak within the slack."""
    small = _map_peak_mb(tmp_path / "small", 600_000)  # above a row group of the map (the writer's buffer)
    large = _map_peak_mb(tmp_path / "large", 3_000_000)
    assert large - small < SLACK_MB, f"peak {small:.0f} MB for 600 k rows, {large:.0f} MB for 3 M"


def test_a_token_map_that_would_lose_a_link_is_refused(tmp_path: Path) -> None:
    """Every token lies in one range; a row that none takes (a null token) is refused, not dropped."""
    from pseudonymisation.errors import PseudonymisationError
    from pseudonymisation.ttp_partitioned import write_token_map

    bsn = pl.LazyFrame({"token": [3, None, -7], "p2": ["a", "b", "c"]}, schema={"token": pl.Int64, "p2": pl.String})
    links = pl.DataFrame({"token": [11], "p2": ["d"], "link_method": ["insurance_number"]})
    with pytest.raises(PseudonymisationError, match="holds 3 of 4 links"):
        write_token_map(bsn, links, tmp_path / "token_map.parquet", rows=3, scratch=tmp_path / "ranges")
    write_token_map(bsn.drop_nulls(), links, tmp_path / "ok.parquet", rows=2, scratch=tmp_path / "ranges-ok")
    assert pl.read_parquet(tmp_path / "ok.parquet")["token"].to_list() == [-7, 3, 11]
