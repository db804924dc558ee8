"""The study run as K partitions of its persons, on any executor, united exactly (issue 14).

**The partition view.** :class:`PartitionView` is the linked layout (:class:`~cohort.population.Linked`)
restricted to partition k of K: the claims rows (``claims``, ``insured``) with ``p2 mod K = k``, the
EHR patient records of those persons (a record without a person number by a hash of its id:
:func:`execution.person_partition`) and every EHR row of those records. The driver splits every
person-level table of the layout by partition once, one streaming pass per table
(:func:`execution.split.split`, in :func:`broadcast`), so that a partition reads its own rows
only: K partitions cost one read of the layout, not K. One person's rows are in one partition, so
the study's own code (``cohort.study``, ``cohort.compile``, ``cohort.index_study``) runs unchanged
on each partition: there is one implementation of the rules.

**What is not per person** is read whole or broadcast: the tables without persons (``practices``,
``practice_years``, ``insurer_years``) are read whole; the partition and the rank of every EHR
record's id (the numbers of unlinked records, ``cohort.members``) and X6, practice sufficiency
(method.md 9.6), which needs every patient and contact of a practice, are computed once on the
whole layout and given to the partitions as files (:func:`broadcast`): no worker decides on its own
which records are its (a hash could differ between installations).

**Partition work.** :func:`study_partition` is the partition function (``execution``'s contract):
its argument is a :class:`StudyTask` (paths, the partition and the frozen study settings, no rows
of data and no keys); it writes the partition's partial tables and the persons behind its counts to
its own folder under the run's owner-only scratch folder and returns their names. The scratch
folder is removed after the run (``pfl-study``: :func:`extracts.atomic.scratch`, also after a kill,
by the next run). :mod:`cohort.reduce` unites the partial tables (small: counts per cell) and
:mod:`cohort.unite` the persons behind the counts, on disk, never all in memory (issue 14, item 4).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from cohort.config import StudyConfig, Sufficiency
from cohort.members import ORDER, Members, StudyTables
from cohort.population import Linked, practice_sufficiency
from cohort.schema import Study
from cohort.unite import MEMBER_PART as _MEMBER_PART, unite_members
from execution import Executor, LocalExecutor, Partition, person_partition
from execution import partitions as partition_list
from execution.split import PART, scan_partition, split

__all__ = ["PartitionView", "StudyTask", "broadcast", "layout_persons", "run_partitioned", "study_partition",
           "unite_members", "write_partition_members"]

_ROWS = "record_rows"  # patient_id, row (cohort.members.person_numbers), split by partition
_SPLIT = "split"  # under the shared folder: the person-level tables, split by partition
# Rows that the split of a table buffers at once over all its open partition files (each buffers a
# row group): the row groups get smaller as K grows, so that K files never hold the whole table.
SPLIT_BUFFER_ROWS = 1 << 18
SPLIT_MIN_ROWS = 16_384


def layout_persons(linked: Path) -> int:
    """The GP patient records of a linked layout (rows of ``ehr/patients.parquet``, from the footer;
    0 without one): what the study's partitions hold per-person tables of (the population, its
    attrition chain, its outcomes per year), so what its memory model sizes them by
    (:data:`execution.memory.STAGES`)."""
    try:
        return pq.ParquetFile(Path(linked) / "ehr" / "patients.parquet").metadata.num_rows
    except (OSError, pa.ArrowException):
        return 0


def _sufficiency_file(shared: Path, year: int, s: Sufficiency) -> Path:
    return shared / f"x6_{year}_{s.min_patients}_{s.min_weeks}_{s.min_icpc_share!r}.parquet"


def _sink(frame: pl.LazyFrame, path: Path) -> None:
    """Write a partition's rows (streaming; lz4: scratch files, read once or twice and removed)."""
    frame.sink_parquet(path, compression="lz4")


@dataclass(frozen=True)
class PartitionView(Linked):
    """Partition ``partition`` of the linked layout at ``root`` (see the module's docstring).

    ``shared``: the broadcast tables of the run and the layout split by partition (:func:`broadcast`).
    """

    partition: Partition
    shared: Path

    def _table(self, side: str, table: str) -> pl.LazyFrame:
        mine = self.shared / _SPLIT / side / table
        # A table of practices or insurers has no persons: the whole table, the same in every partition.
        if not mine.is_dir():
            return pl.scan_parquet(self.root / side / f"{table}.parquet")
        return scan_partition(mine, self.partition.index).drop(PART)

    def ehr(self, table: str) -> pl.LazyFrame:
        return self._table("ehr", table)

    def claims(self, table: str) -> pl.LazyFrame:
        return self._table("claims", table)

    def record_rows(self) -> pl.LazyFrame:
        return scan_partition(self.shared / _SPLIT / _ROWS, self.partition.index).drop(PART)

    def sufficiency(self, year: int, config: StudyConfig) -> pl.LazyFrame:
        path = _sufficiency_file(self.shared, year, config.sufficiency)
        if not path.is_file():
            msg = f"partitioned study: practice sufficiency of {year} was not broadcast to the partitions"
            raise RuntimeError(msg)
        return pl.scan_parquet(path)


