"""The supplier step's passes over the whole input hold a bounded amount of memory (issue 14, item 4).

Measured as the peak resident memory (VmHWM) of a fresh process running the whole claims step,
at two sizes 10x apart in 10x the partitions: the larger may not take more than a small slack
above the smaller. (The content is written in one streaming pass in row order: there is no
reduce of content partials any more, pseudonymisation/supplier_partition.py.)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl

SLACK_MB = 40
# Polars' streaming buffers made small, as in test_partitioned_memory.py: what grows is the step's own.
QUIET = {"POLARS_MAX_THREADS": "1", "POLARS_IDEAL_MORSEL_SIZE": "5000", "POLARS_ROW_GROUP_PREFETCH_SIZE": "1",
         "POLARS_MAX_CONCURRENT_SCANS": "1", "_RJEM_MALLOC_CONF": "dirty_decay_ms:0,muzzy_decay_ms:0"}


# --- The whole supplier step at a fixed partition size (issue 14, item 4: no pass over the whole
# input may grow with it). Run in a fresh process; prints its peak memory in KiB.
STEP = """
import sys
from pathlib import Path
from execution import split
from pseudonymisation import supplier_reduce as sr
from pseudonymisation.keys import Key
from pseudonymisation.supplier import run_supplier_step
sr.MERGE_ROWS = sr.WRITE_ROW_GROUP = split.SPLIT_BUFFER_ROWS = int(sys.argv[4])
run_supplier_step(Path(sys.argv[1]), "claims", Key("network", bytes(range(32))), Path(sys.argv[2]),
                  partitions=int(sys.argv[3]))
print(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")))
"""
PERSONS_PER_PARTITION = 15_000
CHUNK_ROWS = 10_000  # the step's chunks (content, identifiers, encodings, split buffers): small for a small test
CLAIMS_PER_PERSON = 8


def _claims_extract(root: Path, persons: int) -> Path:
    """A valid claims extract of ``persons`` insured persons (two years each) and their claim lines."""
    from extracts.bsn import valid_bsns_from_prefixes

    rng = np.random.default_rng(persons)
    prefixes = rng.choice(np.arange(10_000_000, 99_999_999), size=2 * persons, replace=False)
    bsns, ok = valid_bsns_from_prefixes(prefixes)
    bsn = pl.Series(bsns[ok][:persons]).cast(pl.String).str.zfill(9)
    assert len(bsn) == persons
    birth = pl.Series(rng.integers(-20_000, 15_000, persons)).cast(pl.Date)
    sex = pl.Series(rng.choice(["F", "M"], persons))
    insured = pl.concat([pl.DataFrame({"bsn": bsn, "year": pl.Series([year] * persons, dtype=pl.Int32),
                                       "insurer": "3311", "birth_date": birth, "sex": sex,
                                       "death_date": pl.Series([None] * persons, dtype=pl.Date),
                                       "wlz_institution": False}) for year in (2020, 2021)])
    lines = persons * CLAIMS_PER_PERSON
    claims = pl.DataFrame({
        "claim_id": pl.Series(np.arange(lines)).cast(pl.String).str.zfill(10),
        "bsn": bsn.gather(rng.integers(0, persons, lines)), "insurer": "3311",
        "service_date": pl.Series(rng.integers(18_262, 18_992, lines)).cast(pl.Date),
        "sector": "MSZ", "care_type": "poli", "specialism": "0313", "diagnosis_code": "401",
        "cost_eur": pl.Series(rng.integers(1, 100_000, lines)).cast(pl.Decimal(12, 2)) / 100,
    })
    years = pl.DataFrame({"insurer": ["3311", "3311"], "year": pl.Series([2020, 2021], dtype=pl.Int32),
                          "complete": [True, True]})
    root.mkdir(parents=True)
    for name, frame in (("insured", insured), ("claims", claims), ("insurer_years", years)):
        frame.write_parquet(root / f"{name}.parquet")
    return root


def _step_peak_mb(root: Path, partitions: int) -> float:
    extract = _claims_extract(root / "extract", PERSONS_PER_PARTITION * partitions)
    done = subprocess.run([sys.executable, "-c", STEP, str(extract), str(root / "out"), str(partitions),
                           str(CHUNK_ROWS)], capture_output=True, text=True, env={**os.environ, **QUIET})
    assert done.returncode == 0, done.stderr[-3000:]
    persons = pl.scan_parquet(root / "out" / "for_ttp" / "identifiers.parquet").select(pl.len()).collect().item()
    assert persons == PERSONS_PER_PARTITION * partitions
    return int(done.stdout.split()[-1]) / 1024


def test_the_supplier_steps_passes_over_the_whole_input_do_not_grow_with_it(tmp_path: Path) -> None:
    """Ten times the persons in ten times the partitions: the same peak, within the slack.

    Before item 4's second part, validation sorted 16 bytes a claim line, the distinct BSNs were
    listed for the whole extract and the identifiers and encodings were reduced in memory.
    """
    small = _step_peak_mb(tmp_path / "small", 2)
    large = _step_peak_mb(tmp_path / "large", 20)
    assert large - small < SLACK_MB, f"peak {small:.0f} MB at 2 partitions, {large:.0f} MB at 20 of the same size"
