"""``pfl-release`` and ``pfl-audit`` as a user meets them: exit codes, refusals, broken releases.

Every case runs the command as the installed script does (in this process). The auditor must catch a release that was changed after
it was made (a tampered file, an unprotected cell, a leaked identifier column, a BSN-like number
in a value), and say why with a non-zero exit; ``pfl-release`` must refuse bad study folders and
a release the ledger cannot allow, writing nothing.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import polars as pl
import pytest
from command_runner import command_in_process
from study_builder import write_study

from audit.__main__ import main as audit_main
from audit.release import _sha256
from disclosure import Policy
from release.ledger import create_ledger
from release.make import make_release
from release.study_folder import read_study
from extracts.errors import ConfigError

REGION_SEX = {("A", "M"): 18, ("A", "F"): 2, ("B", "M"): 14, ("B", "F"): 19,
              ("C", "M"): 12, ("C", "F"): 10, ("D", "M"): 11, ("D", "F"): 14}  # fmt: skip
STRATA = {"region": list("ABCD"), "sex": ["M", "F"]}


def run(name: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The command in this process (its console script's function; the installed scripts say the
    same: tests/integration/test_commands.py), with a user's environment (``command_env``)."""
    return command_in_process(name, *args, cwd=cwd)


def audit(*args: str) -> subprocess.CompletedProcess[str]:
    """``pfl-audit`` in this process (the same entry point, without a process start each time)."""
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            audit_main(list(args))
        except SystemExit as exc:
            code = int(exc.code or 0)
    return subprocess.CompletedProcess(["pfl-audit", *args], code, out.getvalue(), err.getvalue())


def new_ledger(path: Path, *options: str) -> Path:
    """A ledger created as the data steward does, with ``pfl-ledger init``."""
    assert_exit(run("pfl-ledger", "init", "--ledger", str(path), *options, cwd=path.parent), 0, "created")
    return path