def _sufficiencies(study: StudyConfig | Study) -> tuple[StudyConfig, set[Sufficiency]]:
    """The study's settings and every X6 setting it can ask its population for."""
    if isinstance(study, StudyConfig):
        return study, {study.sufficiency}
    from cohort.compile import legacy_config  # noqa: PLC0415 - compile imports cohort.study, which imports this

    return legacy_config(study), {Sufficiency(), *(c.sufficiency for c in study.criteria
                                                   if c.rule == "X6" and c.sufficiency is not None)}


def broadcast(linked: Path, study: StudyConfig | Study, count: int, shared: Path) -> None:
    """What every partition needs of the whole layout, computed once: X6 per practice and reference
    year; per EHR record, the rank of its id (the numbers of unlinked records, ``cohort.members``)
    and its partition of ``count`` (:func:`execution.person_partition`; one per record id); and
    every person-level table split into the ``count`` partitions (:func:`_split_layout`)."""
    whole = Linked(linked)
    if not whole.ehr("patients").collect_schema()["p2"].is_integer():
        msg = "partitioned study: the linked layout has no person numbers (p2); run it with partitions=1"
        raise ValueError(msg)
    shared.mkdir(mode=0o700, parents=True, exist_ok=True)
    config, settings = _sufficiencies(study)
    for s in settings:
        for year in config.reference_years:
            path = _sufficiency_file(shared, year, s)
            practice_sufficiency(whole, year, dataclasses.replace(config, sufficiency=s)).sort(
                "practice_id").collect(engine="streaming").write_parquet(path)
            os.chmod(path, 0o600)
    parts = whole.ehr("patients").group_by("patient_id").agg(person_partition(count).min().alias(PART)).collect()
    _split_layout(whole, parts.lazy(), count, shared / _SPLIT)


