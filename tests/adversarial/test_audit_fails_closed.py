"""The auditor fails closed when something it was asked to use is missing (disclosure.md, "The auditor").

``ledger=`` asks for A5 over the earlier releases and for verification mode (A2 and A4 with the
steward's record of this release); ``study=`` asks for the magnitude rules on the study's
statistics. When the folder given is no ledger, holds no (readable) record of the release, or is
no study folder, the audit must say what is missing and exit non-zero: it must never pass the
release in release mode, checking less than the auditor asked for.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from command_runner import audit_in_process
from study_builder import write_study

from audit import audit_release
from audit.errors import AuditError, ReleaseFormatError, ReleaseNotFoundError
from disclosure import Policy
from release.ledger import create_ledger
from release.make import make_release


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("fails-closed")
    study = write_study(root / "study", [3, 12, 16, 23], strata={"region": list("abcd")})
    create_ledger(root / "ledger", Policy())
    out = make_release(study, root / "release", ledger=root / "ledger").out
    return {"root": root, "study": study, "release": out, "ledger": root / "ledger"}


def test_audit_with_its_ledger_passes_in_verification_mode(made: dict[str, Path]) -> None:
    report = audit_release(made["release"], ledger=made["ledger"])
    assert report.passed and report.mode == "verification"


def test_audit_refuses_a_ledger_folder_that_does_not_exist(made: dict[str, Path]) -> None:
    with pytest.raises(ReleaseNotFoundError, match=r"ledger.*ledger\.json"):
        audit_release(made["release"], ledger=made["root"] / "no-such-ledger")


def test_audit_with_a_ledger_without_the_record_of_the_release_fails(made: dict[str, Path], tmp_path: Path) -> None:
    create_ledger(tmp_path / "other", Policy())  # a ledger, but not the release's: no record of it
    report = audit_release(made["release"], ledger=tmp_path / "other")
    assert not report.passed and report.mode == "release"
    assert [f.check for f in report.findings if not f.advisory] == ["ledger"]
    assert "no record of this release" in report.tables["release"]["findings"][0]["message"]


def test_audit_refuses_an_unreadable_record_of_the_release(made: dict[str, Path], tmp_path: Path) -> None:
    import shutil

    shutil.copytree(made["ledger"], tmp_path / "ledger")
    (record,) = (tmp_path / "ledger" / "records").glob("*.json")
    record.write_text("{not json")
    with pytest.raises(ReleaseFormatError, match="record"):
        audit_release(made["release"], ledger=tmp_path / "ledger")


def test_audit_refuses_a_study_folder_that_does_not_exist(made: dict[str, Path]) -> None:
    with pytest.raises(ReleaseNotFoundError, match="study"):
        audit_release(made["release"], study=made["root"] / "no-such-study")


@pytest.mark.parametrize("setting", ["ledger", "study"])
def test_pfl_audit_exits_3_naming_what_is_missing_never_passing(made: dict[str, Path], setting: str) -> None:
    missing = made["root"] / f"no-such-{setting}"
    code, out, err = audit_in_process(f"release={made['release']}", f"{setting}={missing}",
                                      f"report={made['root'] / f'{setting}.audit.json'}")
    assert code == 3, (out, err)
    assert setting in err and "PASS" not in out and "Traceback" not in err
    assert not (made["root"] / f"{setting}.audit.json").exists()

