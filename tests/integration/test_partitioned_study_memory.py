"""A partitioned study's memory is set by its partitions' size, not by the persons (issue 14, item 4).

The study (``cohort.partitioned``) runs here in a fresh process, in process, on a linked layout made
of copies of the tiny layout (every copy other persons and records: the same study per copy), and
prints its peak resident memory (VmHWM). Two checks:

- at a fixed partition size (copies / K the same), 10x the persons may not take more than a small
  slack: what the run holds beside its partitions (the split of the layout, X6, the reduce and the
  united persons behind the counts, the writing of the study) is bounded;
- a partition writes the persons behind its counts by streaming them: before item 4 it collected
  them first, the attrition chain among them (a row per record and step: about 16 times the
  records), and on ``nivel`` K = 2 peaked above K = 1 (6.25 GB against 5.9).

Before item 4 the first check failed as well: the split of the layout wrote K files with row groups
of polars' default size, each buffered while written, so K files held up to the whole table.

Polars' streaming buffers are made small (as in ``test_partitioned_memory.py``): what grows is the
study's own. So is the reduce's bucket (``cohort.unite.BUCKET_ROWS``, rows sorted at once, a
million by default): since small cells share a bucket, the tiny layouts' parts would each be one
bucket, held whole, and the larger layout's parts are larger.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

SLACK_MB = 60
QUIET = {"POLARS_MAX_THREADS": "1", "POLARS_IDEAL_MORSEL_SIZE": "5000", "POLARS_ROW_GROUP_PREFETCH_SIZE": "1",
         "POLARS_MAX_CONCURRENT_SCANS": "1", "_RJEM_MALLOC_CONF": "dirty_decay_ms:0,muzzy_decay_ms:0"}
# Runs the seed study on the layout argv[1] in argv[3] partitions, writes it to argv[2]; prints VmHWM in KiB.
STUDY = """
import json, sys, tempfile
from pathlib import Path
from omegaconf import OmegaConf
from cohort.compile import legacy_config, run_compiled
from cohort.convert import load_study
from cohort.output import write_study
from extracts.codelists import load_catalogue
from cohort import unite
unite.BUCKET_ROWS = 20_000  # the reduce sorts a bucket at once: small here, as the layouts are
linked, out, k, conf = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
study = load_study(OmegaConf.to_container(OmegaConf.load(conf / "study" / "seed_study.yaml")),
                   load_catalogue(conf / "conditions" / "seed_study.yaml"))
with tempfile.TemporaryDirectory(dir=out.parent) as scratch:
    tables = run_compiled(linked, study, partitions=k, scratch=Path(scratch))
    write_study(tables, out, legacy_config(study), study=study,
                linked_manifest=json.loads((linked / "manifest.json").read_text()))
print(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")))
"""
CONF = Path(__file__).resolve().parents[2] / "conf"


def _copies(linked: Path, copies: int, out: Path) -> Path:
    """``copies`` copies of the linked layout ``linked`` as one layout: copy c's records are
    ``<id>~c`` and its person numbers are shifted by c x (the largest + 1); practices and insurers
    are shared (tables without persons are copied once)."""
    shift = 1 + max(pl.scan_parquet(linked / side / f"{t}.parquet").select(pl.col("p2").max()).collect().item() or 0
                    for side, t in (("ehr", "patients"), ("claims", "insured"), ("claims", "claims")))
    for path in sorted(linked.rglob("*.parquet")):
        frame = pl.read_parquet(path)
        target = out / path.relative_to(linked)
        target.parent.mkdir(parents=True, exist_ok=True)
        if "patient_id" not in frame.columns and "p2" not in frame.columns:
            frame.write_parquet(target)
            continue
        pl.concat([frame.with_columns(
            *([pl.col("patient_id") + f"~{c}"] if "patient_id" in frame.columns else []),
            *([pl.col("p2") + c * shift] if "p2" in frame.columns else []),
            *([pl.col("p2_label") + f"~{c}"] if "p2_label" in frame.columns else []))
            for c in range(copies)]).write_parquet(target)
    (out / "manifest.json").write_text((linked / "manifest.json").read_text())
    return out


def _peak_mb(linked: Path, partitions: int, out: Path) -> float:
    done = subprocess.run([sys.executable, "-c", STUDY, str(linked), str(out), str(partitions), str(CONF)],
                          capture_output=True, text=True, env={**os.environ, **QUIET}, check=True)
    assert (out / "persons" / "attrition.parquet").is_file(), "the study and its persons were written"
    return int(done.stdout.split()[-1]) / 1024


@pytest.fixture(scope="module")
def layouts(tiny_linked: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    root = tmp_path_factory.mktemp("study_memory")
    return {n: _copies(tiny_linked, n, root / f"x{n}") for n in (2, 20)}


def test_the_study_does_not_grow_with_the_persons_at_a_fixed_partition_size(layouts: dict[int, Path],
                                                                           tmp_path: Path) -> None:
    small = _peak_mb(layouts[2], 2, tmp_path / "small")
    large = _peak_mb(layouts[20], 20, tmp_path / "large")
    assert large - small < SLACK_MB, f"peak {small:.0f} MB for 2 copies in 2 partitions, {large:.0f} MB for 20 in 20"


# A partition's persons behind its counts, written as the partition writes them: the attrition
# chain of argv[2] base records (8 steps: about 16 rows a record); prints VmHWM in KiB.
CHAIN = """
import sys
from pathlib import Path
import numpy as np
import polars as pl
from cohort import members as who
from cohort.population import RULES
records, out = int(sys.argv[2]), Path(sys.argv[1])
rng = np.random.default_rng(records)
rules = pl.Series(rng.choice([*RULES, ""], records)).replace("", None)
base = pl.DataFrame({"person": np.arange(records, dtype=np.int64), "excluded_by": rules})
members = who.Members(())
who.attrition(members, 2019, [("all", base)])
try:
    from cohort.partitioned import write_partition_members
    write_partition_members(members, out)
except ImportError:  # before item 4: the partition collected its parts, then wrote them
    out.mkdir()
    parts = members.parts()["attrition"]
    pl.concat([p.with_columns(pl.lit(i, pl.Int64).alias("__member_part")) for i, p in enumerate(parts)],
              how="diagonal_relaxed").write_parquet(out / "attrition.parquet")
print(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")))
"""


def _chain_peak_mb(root: Path, records: int) -> float:
    root.mkdir()
    done = subprocess.run([sys.executable, "-c", CHAIN, str(root / "persons"), str(records)], capture_output=True,
                          text=True, env={**os.environ, **QUIET}, check=True, cwd=root)
    rows = pl.scan_parquet(root / "persons" / "attrition.parquet").select(pl.len()).collect().item()
    assert rows > 10 * records, "the chain was written"
    return int(done.stdout.split()[-1]) / 1024


def test_a_partition_writes_its_attrition_chain_without_holding_it(tmp_path: Path) -> None:
    small = _chain_peak_mb(tmp_path / "small", 100_000)
    large = _chain_peak_mb(tmp_path / "large", 1_000_000)
    assert large - small < SLACK_MB, f"peak {small:.0f} MB for 0.1 M records, {large:.0f} MB for 1 M"
