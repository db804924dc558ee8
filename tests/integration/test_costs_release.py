"""Claimed costs through pfl-release and pfl-audit (issue 12): magnitude tables end to end.

A study folder with a planted dominant contributor is released: that cell's total and mean are
hidden, the others shown in whole euros, and the independent audit passes, alone and with the
study folder (verification mode). A release edited by hand to show the dominant cell, or a total
over too few persons, or a mean that is not total / persons, fails the audit. Last, the tiny
preset: pfl-study with costs, pfl-release, pfl-audit.
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

from audit.release import _sha256
from audit.verdict import audit_release
from disclosure import Policy
from release.ledger import create_ledger
from release.make import make_release

SAFE = [1000] * 12  # twelve persons of 10.00 euros: 120 euros, mean 10
DOMINANT = [91_000] + [1_000] * 9  # one person holds 91 % of the cell
FEW = [5_000] * 5  # five persons


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("costs-release")
    study = write_study(root / "study", {("M",): 40, ("F",): 30, ("X",): 25}, strata={"sex": ["M", "F", "X"]},
                        costs={("M",): SAFE, ("F",): DOMINANT, ("X",): FEW})
    create_ledger(root / "ledger", Policy())
    make_release(study, root / "release", ledger=root / "ledger")
    return {"root": root, "study": study, "release": root / "release", "ledger": root / "ledger"}


def costs_of(release: Path) -> dict[str, dict]:
    frame = pl.read_parquet(release / "costs.parquet")
    return {row["sex"]: row for row in frame.iter_rows(named=True)}


def edit(made: dict[str, Path], tmp_path: Path, sex: str, **values: object) -> Path:
    """A copy of the release with one costs row changed, files and checksums redone."""
    target = tmp_path / "edited"
    shutil.copytree(made["release"], target)
    frame = pl.read_parquet(target / "costs.parquet")
    row = pl.col("sex") == sex
    frame = frame.with_columns(pl.when(row).then(pl.lit(v)).otherwise(pl.col(c)).cast(frame.schema[c]).alias(c)
                               for c, v in values.items())
    frame.write_parquet(target / "costs.parquet", statistics=False)
    frame.write_csv(target / "costs.csv")
    manifest = json.loads((target / "manifest.json").read_text())
    for name in ("costs.parquet", "costs.csv"):
        manifest["files"][name] = _sha256(target / name)
    (target / "manifest.json").write_text(json.dumps(manifest))
    return target


def findings(report, check: str) -> list:
    return [f for f in report.findings if f.check == check and not f.advisory]


def test_release_hides_a_dominant_contributor_and_shows_safe_costs_in_whole_euros(made):
    costs = costs_of(made["release"])
    assert (costs["M"]["total"], costs["M"]["mean"], costs["M"]["total_status"]) == (120, 10, "")
    for sex in ("F", "X"):  # 91 % held by one person; five persons only
        assert costs[sex]["total"] is None and costs[sex]["mean"] is None
        assert costs[sex]["total_status"] == costs[sex]["mean_status"] == "suppressed"
    assert costs["X"]["persons"] is None  # five persons: the count itself is a primary
    assert costs["F"]["persons"] == 10  # ten persons are shown; their costs are not
    columns = pl.read_parquet(made["release"] / "costs.parquet").columns
    assert not [c for c in columns if "largest" in c or "second" in c or "cents" in c]


def test_release_manifest_declares_the_magnitude_rule_and_relations(made):
    manifest = json.loads((made["release"] / "manifest.json").read_text())
    entry = manifest["tables"]["costs"]
    assert entry["magnitudes"]["total"]["rule"] == {"contributors": 10, "p_percent": 10.0,
                                                   "dominance": {"n": 2, "k": 90.0}}
    assert entry["magnitudes"]["total"]["margins"] == "none" and entry["dimensions"] == {}
    assert {"type": "magnitude_of", "table": "costs", "magnitude": "total", "quantity": "cost_total",
            "persons": "persons", "mean": "mean"} in manifest["relations"]
    text = (made["release"] / "manifest.json").read_text() + (made["release"] / "summary.md").read_text()
    # No statistic of a person leaves the study folder. Whole numbers only: a checksum in the
    # manifest may hold the digits "910" (seen once in a run).
    assert not re.search(r"(?<![0-9a-fA-F])(91000|910)(?![0-9a-fA-F])", text)


def test_audit_passes_the_release_alone_and_with_its_study_folder(made):
    alone = audit_release(made["release"], ledger=made["ledger"])
    assert alone.passed, [f for f in alone.findings if not f.advisory]
    verified = audit_release(made["release"], study=made["study"])
    assert verified.passed and verified.mode == "verification"


def test_a_release_edited_to_show_the_dominant_cell_fails_the_audit(made, tmp_path):
    shown = edit(made, tmp_path, "F", total=1000, total_status="", mean=100, mean_status="")
    assert audit_release(shown).passed  # nothing in the release alone tells dominance ...
    report = audit_release(shown, study=made["study"])  # ... the study folder's statistics do
    (finding,) = findings(report, "magnitude")
    assert "fails the p %-rule, dominance" in finding.message and finding.table == "costs"
    assert "910" not in finding.message and "1000" not in finding.message


def test_a_release_edited_to_show_costs_of_too_few_persons_fails_the_audit(made, tmp_path):
    shown = edit(made, tmp_path, "X", total=250, total_status="", mean=50, mean_status="")
    report = audit_release(shown)
    assert not report.passed
    messages = " | ".join(f.message for f in findings(report, "magnitude"))
    assert "hidden persons count or fewer than 10 persons" in messages
    assert "a mean is shown whose total or persons count is hidden" in messages


def test_a_release_edited_with_a_mean_that_is_not_total_over_persons_fails_the_audit(made, tmp_path):
    report = audit_release(edit(made, tmp_path, "M", mean=12))
    assert [f.message for f in findings(report, "magnitude")] == [
        "1 row(s): a mean differs from total / persons beyond the rounding to whole euros"]


def test_a_second_release_of_costs_into_the_same_ledger_withholds_them(made, tmp_path):
    ledger = tmp_path / "ledger"
    shutil.copytree(made["ledger"], ledger)
    result = make_release(made["study"], tmp_path / "again", ledger=ledger)
    assert "costs" in result.content.withheld and "released before" in result.content.withheld["costs"]
    assert not (tmp_path / "again" / "costs.parquet").exists()
    assert audit_release(tmp_path / "again", ledger=ledger).passed


def test_tiny_preset_study_with_costs_is_released_and_passes_the_audit(tiny_linked: Path, tmp_path: Path):
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        proc = command_in_process(args[0], *args[1:], cwd=tmp_path)  # the console script's function
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
        assert "Traceback" not in proc.stdout + proc.stderr
        return proc

    study, release, ledger = tmp_path / "study", tmp_path / "release", tmp_path / "ledger"
    run("pfl-study", f"linked={tiny_linked}", f"out={study}",
        "study.costs={sectors:[MSZ,FT,GGZ_B]}")
    assert (study / "costs.parquet").is_file()
    run("pfl-ledger", "init", "--ledger", str(ledger))
    run("pfl-release", f"study={study}", f"out={release}", f"ledger={ledger}")
    costs = pl.read_parquet(release / "costs.parquet")
    assert set(costs["sector"]) == {"MSZ", "FT", "GGZ_B"}
    assert (costs["total_status"] == "").any(), "expected some costs shown on the tiny preset"
    proc = run("pfl-audit", f"release={release}", f"ledger={ledger}", f"study={study}",
               f"report={tmp_path / 'audit.json'}")
    assert "costs: PASS" in proc.stdout and "verdict: PASS" in proc.stdout


def test_a_hidden_total_under_a_shown_total_that_contains_it_fails_the_audit(made, tmp_path):
    # A manifest saying that F's persons are within M's (as the costs of a condition hold those of
    # a condition it contains): M's shown total would bound F's hidden one from above.
    target = tmp_path / "nested"
    shutil.copytree(made["release"], target)
    manifest = json.loads((target / "manifest.json").read_text())
    manifest["relations"].append({"type": "part_of", "part": "cost_persons", "whole": "cost_persons",
                                  "where": {"sex": "F"}, "drop": [], "set": {"sex": "M"},
                                  "complement": "in:M:cost_persons"})
    (target / "manifest.json").write_text(json.dumps(manifest))
    (finding,) = findings(audit_release(target), "magnitude-margin")
    assert "a hidden total lies under a shown total" in finding.message
    assert finding.cells == ("cost_persons[condition=c, sector=MSZ, sex=F, year=2019]",)


def test_the_audit_with_the_ledger_fails_costs_released_twice(made, tmp_path):
    # A second release of the same costs, made outside the ledger's care and put into it by hand.
    ledger = tmp_path / "ledger"
    shutil.copytree(made["ledger"], ledger)
    (first,) = (ledger / "releases").iterdir()
    twice = ledger / "releases" / f"{first.name}-copy"
    shutil.copytree(first, twice)
    manifest = json.loads((twice / "manifest.json").read_text())
    manifest["release_id"] = twice.name
    (twice / "manifest.json").write_text(json.dumps(manifest))
    report = audit_release(made["release"], ledger=ledger)
    assert [f.message for f in findings(report, "A5") if f.table == "costs"] == [
        f"magnitudes released again over the same population (also in {twice.name}): two releases of them can "
        "be differenced"]
