"""A command's executor and partition count (extracts.cli.execution_settings): auto K, clean refusals."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from omegaconf import OmegaConf

from execution import executors
from execution.executors import ExecutorError, LocalExecutor
from extracts.cli import execution_settings
from extracts.errors import ConfigError


def _cfg(**settings: object) -> object:
    return OmegaConf.create({"executor": {"name": "local", "workers": None}, "partitions": 1, "memory_gb": None,
                             **settings})


def _rows(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    pl.DataFrame({"x": range(n)}).write_parquet(folder / "t.parquet")
    return folder


def test_partitions_auto_sizes_k_from_the_memory_budget_and_the_inputs_rows(tmp_path: Path) -> None:
    folder = tmp_path / "linked"
    _rows(folder, 10)
    # study: 0.25 GB floor + 3,000 bytes per GP patient record (and 13 per row): 990,000 need
    # 2.97 GB in one partition; a budget of 1 GB leaves 0.75 GB (its whole-layout passes on ten
    # rows fit): K = 4.
    with execution_settings(_cfg(partitions="auto", memory_gb=1.0), stage="study",
                            rows=lambda: 10, persons=lambda: 990_000) as (_, k):
        assert k == 4
    with execution_settings(_cfg(partitions="auto", memory_gb=64.0), stage="study",
                            inputs=[folder]) as (_, k):
        assert k == 1  # ten rows, no patients: one partition


def test_partitions_auto_without_a_budget_or_a_stage_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="memory_gb"), execution_settings(
            _cfg(partitions="auto"), stage="study", inputs=[_rows(tmp_path / "a", 3)]):
        pass
    with pytest.raises(ConfigError, match="partitions=auto"), execution_settings(
            _cfg(partitions="auto", memory_gb=4.0)):
        pass  # a command with no stage model (the demo) needs a number


def test_an_executor_that_cannot_start_is_a_configuration_error_with_its_reason(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Seen: executor=dask executor.address=tcp://... with no scheduler there was an internal error
    # (exit 70, message withheld): the steward could not tell that the address was wrong.
    def unreachable(**options: object) -> LocalExecutor:
        raise ExecutorError("executor dask: no scheduler answered at tcp://127.0.0.1:1 (OSError)")

    monkeypatch.setitem(executors.EXECUTORS, "local", unreachable)
    with pytest.raises(ConfigError, match="no scheduler answered"), execution_settings(_cfg()):
        pass


def test_pfl_study_takes_partitions_auto_with_a_budget_and_refuses_it_without(tmp_path: Path) -> None:
    from command_runner import assert_clean_failure, command_in_process

    linked = _rows(tmp_path / "linked", 3)
    proc = command_in_process("pfl-study", f"linked={linked}", f"out={tmp_path / 'out'}", "partitions=auto", cwd=tmp_path)
    assert_clean_failure(proc, ConfigError.exit_code, "memory_gb")
    assert not (tmp_path / "out").exists()
    proc = command_in_process("pfl-demo", f"work={tmp_path / 'work'}", "partitions=auto", "memory_gb=4", cwd=tmp_path)
    assert_clean_failure(proc, ConfigError.exit_code, "partitions")
