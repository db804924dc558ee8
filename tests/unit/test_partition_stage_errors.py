"""A partition's failure names the stage it belongs to, the partition and the executor (never data).

A command runs one stage, but a pipeline (the demo, a steward's script) runs several, and a
log line "partition 3 of 4, on the dask executor" does not say which stage failed: the supplier
step (ehr or claims), the TTP step, linkage or the study. Every message of a partitioned failure
says it: the note on a task's own exception, the lost-worker error, and what the command prints.
"""

from __future__ import annotations

import pytest
from partition_tasks import die_on_one, refuse_one_as_configuration, refuse_two

from execution import LocalExecutor, ProcessExecutor
from execution.executors import lost_worker


@pytest.mark.parametrize("make", [LocalExecutor, lambda: ProcessExecutor(2)], ids=["local", "processes"])
def test_a_tasks_exception_is_noted_with_the_stage_partition_and_executor(make) -> None:  # type: ignore[no-untyped-def]
    with make() as ex, pytest.raises(ValueError) as raised:
        ex.map(refuse_two, [0, 1, 2, 3], stage="study")
    notes = " ".join(getattr(raised.value, "__notes__", []))
    assert f"partition 3 of 4 of the study, on the {ex.name} executor" in notes


def test_a_lost_worker_names_the_stage() -> None:
    said = str(lost_worker("dask", 2, 8, stage="linkage step"))
    assert "executor dask lost partition 3 of 8 of the linkage step" in said
    with ProcessExecutor(1) as ex, pytest.raises(Exception) as raised:
        ex.map(die_on_one, [0, 1, 2], stage="TTP step")
    assert "lost partition 2 of 3 of the TTP step" in str(raised.value)


def _guarded_stderr(fn, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    from extracts.cli import guarded

    with pytest.raises(SystemExit) as info:
        guarded(fn)
    return int(info.value.code), capsys.readouterr().err


def test_an_engine_error_in_a_partition_is_printed_with_the_stage(capsys: pytest.CaptureFixture[str]) -> None:
    code, said = _guarded_stderr(
        lambda: LocalExecutor().map(refuse_one_as_configuration, [0, 1], stage="supplier step (claims)"), capsys)
    assert code == 2
    said = " ".join(said.split())
    assert "a practice code list names no practice of this partition" in said
    assert "partition 2 of 2 of the supplier step (claims), on the local executor" in said


def test_an_internal_error_in_a_partition_names_the_stage_but_withholds_the_message(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, said = _guarded_stderr(lambda: LocalExecutor().map(refuse_two, [0, 1, 2, 3], stage="study"), capsys)
    said = " ".join(said.split())
    assert code == 70
    assert "internal error (ValueError) in partition 3 of 4 of the study, on the local executor" in said
    assert "P002" not in said and "Traceback" not in said


def test_a_lost_worker_printed_by_a_command_names_the_stage(capsys: pytest.CaptureFixture[str]) -> None:
    def fn() -> None:
        raise lost_worker("processes", 1, 3, stage="supplier step (ehr)")

    code, said = _guarded_stderr(fn, capsys)
    assert code == 12
    assert "partition 2 of 3 of the supplier step (ehr)" in " ".join(said.split())
