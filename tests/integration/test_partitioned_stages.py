"""The supplier step, the TTP step and linkage in K partitions give the files of K = 1 (issue 14).

Each test runs once per executor case (``executor_case``: in process K = 1 and K = 8, a process
pool with K = 4, and Dask/Spark where installed) on the tiny preset, against one reference chain
run unpartitioned. Every output file is compared byte for byte. The supplier step's randomness
(the run key behind its tokens and calibration sample, and the batch id) is fixed in these
tests: everything else is a function of the data and the keys.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest

from execution import Executor, LocalExecutor
from execution.split import partial_file
from extracts.generator.run import GenerationResult
from linkage.link import link
from pseudonymisation.keys import Key, generate_key
import pseudonymisation.supplier as supplier_module
import pseudonymisation.supplier_partition as supplier_partition
from pseudonymisation.errors import PseudonymisationError
from pseudonymisation.supplier import run_supplier_step
from pseudonymisation.supplier_tokens import bsn_partitions, partition_key
from pseudonymisation.ttp import run_ttp_step

SUPPLIERS = ("ehr", "claims")
PROJECT = "partitioned"


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _assert_same_files(got: Path, expected: Path) -> None:
    got_files, expected_files = _files(got), _files(expected)
    assert sorted(got_files) == sorted(expected_files)
    differ = [name for name in expected_files if got_files[name] != expected_files[name]]
    assert not differ, f"files differ from K = 1: {differ}"


def _leftovers(out: Path) -> list[str]:
    """Scratch, partial and lock files a run left beside its output."""
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


class Chain:
    """One unpartitioned run of the three stages on the tiny extracts, with fixed run randomness."""

    def __init__(self, extracts: Path, work: Path) -> None:
        self.extracts, self.work = extracts, work
        self.network_key = generate_key(work / "keys" / "network.key", "network")
        self.ttp_key = generate_key(work / "keys" / "ttp.key", "ttp")
        self.pseudo = {s: work / "k1" / s for s in SUPPLIERS}
        self.ttp = work / "k1" / "ttp"
        self.linked = work / "k1" / "linked"

    def supplier(self, supplier: str, out: Path, **kw: object) -> Path:
        return run_supplier_step(self.extracts / supplier, supplier, self.network_key, out, **kw).out

    def ttp_step(self, out: Path, **kw: object) -> Path:
        return run_ttp_step({s: self.pseudo[s] / "for_ttp" for s in SUPPLIERS}, self.ttp_key, PROJECT, out,
                            expected_network_key_id=self.network_key.id, **kw).out

    def link(self, out: Path, **kw: object) -> Path:
        return link({s: self.pseudo[s] / "for_research" for s in SUPPLIERS}, {s: self.ttp / s for s in SUPPLIERS},
                    out, project=PROJECT, **kw).out


@pytest.fixture(scope="module")
def fixed_run() -> Iterator[None]:
    """The supplier's run key and batch id fixed (drawn fresh per run otherwise)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(supplier_module, "fresh_run_key", lambda: Key("run", bytes(range(32))))
        mp.setattr(supplier_module, "uuid", SimpleNamespace(uuid4=lambda: uuid.UUID(int=14)))
        yield


@pytest.fixture(scope="module")
def chain(tiny_extracts: GenerationResult, tmp_path_factory: pytest.TempPathFactory, fixed_run: None) -> Chain:
    c = Chain(tiny_extracts.out, tmp_path_factory.mktemp("partitioned"))
    for supplier in SUPPLIERS:
        c.supplier(supplier, c.pseudo[supplier])
    c.ttp_step(c.ttp)
    c.link(c.linked)
    return c


@pytest.mark.parametrize("supplier", SUPPLIERS)
def test_supplier_partitioned_writes_the_files_of_one_pass(chain: Chain, executor_case: tuple[Executor, int],
                                                           supplier: str, tmp_path: Path) -> None:
    executor, k = executor_case
    out = chain.supplier(supplier, tmp_path / supplier, executor=executor, partitions=k)
    _assert_same_files(out, chain.pseudo[supplier])
    assert _leftovers(out) == []


