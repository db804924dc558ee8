"""The release works the person sets a bucket of persons at a time (issue 14, the release on
``country``): the same release, the same ledger record and the same relations to an earlier
release whatever the bucket size, the scratch owner-only and removed, and the same refusals.

The studies are stratified (age band), so the Totals of the strata are united from the levels
in every bucket, and the second (``diabetes_95``) holds the first's cells but a few persons, so
the relations by who is counted are found across buckets.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from adversarial.test_overlapping_definitions import condition, make_study
from disclosure import Policy
from execution import engine_folder
from release import overlaps
from release.errors import StudyContractError
from release.ledger import create_ledger
from release.make import make_release

SMALL = 97  # rows per bucket: tens of buckets on the tiny preset


@pytest.fixture(scope="module")
def studies(tiny_linked: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    work = tmp_path_factory.mktemp("buckets")
    first = make_study(tiny_linked, work / "first", {"diabetes": condition()}, strata=["age_band"])
    second = make_study(tiny_linked, work / "second", {"diabetes_95": condition(min_age=95)}, strata=["age_band"])
    return first, second


def _released(studies: tuple[Path, Path], work: Path, bucket_rows: int) -> tuple[Path, list[Path], list[str]]:
    """Both studies released, first then second, on one ledger; the scratch folders made on the way."""
    made: list[str] = []

    class Recorded(engine_folder.EngineFolder):
        def __init__(self, prefix: str) -> None:
            super().__init__(prefix)
            assert stat.S_IMODE(os.stat(self.path).st_mode) == 0o700
            made.append(self.path)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(overlaps, "BUCKET_ROWS", bucket_rows)
        mp.setattr(overlaps, "EngineFolder", Recorded)
        ledger = create_ledger(work / "ledger", Policy()).path
        releases = [make_release(study, work / f"release{i}", ledger=ledger).out for i, study in enumerate(studies)]
    return ledger, releases, made


@pytest.fixture(scope="module")
def whole(studies, tmp_path_factory):
    return _released(studies, tmp_path_factory.mktemp("whole"), 10**9)


@pytest.fixture(scope="module")
def bucketed(studies, tmp_path_factory):
    return _released(studies, tmp_path_factory.mktemp("bucketed"), SMALL)


def test_a_release_worked_in_buckets_is_the_release_held_whole(whole, bucketed) -> None:
    for a, b in zip(whole[1], bucketed[1], strict=True):
        tables = sorted(p.name for p in a.glob("*.parquet"))
        assert tables and tables == sorted(p.name for p in b.glob("*.parquet"))
        for name in tables:
            assert pl.read_parquet(a / name).equals(pl.read_parquet(b / name)), name
    entries = [json.loads((ledger / "ledger.json").read_text())["releases"] for ledger in (whole[0], bucketed[0])]
    # The second release was related to the first by who is counted, the same way both times.
    assert entries[0][1]["overlaps"] == entries[1][1]["overlaps"]
    assert entries[0][1]["overlaps"]["subset"] + entries[0][1]["overlaps"]["near-equal"] >= 1
    for one, two in zip(*entries, strict=True):
        records = [json.loads((ledger / "records" / f"{e['release_id']}.json").read_text())
                   for ledger, e in ((whole[0], one), (bucketed[0], two))]
        assert records[0]["cells"] == records[1]["cells"]
        assert records[0]["equations"] == records[1]["equations"]
        assert records[0]["persons"]["rows"] == records[1]["persons"]["rows"] > 0
        sets = [pl.read_parquet(ledger / "records" / r["persons"]["file"]).sort("cell", "person")
                for ledger, r in ((whole[0], records[0]), (bucketed[0], records[1]))]
        assert sets[0].equals(sets[1])
        assert sets[0].height == records[0]["persons"]["rows"]


def test_the_buckets_scratch_is_owner_only_and_removed(whole, bucketed) -> None:
    assert whole[2] == []  # held whole: no scratch at all
    assert len(bucketed[2]) >= 3  # the study's sets checked, then related to the first release's
    assert not any(Path(p).exists() for p in bucketed[2])


def test_a_person_in_place_of_another_is_refused_in_buckets_too(studies, tmp_path: Path) -> None:
    folder = tmp_path / "study"
    shutil.copytree(studies[0], folder)
    path = folder / "persons" / "prevalence.parquet"
    frame = pl.read_parquet(path)
    cell = frame.filter(pl.col("column") == "numerator").group_by("year", "age_band").len().filter(
        pl.col("len") > 1).row(0, named=True)
    mine = ((pl.col("column") == "numerator") & (pl.col("year") == cell["year"])
            & (pl.col("age_band") == cell["age_band"]))
    persons = frame.filter(mine)["person"]
    frame.with_columns(pl.when(mine & (pl.col("person") == persons.max())).then(persons.min())
                       .otherwise(pl.col("person")).alias("person")).write_parquet(path)
    ledger = create_ledger(tmp_path / "ledger", Policy()).path
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(overlaps, "BUCKET_ROWS", SMALL)
        with pytest.raises(StudyContractError, match="do not add up"):
            make_release(folder, tmp_path / "release", ledger=ledger)
    assert not list((ledger / "records").glob("*.json"))


def test_the_auditor_relates_the_releases_in_buckets_as_held_whole(whole, monkeypatch) -> None:
    from audit import audit_release
    from audit import persons as audit_persons

    ledger, releases, _ = whole
    ids = [e["release_id"] for e in json.loads((ledger / "ledger.json").read_text())["releases"]]
    found, verdicts = [], []
    for rows in (10**9, SMALL):
        monkeypatch.setattr(audit_persons, "BUCKET_ROWS", rows)
        got = audit_persons.person_relations(ledger, ids, threshold=Policy().threshold)
        found.append((sorted(map(repr, got.equations)), got.implied, got.truth, got.findings, got.pairs))
        verdicts.append(sorted(map(repr, audit_release(releases[1], ledger=ledger).findings)))
    assert found[0][4] >= 1 and found[0][1]  # the releases are related: pairs and implied cells
    assert found[0] == found[1]
    assert verdicts[0] == verdicts[1]


def test_relating_only_the_columns_within_t_of_another_relates_as_all_of_them(studies, whole, tmp_path) -> None:
    """Sets whose sizes differ by T or more are never related (``release.overlaps._needed``): the
    release with every column and complement read is the release with only those."""
    every = overlaps._needed

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(overlaps, "_needed", lambda *a: np.ones_like(every(*a)))
        ledger, releases, _ = _released(studies, tmp_path, 10**9)
    for a, b in zip(whole[1], releases, strict=True):
        for path in sorted(a.glob("*.parquet")):
            assert pl.read_parquet(path).equals(pl.read_parquet(b / path.name)), path.name
    entries = [json.loads((folder / "ledger.json").read_text())["releases"][1] for folder in (whole[0], ledger)]
    assert entries[0]["overlaps"] == entries[1]["overlaps"]


def test_only_columns_within_t_of_another_quantity_small_or_repeated_are_read() -> None:
    columns = pl.DataFrame({"release": [0, 0, 0, 1, 1, 1], "root": [0, 1, 2, 3, 4, 2], "col": range(6),
                            "n": [100, 5000, 70_000, 104, 9000, 70_000]})
    complements = pl.DataFrame(schema={"release": pl.Int64, "root": pl.Int64, "whole": pl.Int64, "part": pl.Int64})
    small = pl.DataFrame({"release": [0], "root": [5], "col": [6], "n": [3]})
    # 100 and 104 within T = 10 of each other; root 2 in both releases; 5000 and 9000 alone.
    assert overlaps._needed(columns, complements, 10, None).tolist() == [True, False, True, True, False, True]
    assert overlaps._needed(pl.concat([columns, small]), complements, 10, None).tolist()[-1]  # fewer than T


def test_the_release_benchmark_runs_and_compares_its_settings(studies, tmp_path) -> None:
    """benchmarks/release_sets.py, as the steward's guide runs it, on the tiny studies."""
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "release_sets.py"
    done = subprocess.run([sys.executable, str(script), "--study", str(studies[0]), "--second", str(studies[1]),
                           "--settings", "whole", str(SMALL), "--work", str(tmp_path / "work")],
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stdout.splitlines() if "release" in line and "peak" in line]
    assert len(lines) == 2 and "tables as the first: yes" in lines[1], done.stdout
    assert not (tmp_path / "work" / "s0" / "ledger").exists()  # person-level: removed after each setting


def test_the_release_benchmark_without_a_work_folder_leaves_nothing(studies, tmp_path) -> None:
    """Without --work the person sets go to an owner-only engine folder, removed after the run
    (and, were the run killed, by the next one: execution.engine_folder)."""
    import os
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "release_sets.py"
    stale = tmp_path / "pfl-release-sets-0123456789abcdef"  # a killed run's folder: marked, unlocked
    stale.mkdir(mode=0o700)
    (stale / ".pfl-engine-folder").touch()
    done = subprocess.run([sys.executable, str(script), "--study", str(studies[0]), "--settings", "whole"],
                          capture_output=True, text=True, timeout=600, check=False,
                          env={**os.environ, "TMPDIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "release" in done.stdout and "peak" in done.stdout, done.stdout
    assert not list(tmp_path.glob("pfl-release-sets-*")), list(tmp_path.iterdir())
