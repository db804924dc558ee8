"""The study run as K partitions gives the same study folder as K = 1, byte for byte (issue 14, item 3).

On the tiny linked layout (the session fixture of ``tests/conftest.py``), for the seed study of
schema 1 (with claimed costs), a stratified study (age band x sex), the seed study in schema 2 and
two schema 2 examples of ``conf/study/`` (an index cohort with contacts and contact bands over two
years, given claimed costs too; an incidence cohort with contacts, bands and costs by region): every table and every person set that
``cohort.output.write_study`` writes. All six run on the in-process and process-pool cases of
``tests/executor_cases.py``; on Dask and on Spark (one test worker for both, the suite's critical
path) run the studies of ``ON_CLUSTERS``: between them every partial table that ``cohort.reduce``
unites, through both reducers and both entry points (schema 1's ``run_study``, schema 2's
``run_compiled``) — a test below keeps that so when a study is added. What the executors differ in
(shipping the partition task and its files to a worker and back) is the same for every study.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import polars as pl
import pytest
from command_runner import assert_clean_failure, command_in_process, run_command
from executor_cases import case_params
from omegaconf import OmegaConf

from cohort.compile import legacy_config, run_compiled
from cohort.config import StudyConfig
from cohort.convert import load_study
from cohort.index_study import COHORT_TABLE
from cohort.output import write_study
from cohort.partitioned import PartitionView, StudyTask, broadcast, study_partition, unite_members
from cohort.population import RULES, Linked, practice_sufficiency
from cohort.reduce import reduce_index_study, reduce_study
from cohort.schema import Study
from cohort.study import run_study
from execution import Executor, Partition, partitions
from extracts.codelists import load_catalogue
from extracts.errors import ConfigError

CONF = Path(__file__).resolve().parents[2] / "conf"
CATALOGUE = load_catalogue(CONF / "conditions" / "seed_study.yaml")
STUDIES = ("seed_costs", "respiratory_cardio_by_age_sex", "seed_study_v2", "asthma_copd_index_costs",
           "cardio_incidence_linked", "diabetes_prevalence_windows")
# On Dask and Spark: schema 1 with costs; schema 2's windowed prevalence study (every partial
# table of reduce_study: costs, contact bands, top lists, referrals, ACSC); the index cohort (top
# lists, referrals) and the incidence cohort (ACSC) of reduce_index_study, each with bands and costs.
ON_CLUSTERS = {"seed_costs", "diabetes_prevalence_windows", "asthma_copd_index_costs", "cardio_incidence_linked"}


def _study(name: str) -> Study:
    file = {"seed_costs": "seed_study", "asthma_copd_index_costs": "asthma_copd_index_followup"}.get(name, name)
    raw = OmegaConf.to_container(OmegaConf.load(CONF / "study" / f"{file}.yaml"))
    if name == "asthma_copd_index_costs":  # an index cohort with claimed costs after the index date
        raw = {**raw, "outcomes": [*raw["outcomes"],  # type: ignore[index]
                                   {"type": "costs", "disciplines": ["MSZ", "FT"], "window": {"days": [0, 365]}}]}
    return load_study(raw, CATALOGUE)  # type: ignore[arg-type]


def _seed_config(name: str) -> StudyConfig | None:
    """Schema 1 studies run ``run_study`` itself (the seed study with claimed costs of two sectors)."""
    if name == "seed_costs":
        return dataclasses.replace(legacy_config(_study(name)), cost_sectors=("MSZ", "FT"))
    if name == "respiratory_cardio_by_age_sex":
        return legacy_config(_study(name))
    return None


def _write(linked: Path, name: str, out: Path, **partitioned: object) -> Path:
    config, study = _seed_config(name), _study(name)
    if config is not None:
        tables = run_study(linked, config, **partitioned)  # type: ignore[arg-type]
        return write_study(tables, out, config, linked_manifest=json.loads((linked / "manifest.json").read_text()))
    tables = run_compiled(linked, study, **partitioned)  # type: ignore[arg-type]
    return write_study(tables, out, legacy_config(study), study=study,
                       linked_manifest=json.loads((linked / "manifest.json").read_text()))


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def unpartitioned(tiny_linked: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, bytes]]:
    """Each study's folder as the unpartitioned run writes it (the code path of K = 1)."""
    root = tmp_path_factory.mktemp("unpartitioned")
    return {name: _files(_write(tiny_linked, name, root / name)) for name in STUDIES}


@pytest.mark.parametrize(("name", "executor_case"), case_params(list(STUDIES), on_clusters=ON_CLUSTERS),
                         indirect=["executor_case"])