def assert_exit(proc: subprocess.CompletedProcess[str], code: int, says: str) -> None:
    both = proc.stdout + proc.stderr
    assert proc.returncode == code, f"exit {proc.returncode}, expected {code}:\n{both[-3000:]}"
    assert "Traceback" not in both
    assert says.lower() in both.lower(), both[-3000:]


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One study folder, its release through pfl-release, and the ledger."""
    root = tmp_path_factory.mktemp("release-commands")
    study = write_study(root / "study", REGION_SEX, strata=STRATA)
    proc = run("pfl-release", f"study={study}", f"out={root / 'release'}", f"ledger={new_ledger(root / 'ledger')}",
               cwd=root)
    assert_exit(proc, 0, "written to")
    assert "hidden quantities by rule" in proc.stderr
    return {"root": root, "study": study, "release": root / "release", "ledger": root / "ledger"}


def copy(made: dict[str, Path], tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(made["release"], target)
    return target


def rewrite(folder: Path, table: str, frame: pl.DataFrame) -> None:
    """Write a table as if the engine had (both files, checksums redone): only the audit can tell."""
    frame.write_parquet(folder / f"{table}.parquet")
    frame.write_csv(folder / f"{table}.csv")
    manifest = json.loads((folder / "manifest.json").read_text())
    for name in (f"{table}.parquet", f"{table}.csv"):
        manifest["files"][name] = _sha256(folder / name)
    (folder / "manifest.json").write_text(json.dumps(manifest))


# -- the audit of a good release ---------------------------------------------------------------


def test_audit_passes_a_release_alone_and_with_its_ledger_and_writes_the_report(made, tmp_path):
    proc = run("pfl-audit", f"release={made['release']}", cwd=tmp_path)
    assert_exit(proc, 0, "verdict: PASS")
    report = json.loads(made["release"].with_name("release.audit.json").read_text())
    assert report["verdict"] == "pass" and report["mode"] == "release"
    assert set(report["tables"]) == {"prevalence", "attrition", "care_use", "care_use_change", "referrals", "top", "acsc"}
    proc = audit(f"release={made['release']}", f"ledger={made['ledger']}", f"report={tmp_path / 'r.json'}")
    assert_exit(proc, 0, "verification mode")
    assert json.loads((tmp_path / "r.json").read_text())["verdict"] == "pass"


def test_release_summary_and_manifest_say_what_is_hidden_without_values(made):
    summary = (made["release"] / "summary.md").read_text()
    assert "| prevalence |" in summary and "suppressed" in summary
    manifest = json.loads((made["release"] / "manifest.json").read_text())
    assert manifest["tables"]["prevalence"]["dimensions"]["region"]["levels"] == list("ABCD")
    assert manifest["policy"]["threshold"] == 10 and manifest["keys"]["project"] == "spec"
    assert set(manifest["files"]) == {p.name for p in made["release"].iterdir()} - {"manifest.json"}
    prevalence = pl.read_parquet(made["release"] / "prevalence.parquet")
    shown = prevalence.filter(pl.col("numerator_status") == "")["numerator"]
    assert not ((shown >= 1) & (shown < 10)).any()
    assert prevalence.filter(pl.col("numerator_status") != "")["numerator"].null_count() == \
        prevalence.filter(pl.col("numerator_status") != "").height


# -- the auditor catches broken releases --------------------------------------------------------


def test_audit_fails_a_tampered_file(made, tmp_path):
    folder = copy(made, tmp_path)
    text = (folder / "prevalence.csv").read_text().replace(",spec", ",spec")
    (folder / "prevalence.csv").write_text(text + "\n")
    assert_exit(audit(f"release={folder}"), 1, "checksum")


def test_audit_fails_an_unprotected_cell(made, tmp_path):
    folder = copy(made, tmp_path)
    frame = pl.read_parquet(folder / "prevalence.parquet")
    a_f = (pl.col("region") == "A") & (pl.col("sex") == "F")
    frame = frame.with_columns(pl.when(a_f).then(2).otherwise(pl.col("numerator")).alias("numerator"),
                               pl.when(a_f).then(pl.lit("")).otherwise(pl.col("numerator_status")).alias("numerator_status"))
    rewrite(folder, "prevalence", frame)
    proc = audit(f"release={folder}")
    assert_exit(proc, 1, "visible-count")
    assert "prevalent[condition=c, region=A, sex=F, year=2019]" in proc.stdout


def test_audit_fails_a_leaked_identifier_column(made, tmp_path):
    folder = copy(made, tmp_path)
    frame = pl.read_parquet(folder / "acsc.parquet").with_columns(pl.lit("x").alias("patient_id"))
    rewrite(folder, "acsc", frame)
    proc = run("pfl-audit", f"release={folder}", cwd=tmp_path)
    assert_exit(proc, 1, "identifier")
    assert "undescribed-column" in proc.stdout


def test_audit_fails_a_bsn_like_number_in_a_value(made, tmp_path):
    folder = copy(made, tmp_path)
    frame = pl.read_parquet(folder / "referrals.parquet").with_columns(pl.lit("123456782").alias("condition"))
    rewrite(folder, "referrals", frame)
    proc = audit(f"release={folder}")
    assert_exit(proc, 1, "11-test")
    assert "123456782" not in proc.stdout + proc.stderr  # the finding names the column, not the value


def test_audit_fails_an_unlisted_file(made, tmp_path):
    folder = copy(made, tmp_path)
    (folder / "extra.csv").write_text("a\n1\n")
    assert_exit(audit(f"release={folder}"), 1, "unlisted-file")


@pytest.mark.parametrize(("change", "code", "says"), [
    ("empty", 3, "not a release"),
    ("garbage manifest", 4, "not a readable JSON manifest"),
    ("listed file missing", 3, "not a file of the release"),
    ("no setting", 2, "missing setting"),
])
def test_audit_exit_codes_for_what_is_not_a_release(made, tmp_path, change, code, says):
    folder = copy(made, tmp_path)
    args = [f"release={folder}"]
    if change == "empty":
        shutil.rmtree(folder)
        folder.mkdir()
    elif change == "garbage manifest":
        (folder / "manifest.json").write_bytes(b"\xff\xfe not json")
    elif change == "listed file missing":
        (folder / "top.csv").unlink()
    else:
        args = []
    assert_exit(audit(*args), code, says)


# -- pfl-release refuses bad input --------------------------------------------------------------


def _study_with(made, tmp_path: Path, table: str, change) -> Path:
    study = tmp_path / "study"
    shutil.copytree(made["study"], study)
    if change is None:
        (study / f"{table}.parquet").unlink()
    elif change == "garbage":
        (study / f"{table}.parquet").write_bytes(b"not parquet")
    else:
        change(pl.read_parquet(study / f"{table}.parquet")).write_parquet(study / f"{table}.parquet")
    return study


@pytest.mark.parametrize(("table", "change", "code", "says"), [
    ("care_use", None, 3, "care_use.parquet is missing"),
    ("prevalence", "garbage", 4, "not a readable Parquet file"),
    ("referrals", lambda f: f.with_columns(n=pl.col("N") + 1), 5, "'n' exceeds 'N'"),
])
def test_release_refuses_a_broken_study_folder_and_writes_nothing(made, tmp_path, table, change, code, says):
    study = _study_with(made, tmp_path, table, change)
    proc = run("pfl-release", f"study={study}", f"out={tmp_path / 'out'}", f"ledger={new_ledger(tmp_path / 'ledger')}",
               cwd=tmp_path)
    assert_exit(proc, code, says)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("table", "change", "code", "says"), [
    ("referrals", lambda f: f.drop("N"), 4, "missing ['N']"),
    ("referrals", lambda f: f.with_columns(pl.col("year").cast(pl.String)), 5, "expected int"),
    ("attrition", lambda f: f.with_columns(pl.col("after") + 1), 5, "'before' is not 'excluded' + 'after'"),
    ("prevalence", lambda f: f.with_columns(pl.col("numerator") * -1), 5, "negative"),
    ("care_use", lambda f: f.with_columns(pl.lit("Total").alias("discipline")), 5, "reserved level 'Total'"),
])
def test_study_folder_problems_name_file_column_and_rule(made, tmp_path, table, change, code, says):
    from release.errors import ReleaseError

    study = _study_with(made, tmp_path, table, change)
    with pytest.raises(ReleaseError, match=re.escape(says)) as caught:
        read_study(study)
    assert caught.value.exit_code == code


def test_a_quantity_in_two_versions_within_one_study_is_refused(made, tmp_path):
    from release.errors import StudyContractError

    study = _study_with(made, tmp_path, "care_use", lambda f: f.with_columns(pl.col("N") + 1))
    with pytest.raises(StudyContractError, match="one quantity with two values"):
        make_release(study, tmp_path / "out", ledger=create_ledger(tmp_path / "ledger", Policy()).path)
    assert not (tmp_path / "out").exists()


def test_release_refuses_a_looser_study_policy_and_a_ledger_inside_the_release(made, tmp_path):
    base = [f"study={made['study']}", f"out={tmp_path / 'out'}"]
    proc = run("pfl-release", *base, f"ledger={new_ledger(tmp_path / 'ledger')}", "study_policy.threshold=5",
               cwd=tmp_path)
    assert_exit(proc, 2, "stricter, never looser")
    with pytest.raises(ConfigError, match="holds the input ledger"):
        make_release(made["study"], tmp_path / "out", ledger=tmp_path / "out" / "ledger")
    assert not (tmp_path / "out").exists()


def test_release_with_a_stricter_study_policy_records_it(made, tmp_path):
    proc = run("pfl-release", f"study={made['study']}", f"out={tmp_path / 'out'}",
               f"ledger={new_ledger(tmp_path / 'ledger')}", "study_policy.threshold=15", cwd=tmp_path)
    assert_exit(proc, 0, "written to")
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["policy"]["threshold"] == 15
    assert manifest["policy_source"]["study_overrides"] == {"threshold": 15}
    assert_exit(audit(f"release={tmp_path / 'out'}"), 0, "T = 15")


# -- two releases through the commands (disclosure.md, "Two releases") ---------------------------


def test_second_release_that_gives_a_hidden_cell_is_refused_and_the_audit_catches_it(tmp_path):
    # Release 1: region x sex from data where A-F is 0 (A shows 18). Release 2: region only,
    # after A-F became 2 (A = 20). Together: A-F = 2.
    first = dict(REGION_SEX)
    first[("A", "F")] = 0
    s1 = write_study(tmp_path / "s1", first, strata=STRATA)
    s2 = write_study(tmp_path / "s2", [20, 33, 22, 25], strata={"region": list("ABCD")}, rest=2000)
    assert_exit(run("pfl-release", f"study={s1}", f"out={tmp_path / 'r1'}", f"ledger={new_ledger(tmp_path / 'L')}",
                    cwd=tmp_path), 0, "written to")
    index = (tmp_path / "L" / "ledger.json").read_text()
    proc = run("pfl-release", f"study={s2}", f"out={tmp_path / 'r2'}", f"ledger={tmp_path / 'L'}", cwd=tmp_path)
    assert_exit(proc, 11, "the ledger refuses the release")
    assert "prevalent[condition=c, region=A, year=2019]" in proc.stderr
    assert not (tmp_path / "r2").exists()
    assert (tmp_path / "L" / "ledger.json").read_text() == index
    # Made without that ledger, release 2 passes alone; its audit against the ledger fails (A5).
    assert_exit(run("pfl-release", f"study={s2}", f"out={tmp_path / 'r2'}", f"ledger={new_ledger(tmp_path / 'L2')}",
                    cwd=tmp_path), 0, "written to")
    assert_exit(audit(f"release={tmp_path / 'r2'}"), 0, "PASS")
    proc = audit(f"release={tmp_path / 'r2'}", f"ledger={tmp_path / 'L'}")
    assert_exit(proc, 1, "A5")
    assert "two versions" in proc.stdout