@pytest.mark.parametrize("supplier", SUPPLIERS)
def test_supplier_partitions_get_bsns_and_identifying_parts_never_care_content(
        chain: Chain, supplier: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What passes through the partitions' scratch folder: per table, the BSN (its status and
    partition, the row number) and, where the fallback encodes it, the identifying parts; never a
    claim's or a contact's care content. The content files are written in one pass in row order,
    their BSN replaced by its token (a keyed function of the BSN, whichever partition made it):
    on country-size claims the round trip of the content through the partitions was 14 GB of
    scratch and most of the step's time."""
    from pseudonymisation.supplier_encodings import PARTS

    split_columns: dict[str, set[str]] = {}
    real_split = supplier_module.split

    def recording(lf: pl.LazyFrame, folder: Path, **kw: object) -> None:
        split_columns[folder.name] = set(lf.collect_schema().names())
        real_split(lf, folder, **kw)

    monkeypatch.setattr(supplier_module, "split", recording)
    out = chain.supplier(supplier, tmp_path / supplier, executor=LocalExecutor(), partitions=3)
    _assert_same_files(out, chain.pseudo[supplier])
    keyed = {"__row", "bsn", "bsn_status", "__part"}
    encoded = {"ehr": "patients", "claims": "insured"}[supplier]
    assert sorted(split_columns) == sorted(supplier_module.BSN_TABLES[supplier])
    for table, columns in split_columns.items():
        allowed = keyed | (set(PARTS) if table == encoded else set())
        assert columns <= allowed, f"{table}: {sorted(columns - allowed)} passed through the partitions"


def test_supplier_partition_of_a_bsn_is_keyed_by_the_network_key(tmp_path: Path) -> None:
    bsn = np.arange(100_000_000, 100_000_000 + 20_000, dtype=np.int64)
    one = bsn_partitions(partition_key(generate_key(tmp_path / "a.key", "network")), bsn, 8)
    other = bsn_partitions(partition_key(generate_key(tmp_path / "b.key", "network")), bsn, 8)
    # Independent assignments agree on about 1 in 8 BSNs; each is balanced and not the BSN mod 8.
    assert 0.10 < (one == other).mean() < 0.15
    assert one.value_counts()["count"].min() > 2_000
    assert (one.to_numpy() == bsn % 8).mean() < 0.15


def test_an_empty_partition_gets_no_tokens_and_no_partitions() -> None:
    from pseudonymisation.supplier_tokens import person_tokens

    none = np.array([], dtype=np.int64)
    assert person_tokens(Key("run", bytes(32)), none).len() == 0
    assert bsn_partitions(Key("partition", bytes(32)), none, 8).len() == 0


def test_supplier_keeps_one_bsns_rows_in_one_partition(chain: Chain) -> None:
    from extracts.validation import validate_extract

    validated = validate_extract(chain.extracts / "claims", "claims")
    rows = pl.concat([supplier_module._keyed_rows(validated.tables[t], chain.network_key, 8)
                      .select("bsn", "bsn_status", "__part")
                      for t in ("insured", "claims")]).collect()
    valid = rows.filter(pl.col("bsn_status") == "valid")
    assert valid.group_by("bsn").agg(pl.col("__part").n_unique())["__part"].max() == 1
    assert valid["__part"].n_unique() == 8