def test_partitioned_study_writes_the_same_files_as_one_partition(
        name: str, executor_case: tuple[Executor, int], tiny_linked: Path, tmp_path: Path,
        unpartitioned: dict[str, dict[str, bytes]]) -> None:
    executor, k = executor_case
    (tmp_path / "scratch").mkdir(mode=0o700)
    got = _files(_write(tiny_linked, name, tmp_path / "study", executor=executor, partitions=k,
                        scratch=tmp_path / "scratch"))
    want = unpartitioned[name]
    assert sorted(got) == sorted(want)
    assert any(f.startswith("persons/") for f in want), "the person sets are compared too"
    if got["manifest.json"] != want["manifest.json"]:  # say where: the manifest lists every table and file
        g, w = json.loads(got["manifest.json"]), json.loads(want["manifest.json"])
        assert g == w, [key for key in {*g, *w} if g.get(key) != w.get(key)]
    assert [f for f in want if got[f] != want[f]] == [], f"{name}: files differ at K = {k}"


def _reducer(name: str) -> str:
    return "reduce_index_study" if _study(name).cohort_type in ("index", "incidence") else "reduce_study"


def test_the_studies_on_the_clusters_write_every_table_the_full_set_writes(
        unpartitioned: dict[str, dict[str, bytes]]) -> None:
    """``ON_CLUSTERS`` covers, per reducer, every table (and person set) that any study of
    ``STUDIES`` writes, and both entry points: a study added with a new kind of table joins it."""
    def tables(names: set[str] | tuple[str, ...]) -> set[tuple[str, str]]:
        return {(_reducer(n), f) for n in names for f in unpartitioned[n] if f != "manifest.json"}

    assert tables(STUDIES) - tables(ON_CLUSTERS) == set()
    assert {_seed_config(n) is None for n in ON_CLUSTERS} == {True, False}  # run_study and run_compiled
    assert {_reducer(n) for n in ON_CLUSTERS} == {"reduce_study", "reduce_index_study"}


def test_partition_work_is_removed_after_the_run(tiny_linked: Path, tmp_path: Path) -> None:
    """The partitions' person-level files go once united; what stays in the caller's scratch folder
    (which the caller removes after writing the study) is the united persons behind the counts,
    one owner-only folder of files that the returned members read (cohort.unite)."""
    scratch = tmp_path / "scratch"
    scratch.mkdir(mode=0o700)
    tables = run_study(tiny_linked, legacy_config(_study("seed_study")), partitions=3, scratch=scratch)
    [united] = list(scratch.iterdir())
    assert united.name.startswith("members-") and united.stat().st_mode & 0o077 == 0
    assert all(f.is_file() and f.suffix == ".parquet" for f in united.iterdir())
    assert tables.members is not None and tables.members.frames()["prevalence"].height > 0


