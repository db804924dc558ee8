"""Linkage in K partitions: bounded memory, and only the token travels through scratch (issue 14, item 4).

``linkage.partitioned.link_partitioned`` splits the content rows by token, links each partition
and writes one linked file per content file in the content's row order. Two properties:

- its memory does not grow with the input at a fixed partition size: ten times the rows in ten
  times the partitions, the same peak resident memory (VmHWM of a fresh process) within a small
  slack. The reduce before item 4 sorted the whole table (every column of every row: 20.6 GB on
  the ``country`` preset's 1.14 G content rows);
- the partitions' scratch holds the row number, the token and the partition of each content row
  and the token map's part, never the care content (claim ids, dates, diagnoses, amounts).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from execution import LocalExecutor
from linkage.partitioned import link_partitioned, replace_tokens, write_rows
from linkage.persons import number_persons, numbered_tokens

ROWS_PER_PARTITION = 100_000
ROWS_PER_PERSON = 50  # few persons: the token map and person numbers (person-sized, allowed) stay small
CHUNK_ROWS = 20_000  # the reduce's and the split's buffers (MERGE_ROWS, SPLIT_BUFFER_ROWS): small for a small test
SLACK_MB = 40
# Polars' streaming buffers made small (as in test_partitioned_supplier_memory.py): what grows is linkage's own.
QUIET = {"POLARS_MAX_THREADS": "1", "POLARS_IDEAL_MORSEL_SIZE": "5000", "POLARS_ROW_GROUP_PREFETCH_SIZE": "1",
         "POLARS_MAX_CONCURRENT_SCANS": "1", "_RJEM_MALLOC_CONF": "dirty_decay_ms:0,muzzy_decay_ms:0"}
CARE = ("claim_id", "service_date", "diagnosis_code", "cost_eur")


def _inputs(root: Path, rows: int) -> tuple[Path, Path, Path]:
    """A claims-like content file (tokens, some missing), its token map and the person numbers."""
    rng = np.random.default_rng(rows)
    persons = rows // ROWS_PER_PERSON
    tokens = rng.choice(np.arange(-2**62, 2**62, 2**40), size=persons, replace=False)
    labels = pl.Series([f"P2-{i:040x}" for i in rng.permutation(persons)])
    token = pl.Series("token", tokens[rng.integers(0, persons, rows)])
    token = token.scatter(np.flatnonzero(rng.random(rows) < 0.01), None)  # records without a token
    content = pl.DataFrame({
        "claim_id": pl.Series(np.arange(rows)).cast(pl.String).str.zfill(10), "token": token,
        "bsn_status": pl.Series(rng.choice(["valid", "missing"], rows)).cast(pl.Enum(["valid", "missing"])),
        "service_date": pl.Series(rng.integers(18_262, 18_992, rows)).cast(pl.Date),
        "diagnosis_code": pl.Series(rng.choice(["401", "J45", "E11"], rows)),
        "cost_eur": pl.Series(rng.integers(1, 100_000, rows)).cast(pl.Decimal(12, 2)) / 100,
    })
    token_map = pl.DataFrame({"token": tokens[:-3], "p2": labels[:-3]})  # three tokens the TTP did not link
    root.mkdir(parents=True)
    content.write_parquet(root / "claims.parquet", row_group_size=50_000)
    token_map.write_parquet(root / "token_map.parquet")
    number_persons({"claims": root / "token_map.parquet"}, root / "persons.parquet", root / "numbers")
    return root / "claims.parquet", root / "token_map.parquet", root / "numbers"


def _one_pass(content: Path, numbers: Path, target: Path) -> None:
    """The K = 1 path of linkage.link._write_linked."""
    write_rows(replace_tokens(pl.scan_parquet(content), numbered_tokens(numbers, "claims").collect().lazy(),
                              method=False), target)


# Links one content file in K partitions in process; prints its peak memory in KiB.
LINK = """
import sys
from pathlib import Path
from execution import LocalExecutor, split
from linkage import partitioned
from linkage.persons import numbered_tokens
content, token_map, numbers, scratch, target = map(Path, sys.argv[1:6])
partitions, chunk = int(sys.argv[6]), int(sys.argv[7])
partitioned.MERGE_ROWS = split.SPLIT_BUFFER_ROWS = chunk  # MERGE_ROWS: item 4's reduce (absent before)
scratch.mkdir()
partitioned.link_partitioned([(content, "claims", False, target)], {"claims": numbered_tokens(numbers, "claims")},
                             scratch, executor=LocalExecutor(), partitions=partitions)