def test_supplier_refuses_a_token_repeated_across_partitions(chain: Chain, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # Tokens unique within each partition but repeating across them: only the reduce can see it.
    monkeypatch.setattr(supplier_partition, "person_tokens",
                        lambda key, bsn: pl.Series("token", np.arange(len(bsn), dtype=np.int64)))
    out = tmp_path / "ehr"
    with pytest.raises(PseudonymisationError, match="repeat across its partitions"):
        chain.supplier("ehr", out, executor=LocalExecutor(), partitions=4)
    assert not out.exists()
    assert _leftovers(out) == []


def test_supplier_interrupted_partition_leaves_no_output_and_no_scratch(
        chain: Chain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = supplier_module.supplier_partition

    def failing(task: supplier_partition.SupplierTask) -> dict:
        if task.index == 1:
            raise KeyboardInterrupt
        return real(task)

    monkeypatch.setattr(supplier_module, "supplier_partition", failing)
    out = tmp_path / "ehr"
    with pytest.raises(KeyboardInterrupt):
        chain.supplier("ehr", out, executor=LocalExecutor(), partitions=3)
    assert not out.exists()
    assert _leftovers(out) == []


def test_linkage_partitioned_writes_the_files_of_one_pass(chain: Chain, executor_case: tuple[Executor, int],
                                                           tmp_path: Path) -> None:
    executor, k = executor_case
    out = chain.link(tmp_path / "linked", executor=executor, partitions=k)
    _assert_same_files(out, chain.linked)
    assert _leftovers(out) == []


def test_linkage_one_pass_is_deterministic(chain: Chain, tmp_path: Path) -> None:
    # Row order is the content's (a left join that keeps the left order): same bytes every run.
    _assert_same_files(chain.link(tmp_path / "again"), chain.linked)


def test_linkage_interrupted_partition_leaves_no_output_and_no_scratch(
        chain: Chain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import linkage.partitioned as partitioned

    real = partitioned.link_partition

    def failing(task: partitioned.LinkTask) -> int:
        if task.index == 2:
            raise KeyboardInterrupt  # as a Ctrl-C mid-run
        return real(task)

    monkeypatch.setattr(partitioned, "link_partition", failing)
    out = tmp_path / "linked"
    with pytest.raises(KeyboardInterrupt):
        chain.link(out, executor=LocalExecutor(), partitions=4)
    assert not out.exists()
    assert _leftovers(out) == []


def test_ttp_partitioned_writes_the_files_of_one_pass(chain: Chain, executor_case: tuple[Executor, int],
                                                      tmp_path: Path) -> None:
    executor, k = executor_case
    out = chain.ttp_step(tmp_path / "ttp", executor=executor, partitions=k)
    _assert_same_files(out, chain.ttp)
    assert _leftovers(out) == []


@pytest.mark.parametrize("k", [1, 3])
def test_ttp_token_maps_written_in_many_token_ranges_have_the_bytes_of_one(chain: Chain, tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch,
                                                                           k: int) -> None:
    """A map is sorted a token range at a time (about MERGE_ROWS rows) and written by one pass with
    fixed row groups: ranges of 37 rows give the bytes of the whole map sorted at once, at any K."""
    import pseudonymisation.supplier_reduce as reduce

    monkeypatch.setattr(reduce, "MERGE_ROWS", 37)
    out = chain.ttp_step(tmp_path / "ttp", executor=LocalExecutor(), partitions=k)
    _assert_same_files(out, chain.ttp)
    assert _leftovers(out) == []


def _plant_repeated_token(for_ttp: Path, k: int, copy: Path) -> Path:
    """A copy of a for_ttp folder whose identifiers repeat one token on a row of another partition."""
    import json
    import shutil

    import polars as pl

    from extracts.atomic import file_sha256
    from pseudonymisation.ttp_partitioned import p1_partition

    shutil.copytree(for_ttp, copy)
    path = copy / "identifiers.parquet"
    frame = pl.read_parquet(path).with_columns(part=p1_partition(k))
    first = frame.row(0, named=True)
    other = frame.filter(pl.col("part") != first["part"]).row(0, named=True)
    frame = frame.with_columns(token=pl.when(pl.col("p1") == other["p1"]).then(first["token"]).otherwise("token"))
    frame.drop("part").write_parquet(path)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["sha256"]["identifiers.parquet"] = file_sha256(path)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    return copy


@pytest.mark.parametrize("merge_rows", [1_000_000, 37])
def test_ttp_partitioned_refuses_a_token_repeated_across_partitions(chain: Chain, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   merge_rows: int) -> None:
    import pseudonymisation.supplier_reduce as reduce
    from pseudonymisation.errors import PseudonymisationError

    monkeypatch.setattr(reduce, "MERGE_ROWS", merge_rows)  # one token range, or many: counted range by range

    planted = _plant_repeated_token(chain.pseudo["claims"] / "for_ttp", 4, tmp_path / "planted" / "for_ttp")
    out = tmp_path / "ttp"
    with pytest.raises(PseudonymisationError, match="1 token occurs more than once"):
        run_ttp_step({"ehr": chain.pseudo["ehr"] / "for_ttp", "claims": planted}, chain.ttp_key, PROJECT, out,
                     executor=LocalExecutor(), partitions=4)
    assert not out.exists()
    assert _leftovers(out) == []


def test_ttp_interrupted_partition_leaves_no_output_and_no_scratch(
        chain: Chain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pseudonymisation.ttp_partitioned as partitioned

    real = partitioned.ttp_partition

    def failing(task: partitioned.TtpTask) -> tuple[int, int]:
        if task.index == 1:
            raise KeyboardInterrupt
        return real(task)

    monkeypatch.setattr(partitioned, "ttp_partition", failing)
    out = tmp_path / "ttp"
    with pytest.raises(KeyboardInterrupt):
        chain.ttp_step(out, executor=LocalExecutor(), partitions=3)
    assert not out.exists()
    assert _leftovers(out) == []


def test_global_collisions_count_one_p2_of_two_p1_in_two_partitions(tmp_path: Path) -> None:
    from pseudonymisation.ttp_partitioned import global_collisions

    for supplier, p2 in (("ehr", ["a", "shared"]), ("claims", ["shared", "b"])):
        (tmp_path / supplier).mkdir()
        pl.DataFrame({"token": [1, 2], "p2": p2}).write_parquet(tmp_path / supplier / "part-00000.parquet")
    # Four distinct P1 (two per partition) but three distinct P2: one collision across partitions.
    assert global_collisions(tmp_path, ["ehr", "claims"], 4, 1) == 1


@pytest.mark.parametrize(("setting", "says"), [("partitions=0", "partitions"), ("executor=nowhere", "executor")])
def test_link_command_refuses_bad_partition_settings(chain: Chain, tmp_path: Path, setting: str, says: str) -> None:
    from command_runner import assert_clean_failure, command_in_process

    proc = command_in_process("pfl-link", f"out={tmp_path / 'linked'}", f"project={PROJECT}", setting,
                       *(f"content.{s}={chain.pseudo[s] / 'for_research'}" for s in SUPPLIERS),
                       *(f"token_maps.{s}={chain.ttp / s}" for s in SUPPLIERS), cwd=tmp_path)
    assert_clean_failure(proc, 2, says)
    assert not (tmp_path / "linked").exists()


class _Recording(LocalExecutor):
    """In process, keeping every task it ran (as a scheduler would see and may log them)."""

    def __init__(self) -> None:
        self.tasks: list[object] = []
        self.stages: list[str] = []

    def map(self, fn, items, *, stage: str = ""):  # type: ignore[no-untyped-def]
        self.tasks += list(items)
        self.stages.append(stage)
        return super().map(fn, items, stage=stage)


def test_each_partitioned_stage_names_itself_for_its_failure_messages(chain: Chain, tiny_linked: Path,
                                                                       tmp_path: Path) -> None:
    """A partition's error or lost worker says which stage it was (execution.executors.note_partition)."""
    from omegaconf import OmegaConf

    from cohort.compile import legacy_config
    from cohort.convert import load_study
    from cohort.partitioned import run_partitioned
    from extracts.codelists import load_catalogue

    conf = Path(__file__).resolve().parents[2] / "conf"
    study = load_study(OmegaConf.to_container(OmegaConf.load(conf / "study" / "seed_study.yaml")),  # type: ignore[arg-type]
                       load_catalogue(conf / "conditions" / "seed_study.yaml"))

    recording = _Recording()
    for supplier in SUPPLIERS:
        chain.supplier(supplier, tmp_path / supplier, executor=recording, partitions=2)
    chain.ttp_step(tmp_path / "ttp", executor=recording, partitions=2)
    chain.link(tmp_path / "linked", executor=recording, partitions=2)
    run_partitioned(tiny_linked, legacy_config(study), executor=recording, partitions=2, scratch=tmp_path)
    assert recording.stages == ["supplier step (ehr)", "supplier step (claims)", "TTP step", "linkage step",
                                "study"]


def test_partition_tasks_carry_key_references_never_key_material(chain: Chain, tmp_path: Path) -> None:
    import pickle

    from pseudonymisation.prf import project_key

    recording = _Recording()
    chain.supplier("ehr", tmp_path / "ehr", executor=recording, partitions=2)
    chain.ttp_step(tmp_path / "ttp", executor=recording, partitions=2)
    chain.link(tmp_path / "linked", executor=recording, partitions=2)
    assert {type(t).__name__ for t in recording.tasks} == {"SupplierTask", "TtpTask", "LinkTask"}
    secrets = [chain.network_key.material, chain.ttp_key.material, project_key(chain.ttp_key, PROJECT).material,
               bytes(range(32))]  # the fixed run key
    for task in recording.tasks:
        data = pickle.dumps(task)
        for secret in secrets:
            assert secret not in data and secret.hex().encode() not in data


def test_partition_workers_get_derived_keys_never_a_master_key(chain: Chain, tmp_path: Path) -> None:
    """A worker's key files hold the sub-keys its partition needs, never K_net or K_ttp (keys.write_worker_key)."""
    from pseudonymisation.keys import load_key

    recording = _Recording()
    seen: list[bytes] = []
    real_load = load_key

    def spy(path: object, role: str) -> Key:
        key = real_load(path, role)
        seen.append(key.material)
        return key

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(supplier_partition, "load_key", spy)
        chain.supplier("ehr", tmp_path / "ehr", executor=recording, partitions=2)
        chain.supplier("claims", tmp_path / "claims", executor=recording, partitions=2)
    assert seen, "the partitions loaded no key files"
    assert chain.network_key.material not in seen
    assert chain.ttp_key.material not in seen
    _assert_same_files(tmp_path / "ehr", chain.pseudo["ehr"])


def _unseen(real, path_of, index: int):
    """``real`` run as a partition function whose file of partition ``index`` the driver cannot see
    (a worker's filesystem not shared, a directory listing cached on NFS): written, then gone."""
    def run(task):
        result = real(task)
        if task.index == index:
            path_of(task).unlink()
        return result
    return run


def test_linkage_refuses_a_partition_whose_partial_the_driver_cannot_see(
        chain: Chain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from execution import ExecutorError
    import linkage.partitioned as partitioned

    monkeypatch.setattr(partitioned, "link_partition",
                        _unseen(partitioned.link_partition, lambda t: Path(t.partial), 2))
    out = tmp_path / "linked"
    with pytest.raises(ExecutorError, match="partition 3 of 4"):
        chain.link(out, executor=LocalExecutor(), partitions=4)
    assert not out.exists()
    assert _leftovers(out) == []


def test_ttp_refuses_a_partition_whose_partial_the_driver_cannot_see(
        chain: Chain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from execution import ExecutorError
    import pseudonymisation.ttp_partitioned as ttp_partitioned

    monkeypatch.setattr(ttp_partitioned, "ttp_partition", _unseen(
        ttp_partitioned.ttp_partition, lambda t: partial_file(t.scratch, "ehr", t.index), 1))
    out = tmp_path / "ttp"
    with pytest.raises(ExecutorError, match="partition 2 of 3"):
        chain.ttp_step(out, executor=LocalExecutor(), partitions=3)
    assert not out.exists()
    assert _leftovers(out) == []


@pytest.mark.parametrize("what", ["invalid", "identifiers", "encodings"])
def test_supplier_refuses_a_partition_whose_partial_the_driver_cannot_see(
        chain: Chain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, what: str) -> None:
    from execution import ExecutorError

    monkeypatch.setattr(supplier_module, "supplier_partition", _unseen(
        supplier_module.supplier_partition,
        lambda t: partial_file(t.scratch, what, t.index), 1))
    out = tmp_path / "ehr"
    with pytest.raises(ExecutorError, match="partition 2 of 3"):
        chain.supplier("ehr", out, executor=LocalExecutor(), partitions=3)
    assert not out.exists()
    assert _leftovers(out) == []
