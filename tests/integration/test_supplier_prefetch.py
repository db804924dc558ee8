"""``pfl-supplier`` under a memory budget holds polars' Parquet prefetch to 2 row groups (issue 14,
item 4: the default prefetch took the claims validation of nivel380k from 1.16 to 1.65 GB), and
leaves a steward's own setting, and runs without a budget, alone."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from command_runner import command_in_process

import pseudonymisation.__main__ as supplier_command
from extracts.generator.run import GenerationResult
from pseudonymisation.keys import generate_key

PREFETCH = "POLARS_ROW_GROUP_PREFETCH_SIZE"


@pytest.mark.parametrize(("budget", "own", "expected"), [
    (("memory_gb=2",), None, "2"),
    (("memory_gb=2",), "8", "8"),
    ((), None, None),
])
def test_a_budget_holds_the_parquet_prefetch_to_two_row_groups_unless_the_steward_set_it(
        budget: tuple[str, ...], own: str | None, expected: str | None, tiny_extracts: GenerationResult,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str | None] = []

    def step(*args: object, **kwargs: object) -> None:  # what the step would read its scans with
        seen.append(os.environ.get(PREFETCH))
        raise SystemExit(0)

    monkeypatch.setattr(supplier_command, "run_supplier_step", step)
    monkeypatch.delenv(PREFETCH, raising=False)
    generate_key(tmp_path / "network.key", "network")
    proc = command_in_process("pfl-supplier", "supplier=claims", f"extract={tiny_extracts.out / 'claims'}",
                              f"out={tmp_path / 'out'}", f"network_key={tmp_path / 'network.key'}", *budget, cwd=tmp_path,
                              env={PREFETCH: own} if own else None)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert seen == [expected]
    assert os.environ.get(PREFETCH) is None  # the test's process is left as it was
