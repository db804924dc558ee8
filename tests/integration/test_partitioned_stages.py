"""The supplier step, the TTP step and linkage in K partitions give the files of K = 1 (issue 14).

Each test runs once per executor case (``executor_case``: in process K = 1 and K = 8, a process
pool with K = 4, and Dask/Spark where installed) on the tiny preset, against one reference chain
run unpartitioned. Every output file is compared byte for byte.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from execution import Executor, LocalExecutor
from extracts.generator.run import GenerationResult
from linkage.link import link
from pseudonymisation.keys import Key, generate_key
from pseudonymisation.supplier import run_supplier_step
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
def chain(tiny_extracts: GenerationResult, tmp_path_factory: pytest.TempPathFactory) -> Chain:
    c = Chain(tiny_extracts.out, tmp_path_factory.mktemp("partitioned"))
    for supplier in SUPPLIERS:
        c.supplier(supplier, c.pseudo[supplier])
    c.ttp_step(c.ttp)
    c.link(c.linked)
    return c


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


def _plant_repeated_token(for_ttp: Path, k: int) -> Path:
    """A copy of a for_ttp folder whose identifiers repeat one token on a row of another partition."""
    import json
    import shutil

    import polars as pl

    from extracts.atomic import file_sha256
    from pseudonymisation.ttp_partitioned import p1_partition

    copy = for_ttp.parent.parent / f"{for_ttp.parent.name}-planted" / "for_ttp"
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


def test_ttp_partitioned_refuses_a_token_repeated_across_partitions(chain: Chain, tmp_path: Path) -> None:
    from pseudonymisation.errors import PseudonymisationError

    planted = _plant_repeated_token(chain.pseudo["claims"] / "for_ttp", 4)
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
