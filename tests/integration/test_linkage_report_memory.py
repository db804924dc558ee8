"""The linkage report in passes holds the persons of a pass, not of the register (issue 14, item 4).

On ``country`` (21.2 M EHR records, 17.8 M insured persons) the report alone peaked at 12.1 GB:
it collected a frame of every EHR record and hashed every insured person at once. It now counts
one hash range of pseudonyms at a time (``passes``, the linkage's partitions) and adds up the
counts. Measured here: the same layout, eight passes against one, peak resident memory of a fresh
process (VmHWM), above that of the same process on a layout of a few rows (the interpreter,
polars, the report's code).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl

PERSONS = 300_000
YEARS = 5
# Polars' streaming buffers made small (as in test_partitioned_linkage_memory.py): what grows is the report's own.
QUIET = {"POLARS_MAX_THREADS": "1", "POLARS_IDEAL_MORSEL_SIZE": "5000", "POLARS_ROW_GROUP_PREFETCH_SIZE": "1",
         "POLARS_MAX_CONCURRENT_SCANS": "1", "_RJEM_MALLOC_CONF": "dirty_decay_ms:0,muzzy_decay_ms:0"}
REPORT = """
import json, sys
from pathlib import Path
from linkage.report import linkage_report
report = linkage_report(Path(sys.argv[1]), passes=int(sys.argv[2]))
print(json.dumps(report, sort_keys=True, default=str))
print(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")))
"""


def _layout(root: Path, persons: int) -> Path:
    """EHR records (a few without a pseudonym), their registrations, and insured rows of twice the persons."""
    rng = np.random.default_rng(persons)
    p2 = pl.Series([f"P2v1.00000000.{i:032x}" for i in rng.permutation(2 * persons)])
    births = pl.Series(rng.integers(-10_000, 18_000, 2 * persons)).cast(pl.Date)
    sexes = pl.Series(rng.choice(["F", "M"], 2 * persons))
    missing = rng.random(persons) < 0.02
    patients = pl.DataFrame({
        "patient_id": pl.Series(np.arange(persons)).cast(pl.String).str.zfill(9),
        "p2": p2[:persons].scatter(np.flatnonzero(missing), None),
        "bsn_status": pl.Series(np.where(missing, "missing", "valid")),
        "birth_date": births[:persons], "sex": sexes[:persons],
        "link_method": pl.Series(np.where(missing, None, "bsn")),
    })
    registrations = pl.DataFrame({
        "patient_id": patients["patient_id"],
        "practice_id": pl.Series(rng.integers(0, 400, persons)).cast(pl.String).str.zfill(4),
        "start_date": pl.Series(rng.integers(0, 19_000, persons)).cast(pl.Date),
    })
    person = np.repeat(np.arange(2 * persons), YEARS)
    insured = pl.DataFrame({
        "p2": p2[person], "year": pl.Series(np.tile(np.arange(2019, 2019 + YEARS), 2 * persons)),
        "insurer": pl.Series(rng.choice(["0101", "0202", "0303"], person.size)),
        "birth_date": births[person], "sex": sexes[person],
    })
    for folder, name, frame in (("ehr", "patients", patients), ("ehr", "registrations", registrations),
                                ("claims", "insured", insured)):
        (root / folder).mkdir(parents=True, exist_ok=True)
        frame.write_parquet(root / folder / f"{name}.parquet", row_group_size=20_000)
    return root


def _run(layout: Path, passes: int) -> tuple[str, float]:
    done = subprocess.run([sys.executable, "-c", REPORT, str(layout), str(passes)], capture_output=True, text=True,
                          env={**os.environ, **QUIET})
    assert done.returncode == 0, done.stderr[-3000:]
    report, peak = done.stdout.strip().splitlines()
    return report, int(peak) / 1024


def test_the_report_in_passes_holds_a_pass_of_persons(tmp_path: Path) -> None:
    layout = _layout(tmp_path / "large", PERSONS)
    _, base = _run(_layout(tmp_path / "small", 50), 1)
    whole, at_once = _run(layout, 1)
    by_pass, in_passes = _run(layout, 8)
    assert by_pass == whole, "the same report in passes"
    assert '"patient_records": %d' % PERSONS in whole
    held, held_in_passes = at_once - base, in_passes - base
    assert held > 100, f"the layout is too small to measure: {held:.0f} MB above the interpreter"
    assert held_in_passes < held / 3, f"{held:.0f} MB at once, {held_in_passes:.0f} MB in eight passes"