print(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")))
"""


def _peak_mb(root: Path, partitions: int) -> float:
    content, token_map, numbers = _inputs(root / "in", ROWS_PER_PARTITION * partitions)
    target = root / "claims.parquet"
    done = subprocess.run([sys.executable, "-c", LINK, str(content), str(token_map), str(numbers),
                           str(root / "scratch"), str(target), str(partitions), str(CHUNK_ROWS)],
                          capture_output=True, text=True, env={**os.environ, **QUIET})
    assert done.returncode == 0, done.stderr[-3000:]
    _one_pass(content, numbers, root / "one_pass.parquet")
    assert target.read_bytes() == (root / "one_pass.parquet").read_bytes(), "the bytes of one pass"
    return int(done.stdout.split()[-1]) / 1024


def test_linkage_in_partitions_does_not_grow_with_the_input(tmp_path: Path) -> None:
    """Ten times the content rows in ten times the partitions: the same peak, within the slack."""
    small = _peak_mb(tmp_path / "small", 2)
    large = _peak_mb(tmp_path / "large", 20)
    assert large - small < SLACK_MB, f"peak {small:.0f} MB at 2 partitions, {large:.0f} MB at 20 of the same size"


def test_linkage_partitions_get_tokens_and_row_numbers_never_care_content(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import linkage.partitioned as partitioned

    content, token_map, numbers = _inputs(tmp_path / "in", 30_000)
    handed: list[list[str]] = []
    real = partitioned.split

    def recording(lf: pl.LazyFrame, folder: Path, **kw: object) -> None:
        handed.append(lf.collect_schema().names())
        real(lf, folder, **kw)

    monkeypatch.setattr(partitioned, "split", recording)
    seen: list[list[str]] = []
    real_map = LocalExecutor.map

    def look(self: LocalExecutor, fn: object, tasks: list, **kw: object) -> list:
        done = real_map(self, fn, tasks, **kw)  # scratch as the partitions left it, before the reduce
        seen.extend(pl.scan_parquet(p).collect_schema().names() for p in sorted((tmp_path / "scratch").rglob("*.parquet")))
        return done

    monkeypatch.setattr(LocalExecutor, "map", look)
    (tmp_path / "scratch").mkdir()
    link_partitioned([(content, "claims", True, tmp_path / "claims.parquet")],
                     {"claims": numbered_tokens(numbers, "claims")}, tmp_path / "scratch",
                     executor=LocalExecutor(), partitions=4)
    assert sorted(map(sorted, handed)) == [["__part", "__row", "token"], ["__part", "link_method", "p2", "token"]]
    assert seen and not any(set(CARE) & set(names) for names in seen), "care content in the partitions' scratch"
    linked = pl.read_parquet(tmp_path / "claims.parquet")
    assert linked.columns == ["claim_id", "p2", "bsn_status", "service_date", "diagnosis_code", "cost_eur",
                              "link_method"]
    assert linked["claim_id"].to_list() == pl.read_parquet(content)["claim_id"].to_list()


def test_person_numbers_file_has_the_same_bytes_however_its_rows_were_chunked(tmp_path: Path) -> None:
    """persons.parquet is one of the files that must be byte-identical for every K and run: polars
    cut its row groups at the frame's chunks, which a streaming collect does not fix (on nivel two
    runs of the same token maps wrote 71 and 73 row groups)."""
    from linkage.link import write_persons

    persons = pl.DataFrame({"p2": np.arange(300_000, dtype=np.int64),
                            "p2_label": [f"P2-{i:040x}" for i in range(300_000)]})
    written = []
    for cut in (0, 70_000, 150_001):
        frame = pl.concat([persons[:cut], persons[cut:]], rechunk=False) if cut else persons
        write_persons(frame.lazy(), tmp_path / f"persons-{cut}.parquet")
        written.append((tmp_path / f"persons-{cut}.parquet").read_bytes())
    assert written[1] == written[0] and written[2] == written[0]


def test_the_reduce_refuses_partials_that_lost_or_repeated_a_row(tmp_path: Path) -> None:
    from execution import ExecutorError
    from linkage.partitioned import write_linked_in_row_order

    pl.DataFrame({"claim_id": ["a", "b", "c", "d"], "token": [5, 6, 7, 8]}).write_parquet(tmp_path / "c.parquet")
    for name, rows in (("lost", [0, 1, 3]), ("repeated", [0, 1, 1, 3])):
        part = tmp_path / f"{name}.parquet"
        pl.DataFrame({"__row": rows, "p2": [1] * len(rows)}).write_parquet(part)
        with pytest.raises(ExecutorError, match="do not hold one row for each content row"):
            write_linked_in_row_order(tmp_path / "c.parquet", [part], tmp_path / f"{name}-out.parquet")
