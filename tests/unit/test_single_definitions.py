"""Definitions the engine keeps once (read of the code, item 5 of the loose ends).

- the file each partition of a partitioned stage writes (``<folder>/<name>/part-<index>.parquet``):
  :func:`execution.split.partial_file`, read back by :func:`execution.split.partials`; no stage
  spells the name itself;
- the cells of the study's person-count tables: :data:`cohort.members.KEYS` and ``COLUMNS``, which
  the reducers' :data:`cohort.reduce.CELLS` takes for every table whose summed partial has the
  members' keys, adding only what has no members (event counts).
"""

from __future__ import annotations

import re
from pathlib import Path

from cohort import members, reduce

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("extracts", "pseudonymisation", "linkage", "cohort", "disclosure", "release", "pipeline", "execution")


def test_only_execution_split_names_a_partitions_partial_file() -> None:
    spelled = [f"{path.relative_to(ROOT)}:{n}" for package in PACKAGES
               for path in sorted((ROOT / package).rglob("*.py"))
               for n, line in enumerate(path.read_text().splitlines(), 1)
               if re.search(r"""["']part-\{""", line) and path != ROOT / "execution" / "split.py"]
    # cohort/partitioned.py names its tasks' work folders (part-<index>/), not a partial file.
    assert [s for s in spelled if not s.startswith("cohort/partitioned.py")] == []


def test_reduce_takes_the_members_cells_for_the_person_count_tables() -> None:
    shared = ("attrition", "prevalence", "incidence", "index_cohort", "care_use", "referrals", "fallback_links")
    for table in shared:
        keys, counts = reduce.CELLS[table]
        assert keys is members.KEYS[table] and counts is members.COLUMNS[table], table
    assert reduce.CELLS["top_groups"][0] is members.KEYS["top"]
    assert reduce.CELLS["acsc"][0] is members.KEYS["acsc"]