def _split_layout(whole: Linked, parts: pl.LazyFrame, count: int, folder: Path) -> None:
    """Every person-level table of the layout into ``count`` partitions, one streaming pass each
    (:func:`execution.split.split`): a partition then reads its own rows, not the whole layout
    (K partitions used to cost K reads of everything). EHR rows go by their record's partition
    (``parts``; rows of a record not in ``patients`` belong to no partition, as in the study),
    claims rows by ``p2 mod K`` (rows without a person number: partition 0; the study drops them).
    Each of the K files being written buffers one row group: about :data:`SPLIT_BUFFER_ROWS` rows in
    all, whatever K (with row groups of polars' default size, K files held up to the whole table)."""
    rows = max(SPLIT_MIN_ROWS, SPLIT_BUFFER_ROWS // count)
    split(whole.record_rows().join(parts, on="patient_id", maintain_order="left"), folder / _ROWS, row_group_size=rows)
    for path in sorted((whole.root / "ehr").glob("*.parquet")):
        frame = pl.scan_parquet(path)
        if "patient_id" in frame.collect_schema().names():
            split(frame.join(parts, on="patient_id", how="inner", maintain_order="left"), folder / "ehr" / path.stem,
                  row_group_size=rows)
    for path in sorted((whole.root / "claims").glob("*.parquet")):
        frame = pl.scan_parquet(path)
        if "p2" in frame.collect_schema().names():
            split(frame.with_columns(person_partition(count, record=None).alias(PART)), folder / "claims" / path.stem,
                  row_group_size=rows)


@dataclass(frozen=True)
class StudyTask:
    """One partition's work: small and picklable (``execution``'s contract)."""

    linked: Path
    study: StudyConfig | Study
    partition: Partition
    folder: Path
    shared: Path


def study_partition(task: StudyTask) -> dict[str, list[str] | dict[str, int]]:
    """Run the study on one partition; write its partial tables and members under ``task.folder``.

    Returns the names of the tables written (``tables/<name>.parquet``, in the study's order) and
    the number of member parts per table (``persons/<table>/<i>.parquet``).
    """
    from cohort.compile import run_compiled  # noqa: PLC0415 - compile imports cohort.study, which imports this lazily
    from cohort.study import run_study  # noqa: PLC0415

    view = PartitionView(task.linked, task.partition, task.shared)
    units = task.folder / "units"
    units.mkdir(mode=0o700, parents=True, exist_ok=True)
    if isinstance(task.study, Study):
        tables = run_compiled(view, task.study, scratch=units, partial=True)
    else:
        tables = run_study(view, task.study, scratch=units, partial=True)
    (task.folder / "tables").mkdir(mode=0o700)
    for name, frame in tables.items():
        frame.write_parquet(task.folder / "tables" / f"{name}.parquet")
    ordered = write_partition_members(getattr(tables, "members", None), task.folder / "persons")
    return {"tables": list(tables), "persons": ordered}


def write_partition_members(members: Members | None, folder: Path) -> dict[str, list[bool]]:
    """Write a partition's persons behind its counts to ``folder``: one file per table, each part
    tagged with its number (``cohort.unite`` unites them); returns per table whether each part
    keeps its order column.

    One streaming pass per table: the attrition chain (a row per record and step) is expanded while
    it is written, never held (collected, it was most of a partition's memory: issue 14, item 4).
    """
    folder.mkdir(mode=0o700)
    ordered: dict[str, list[bool]] = {}
    for table, parts in (members.lazy_parts() if members is not None else {}).items():
        # One file per table (few files: removing many small files is slow on some file systems).
        if parts:
            _sink(pl.concat([p.with_columns(pl.lit(i, pl.Int64).alias(_MEMBER_PART)) for i, p in enumerate(parts)],
                            how="diagonal_relaxed"), folder / f"{table}.parquet")
        ordered[table] = [ORDER in p.collect_schema().names() for p in parts]
    return ordered


def run_partitioned(linked: Path, study: StudyConfig | Study, *, executor: Executor | None = None, partitions: int,
                    scratch: Path | None = None,
                    progress: Callable[[str, int, int], None] | None = None) -> StudyTables:
    """The study's tables (with their members) computed as ``partitions`` partitions on ``executor``.

    Args:
        linked: the linked folder.
        study: the seed engine's settings (``cohort.study``) or a schema 2 study (``cohort.compile``).
        executor: where the partitions run (None: one after the other in this process).
        partitions: K >= 1.
        scratch: an owner-only folder for the partitions' work, which the caller removes after it
            has written the study (the united persons behind the counts are files there, read when
            the study is written: :mod:`cohort.unite`); None: a temporary folder of the system,
            removed when the study ends (the united persons: when the returned members are).
        progress: called with (the step about to run, steps done, steps in all).
    """
    from cohort.reduce import reduce_index_study, reduce_study  # noqa: PLC0415 - reduce imports cohort.study

    if isinstance(partitions, bool) or not isinstance(partitions, int) or partitions < 1:
        msg = f"partitions must be a whole number >= 1, not {partitions!r}"
        raise ValueError(msg)
    executor = executor if executor is not None else LocalExecutor()
    with contextlib.ExitStack() as stack:
        folder = Path(scratch if scratch is not None else stack.enter_context(
            tempfile.TemporaryDirectory(prefix="pfl-study-")))
        work = Path(tempfile.mkdtemp(prefix="partitions-", dir=folder))  # owner-only (0700)
        if progress is not None:
            progress("practice sufficiency (X6), broadcast", 0, 3)
        broadcast(Path(linked), study, partitions, work / "shared")
        if progress is not None:
            progress(f"{partitions} partitions on {type(executor).__name__}", 1, 3)
        tasks = [StudyTask(Path(linked), study, p, work / f"part-{p.index:06d}", work / "shared")
                 for p in partition_list(partitions)]
        written = executor.map(study_partition, tasks, stage="study")
        if progress is not None:
            progress("uniting the partitions", 2, 3)
        parts = [{name: pl.read_parquet(t.folder / "tables" / f"{name}.parquet") for name in w["tables"]}
                 for t, w in zip(tasks, written, strict=True)]
        # The persons behind the counts, united on disk (cohort.unite) beside the partials, in the
        # caller's scratch folder: they are written to the study folder from there.
        members = unite_members(tuple(study.strata), [t.folder for t in tasks], written,
                                target=Path(tempfile.mkdtemp(prefix="members-", dir=folder)) if scratch else None)
        shutil.rmtree(work)  # the partials are read: their person-level files go at once
    if isinstance(study, Study) and study.cohort_type != "prevalence":
        tables = reduce_index_study(parts, members, study)
    elif isinstance(study, Study):
        from cohort.compile import legacy_config  # noqa: PLC0415

        tables = reduce_study(parts, members, legacy_config(study), tuple(c.name for c in study.criteria))
    else:
        from cohort.population import RULES  # noqa: PLC0415

        tables = reduce_study(parts, members, study, RULES)
    if progress is not None:
        progress("done", 3, 3)
    return tables