def test_pfl_study_runs_partitioned_on_a_process_pool(tiny_linked: Path, tmp_path: Path,
                                                       unpartitioned: dict[str, dict[str, bytes]]) -> None:
    """``pfl-study partitions=K executor=processes``: the folder of the unpartitioned command."""
    from cohort.__main__ import run  # noqa: PLC0415

    study = _study("respiratory_cardio_by_age_sex")
    run(study, tiny_linked, tmp_path / "one", overwrite=False)
    # The installed command: its process pool is started by the command's own process.
    proc = run_command("pfl-study", "study=respiratory_cardio_by_age_sex", f"linked={tiny_linked}",
                       f"out={tmp_path / 'many'}", "partitions=3", "executor=processes", "executor.workers=2",
                       cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert _files(tmp_path / "many") == _files(tmp_path / "one")


def test_pfl_study_refuses_a_partition_count_below_one(tiny_linked: Path, tmp_path: Path) -> None:
    proc = command_in_process("pfl-study", f"linked={tiny_linked}", f"out={tmp_path / 'out'}", "partitions=0", cwd=tmp_path)
    assert_clean_failure(proc, ConfigError.exit_code, "partitions")
    assert not (tmp_path / "out").exists()


def test_partition_view_keeps_each_persons_rows_in_one_partition(tiny_linked: Path, tmp_path: Path) -> None:
    k = 4
    config = legacy_config(_study("seed_study"))
    broadcast(tiny_linked, config, k, tmp_path / "shared")
    views = [PartitionView(tiny_linked, p, tmp_path / "shared") for p in partitions(k)]
    whole = Linked(tiny_linked)
    records = [view.ehr("patients").collect() for view in views]
    assert sum(r.height for r in records) == whole.ehr("patients").collect().height
    assert len(set().union(*(set(r["patient_id"]) for r in records))) == sum(r.height for r in records)
    for view, mine in zip(views, records, strict=True):
        assert (mine["p2"].drop_nulls() % k == view.partition.index).all()
        for table in ("claims", "insured"):
            assert (view.claims(table).select("p2").collect()["p2"] % k == view.partition.index).all()
        contacts = view.ehr("contacts").select("patient_id").collect()["patient_id"]
        assert contacts.is_in(mine["patient_id"].implode()).all()
    for table in ("contacts", "episodes", "registrations"):
        assert sum(v.ehr(table).collect().height for v in views) == whole.ehr(table).collect().height, table
    assert all(v.ehr("practices").collect().equals(whole.ehr("practices").collect()) for v in views)


def test_a_partition_reads_its_own_rows_not_the_whole_layout(tiny_linked: Path, tmp_path: Path) -> None:
    """The layout is split by partition once (``broadcast``): K partitions cost one read of the
    person-level tables, not K. With those tables gone after the split, a partition still runs
    and writes what it writes with them."""
    import shutil  # noqa: PLC0415

    k, config = 3, legacy_config(_study("seed_study"))
    layout = tmp_path / "linked"
    shutil.copytree(tiny_linked, layout)
    broadcast(layout, config, k, tmp_path / "shared")
    want = study_partition(StudyTask(layout, config, Partition(1, k), tmp_path / "with", tmp_path / "shared"))
    person_level = [p for side in ("ehr", "claims") for p in sorted((layout / side).glob("*.parquet"))
                    if {"p2", "patient_id"} & set(pl.read_parquet_schema(p))]
    assert {p.name for p in person_level} >= {"patients.parquet", "contacts.parquet", "claims.parquet",
                                               "insured.parquet"}
    for path in person_level:
        path.unlink()
    got = study_partition(StudyTask(layout, config, Partition(1, k), tmp_path / "without", tmp_path / "shared"))
    assert got == want
    for kind in ("tables", "persons"):  # a partial's rows come in no fixed order: the reduce sorts
        for path in sorted((tmp_path / "with" / kind).glob("*.parquet")):
            mine, theirs = pl.read_parquet(path), pl.read_parquet(tmp_path / "without" / kind / path.name)
            assert mine.sort(mine.columns).equals(theirs.sort(theirs.columns)), path.name


def test_practice_sufficiency_comes_whole_to_every_partition(tiny_linked: Path, tmp_path: Path) -> None:
    """X6 needs every patient of a practice: computed inside a partition it would exclude them all."""
    k, config = 4, legacy_config(_study("seed_study"))
    year = config.reference_years[-1]
    broadcast(tiny_linked, config, k, tmp_path / "shared")
    view = PartitionView(tiny_linked, partitions(k)[1], tmp_path / "shared")
    whole = practice_sufficiency(Linked(tiny_linked), year, config).sort("practice_id").collect()
    assert whole["sufficient"].any()
    assert view.sufficiency(year, config).collect().equals(whole)
    inside = practice_sufficiency(view, year, config).sort("practice_id").collect()
    assert not inside.equals(whole)


@pytest.mark.parametrize("name", ["cardio_incidence_linked", "asthma_copd_index_followup"])
def test_stratified_cohort_table_rows_come_in_a_fixed_order(name: str, tiny_linked: Path) -> None:
    """The incidence/index cohort table by condition then strata: the same file every run."""
    study = _study(name)
    table = run_compiled(tiny_linked, study)[COHORT_TABLE[study.cohort_type]]
    assert table.select("year", "condition", *study.strata).equals(
        table.select("year", "condition", *study.strata).sort("year", "condition", *study.strata))


def test_pfl_demo_refuses_a_partition_count_below_one(tmp_path: Path) -> None:
    proc = command_in_process("pfl-demo", f"work={tmp_path / 'work'}", "partitions=-2", cwd=tmp_path)
    assert_clean_failure(proc, ConfigError.exit_code, "partitions")
    assert not (tmp_path / "work" / "extracts").exists()  # only hydra's log of the refused run


@pytest.mark.parametrize("name", ["seed_costs", "cardio_incidence_linked"])
def test_a_partition_nobody_is_in_adds_nothing(name: str, tiny_linked: Path, tmp_path: Path) -> None:
    """Partitions {everyone, nobody} (K larger than the persons leaves some empty): the K = 1 tables.

    The layout is split once for K = 1, so that partition 1 of 2 reads a partition nobody is in
    (splitting for a K above the number of persons would write a folder per person)."""
    config = _seed_config(name)
    study: StudyConfig | Study = config if config is not None else _study(name)
    shared = tmp_path / "shared"
    broadcast(tiny_linked, study, 1, shared)
    tasks = [StudyTask(tiny_linked, study, p, tmp_path / f"part-{p.index}", shared)
             for p in (Partition(0, 1), Partition(1, 2))]
    written = [study_partition(t) for t in tasks]
    assert PartitionView(tiny_linked, tasks[1].partition, tasks[1].shared).ehr("patients").collect().height == 0
    parts = [{t: pl.read_parquet(task.folder / "tables" / f"{t}.parquet") for t in w["tables"]}
             for task, w in zip(tasks, written, strict=True)]
    members = unite_members(tuple(study.strata), [t.folder for t in tasks], written)
    if config is not None:
        got, want = reduce_study(parts, members, config, RULES), run_study(tiny_linked, config)
    else:
        got, want = reduce_index_study(parts, members, _study(name)), run_compiled(tiny_linked, _study(name))
    assert list(got) == list(want)
    for table, frame in want.items():
        assert got[table].equals(frame), table
    mine, theirs = got.members.frames(), want.members.frames()
    assert all(mine[t].equals(theirs[t]) for t in theirs)
