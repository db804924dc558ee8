"""A partitioned study's reduce holds a bounded amount of memory, whatever the data's size (issue 14, item 4).

The parent of a partitioned study unites the persons behind the counts of K partitions and
writes them to the study folder (``cohort.unite``, ``cohort.members.write_members``). Measured
here as the peak resident memory (``ru_maxrss``) of a fresh process doing only that, on the
persons files of 4 partitions at two sizes, 10x apart: the larger may not take more than a small
slack above the smaller (polars' own buffers). Holding the united sets in memory (the reduce
before item 4) grows by hundreds of megabytes.
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
SLACK_MB = 80
# Unites and writes the members of the partitions' folders; prints its peak RSS in KiB.
UNITE = """
import json, resource, sys
from pathlib import Path
from cohort.members import write_members
from cohort.partitioned import unite_members
folders = [Path(f) for f in json.loads(sys.argv[1])]
written = json.loads(sys.argv[2])
members = unite_members((), folders, written)
write_members(members, Path(sys.argv[3]))
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
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
                                  "condition": rng.choice(["asthma", "copd", "diabetes", None], 3 * picked.size),
                                  "person": np.tile(picked, 3)})
            parts.append(frame.select(pl.col("year").cast(pl.Int64), "condition", pl.lit(column).alias("column"),
                                      "person", pl.lit(i, pl.Int64).alias("__part"))
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
    env = {**os.environ, "POLARS_MAX_THREADS": "2"}
    done = subprocess.run([sys.executable, "-c", UNITE, json.dumps([str(f) for f in folders]), json.dumps(written),
                           str(out)], capture_output=True, text=True, env=env, check=True)
    rows = pl.scan_parquet(out / "persons" / "prevalence.parquet").select(pl.len()).collect().item()
    assert rows > 3 * persons // 2, "the united persons were written"
    return int(done.stdout.split()[-1]) / 1024


def test_the_reduce_of_persons_does_not_grow_with_the_data(tmp_path: Path) -> None:
    small = _peak_mb(tmp_path / "small", 200_000)
    large = _peak_mb(tmp_path / "large", 2_000_000)
    assert large - small < SLACK_MB, f"peak {small:.0f} MB at 0.2 M persons, {large:.0f} MB at 2 M"
