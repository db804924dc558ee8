"""A partitioned study's reduce holds a bounded amount of memory, whatever the data's size (issue 14, item 4).

The parent of a partitioned study unites the persons behind the counts of K partitions and
writes them to the study folder (``cohort.unite``, ``cohort.members.write_members``). Measured
here as the peak resident memory (``ru_maxrss``) of a fresh process doing only that, on the
persons files of 4 partitions at two sizes, 10x apart: the larger may not take more than a small
slack above the smaller. Holding the united sets in memory (the reduce before item 4) grows by
hundreds of megabytes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl

PARTITIONS = 4
SLACK_MB = 60
BUCKET_ROWS = 100_000  # rows the reduce sorts at once (cohort.unite.BUCKET_ROWS): small, for a small test
# Polars' streaming engine buffers ahead (morsels, prefetched row groups, freed pages its allocator
# keeps for a while) up to ceilings that these small sizes have not reached; made small here, what
# grows with the data is what the reduce itself holds.
QUIET = {"POLARS_MAX_THREADS": "1", "POLARS_IDEAL_MORSEL_SIZE": "5000", "POLARS_ROW_GROUP_PREFETCH_SIZE": "1",
         "POLARS_MAX_CONCURRENT_SCANS": "1", "_RJEM_MALLOC_CONF": "dirty_decay_ms:0,muzzy_decay_ms:0"}
# Unites and writes the members of the partitions' folders; prints its peak resident memory in KiB.
UNITE = """
import json, sys
from pathlib import Path
from cohort.members import write_members
from cohort.partitioned import unite_members
try:
    from cohort import unite
    unite.BUCKET_ROWS = int(sys.argv[4])
except ImportError:  # the reduce before item 4 (held the united persons in memory)
    pass
folders = [Path(f) for f in json.loads(sys.argv[1])]
written = json.loads(sys.argv[2])
members = unite_members((), folders, written)
write_members(members, Path(sys.argv[3]))
# VmHWM: the peak of this program's own memory (ru_maxrss would also count the test process that
# forked it, whatever that held at the time: Linux carries it over the exec).
print(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")))
"""


def _partitions(root: Path, persons: int) -> tuple[list[Path], list[dict]]:
    """Persons files of ``PARTITIONS`` partitions: prevalence numerator and denominator parts of
    ``persons`` persons over 3 years and 4 conditions, each part sorted as the study sorts it."""
    rng = np.random.default_rng(persons)
    folders = []
    for k in range(PARTITIONS):
        mine = np.arange(k, persons, PARTITIONS, dtype=np.int64)
        parts = []
        for i, column in enumerate(("numerator", "denominator")):
            picked = mine[rng.random(mine.size) < (0.3 if column == "numerator" else 0.9)]
            frame = pl.DataFrame({"year": np.repeat(np.arange(2019, 2022), picked.size),
                                  "condition": pl.Series(rng.choice(["asthma", "copd", "diabetes", ""], 3 * picked.size)).replace("", None),
                                  "person": np.tile(picked, 3)})
            parts.append(frame.select(pl.col("year").cast(pl.Int64), "condition", pl.lit(column).alias("column"),
                                      "person", pl.lit(i, pl.Int64).alias("__member_part"))
                         .sort("year", "condition", "person", nulls_last=True))
        folder = root / f"part-{k}"
        (folder / "persons").mkdir(parents=True)
        pl.concat(parts).write_parquet(folder / "persons" / "prevalence.parquet")
        folders.append(folder)
    return folders, [{"tables": [], "persons": {"prevalence": [False, False]}}] * PARTITIONS


def _peak_mb(root: Path, persons: int) -> float:
    folders, written = _partitions(root, persons)
    out = root / "study"
    out.mkdir()
    env = {**os.environ, **QUIET}
    done = subprocess.run([sys.executable, "-c", UNITE, json.dumps([str(f) for f in folders]), json.dumps(written),
                           str(out), str(BUCKET_ROWS)], capture_output=True, text=True, env=env, check=True)
    rows = pl.scan_parquet(out / "persons" / "prevalence.parquet").select(pl.len()).collect().item()
    assert rows > 3 * persons // 2, "the united persons were written"
    return int(done.stdout.split()[-1]) / 1024


def test_the_reduce_of_persons_does_not_grow_with_the_data(tmp_path: Path) -> None:
    small = _peak_mb(tmp_path / "small", 100_000)
    large = _peak_mb(tmp_path / "large", 1_000_000)
    assert large - small < SLACK_MB, f"peak {small:.0f} MB at 0.1 M persons, {large:.0f} MB at 1 M"
