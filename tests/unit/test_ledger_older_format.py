"""A ledger of the older format (pfl-release-ledger/1) is refused with what changed and what to do.

/1 ledgers keep no policy, no population and no person sets: a release cannot be checked against
their releases by who is counted, so they are not carried over (fail closed, docs/release-format.md,
"Ledgers of an older format"); the refusal says why and names the way forward.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from release.errors import LedgerRefusal
from release.ledger import Ledger


def _old_ledger(path: Path, fmt: str = "pfl-release-ledger/1") -> Path:
    (path / "records").mkdir(parents=True)
    (path / "ledger.json").write_text(json.dumps({
        "format": fmt, "ledger_id": "0a1b2c3d4e5f6a7b", "created": "2026-11-01T10:00:00Z",
        "releases": [{"release_id": "r-2026-11-01-a", "created": "2026-11-01T10:00:00Z", "study": "seed_study"}]}))
    (path / "records" / "r-2026-11-01-a.json").write_text(json.dumps({
        "format": "pfl-ledger-record/1", "release_id": "r-2026-11-01-a",
        "cells": [{"keys": [["prevalent", {"condition": "diabetes", "year": "2019"}]], "value": 4321,
                   "state": "hidden"}], "equations": []}))
    return path


def test_a_version_1_ledger_is_refused_saying_what_changed_and_what_the_steward_can_do(tmp_path: Path) -> None:
    ledger = _old_ledger(tmp_path / "old")
    with pytest.raises(LedgerRefusal) as raised:
        Ledger(ledger).index()
    said = str(raised.value)
    assert "pfl-release-ledger/1" in said and "pfl-release-ledger/2" in said
    for what in ("disclosure policy", "population", "who is counted"):  # what /2 added
        assert what in said, what
    assert "cannot be carried over" in said
    assert "pfl-ledger init --ledger" in said and "Ledgers of an older format" in said
    assert "4321" not in said  # no value of a record


def test_pfl_ledger_show_refuses_a_version_1_ledger_with_exit_11_saying_the_way_forward(tmp_path: Path) -> None:
    from command_runner import assert_clean_failure, run_command

    ledger = _old_ledger(tmp_path / "old")
    proc = run_command("pfl-ledger", "show", "--ledger", str(ledger), cwd=tmp_path)
    assert_clean_failure(proc, 11, "cannot be carried over")
    assert "pfl-ledger init --ledger" in proc.stderr


def test_a_ledger_of_an_unknown_format_is_refused_as_before(tmp_path: Path) -> None:
    ledger = _old_ledger(tmp_path / "odd", fmt="pfl-release-ledger/9")
    with pytest.raises(LedgerRefusal, match=r"not a ledger of format pfl-release-ledger/2 \(it is pfl-release-ledger/9\)"):
        Ledger(ledger).index()
