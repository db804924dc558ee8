"""``pfl-audit report=``: the report may not land on the release, the ledger or a file it did not write.

The auditor writes its JSON report atomically over the target (:mod:`audit.output`). Before this
check, ``report=<release>/manifest.json`` replaced the release's own manifest with the audit
report, and ``report=<ledger>/ledger.json`` the steward's ledger index: one careless argument
destroyed what the audit was meant to check. Refused with exit 2 before any check runs, naming
the setting and the rule; a report over an earlier audit report stays allowed.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from command_runner import audit_in_process as audit

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "releases"




@pytest.fixture
def world(tmp_path: Path) -> dict[str, Path]:
    release = tmp_path / "release"
    shutil.copytree(FIXTURES / "threshold5" / "release", release)
    ledger = tmp_path / "ledger"
    ledger.mkdir()
    (ledger / "ledger.json").write_text('{"format": "pfl-release-ledger/2"}')
    notes = tmp_path / "notes.txt"
    notes.write_text("the steward's notes\n")
    return {"release": release, "ledger": ledger, "notes": notes, "root": tmp_path}


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("target", [
    "release/manifest.json", "release/summary.md", "release/new.json", "release",
    "ledger/ledger.json", "ledger/audit.json", "notes.txt", "release/../release/manifest.json",
])
def test_a_report_over_the_release_the_ledger_or_a_foreign_file_is_refused(world, target) -> None:
    before = {name: _snapshot(world[name]) for name in ("release", "ledger")}
    notes = world["notes"].read_bytes()
    code, out, err = audit(f"release={world['release']}", f"ledger={world['ledger']}",
                           f"report={world['root'] / target}")
    assert code == 2, (code, err)
    assert "report" in err and "Traceback" not in err
    assert out == ""  # refused before any check ran
    assert {name: _snapshot(world[name]) for name in ("release", "ledger")} == before
    assert world["notes"].read_bytes() == notes


def test_a_symlink_into_the_release_is_refused(world) -> None:
    link = world["root"] / "report.json"
    os.symlink(world["release"] / "manifest.json", link)
    manifest = (world["release"] / "manifest.json").read_bytes()
    code, _, err = audit(f"release={world['release']}", f"report={link}")
    assert code == 2, err
    assert (world["release"] / "manifest.json").read_bytes() == manifest


def test_a_report_may_replace_an_earlier_audit_report(world) -> None:
    target = world["root"] / "audit.json"
    code, _, err = audit(f"release={world['release']}", f"report={target}")
    assert code == 1, err  # the fixture fails the audit; the report is written
    first = json.loads(target.read_text())
    assert first["format"].startswith("pfl-audit-report/")
    code, _, err = audit(f"release={world['release']}", f"report={target}")
    assert code == 1, err
    assert json.loads(target.read_text())["format"] == first["format"]
