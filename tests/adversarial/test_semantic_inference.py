"""Issue 11, items 2, 5 and 6: what an attacker derives from what the tables *mean*.

The attacker (:mod:`adversarial.semantic_attack`) adds, with its own code and from the public
study configuration only, the relations the definitions imply (the age rule of the frail
elderly, all-cause care in an age band, attrition subsets, complements adding up over a
stratum, persons <= contacts, rank gaps) to the equations the manifest declares, and bounds every
hidden cell with the auditor's integer programs against the true values of the study folder.

Releases the engine made before the fix are kept as fixtures (``tests/fixtures/releases``): the
attacker recovers hidden counts from them and the strengthened auditor fails them. Releases made
now resist the attacker and pass the audit.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from omegaconf import OmegaConf
from study_builder import write_study

from adversarial.semantic_attack import build, findings, study_truth
from audit import audit_release
from cohort.config import StudyConfig, parse_study
from disclosure import Policy
from cohort.output import population_fingerprint
from cohort.output import write_study as write_study_folder
from release.ledger import create_ledger
from release.make import make_release
from cohort.study import run_study
from extracts.codelists import parse_catalogue

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "releases"
BANDS = ["18-64", "65-79", "80+"]
# Two hidden complements (N - n = 3 and 3) whose sum is the Total's N - n (63) less 80+'s (57).
COMPLEMENT_SUM = {"numerators": [40, 30, 100], "care": {("18-64",): 37, ("65-79",): 27, ("80+",): 43}}


def seed_study(strata: list[str]) -> StudyConfig:
    """The public seed study (conf/), with the given strata."""
    catalogue = parse_catalogue(OmegaConf.to_container(OmegaConf.load(ROOT / "conf/conditions/seed_study.yaml")))
    raw = OmegaConf.to_container(OmegaConf.load(ROOT / "conf/study/seed_study.yaml"))
    raw["strata"] = strata
    return parse_study(raw, catalogue)


def blocking(report) -> set[str]:
    return {f.check for f in report.findings if not f.advisory}


# Releases of the engine before the fix -------------------------------------------------------
def test_attacker_pins_frail_elderly_of_80_plus_in_the_release_made_before_the_fix() -> None:
    folder = FIXTURES / "tiny_age_band_v0"
    attack = build(folder / "release", seed_study(["age_band"]))
    found = findings(attack, study_truth(folder / "study", ("age_band",)))
    assert "A1 prevalent[age_band=80+, condition=frail_elderly, year=2019]" in found
    assert any(f.startswith("rank-gap") for f in found)


def test_strengthened_audit_fails_the_age_band_release_made_before_the_fix() -> None:
    report = audit_release(FIXTURES / "tiny_age_band_v0" / "release")
    assert not report.passed
    # No definitions: the relations they imply cannot be rebuilt; top lists announce withheld rows.
    assert {"definitions", "withheld-row"} <= blocking(report)


def test_strengthened_audit_finds_the_sum_of_two_hidden_complements_made_before_the_fix() -> None:
    report = audit_release(FIXTURES / "complement_sum_v0" / "release")
    a3 = [f for f in report.findings if f.check == "A3"]
    assert a3, "the hidden complements of 18-64 and 65-79 sum to 63 - 57 = 6"
    assert all("not:care_use" in cell for f in a3 for cell in f.cells)


# Releases made now -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def age_band_release(tiny_linked: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A release of the tiny seed study stratified by age band (study folder, release folder)."""
    work = tmp_path_factory.mktemp("semantic")
    config = seed_study(["age_band"])
    tables = run_study(tiny_linked, config)
    manifest = json.loads((tiny_linked / "manifest.json").read_text())
    study = write_study_folder(tables, work / "study", config, linked_manifest=manifest,
                               population=population_fingerprint(tiny_linked))
    make_release(study, work / "release", ledger=create_ledger(work / "ledger", Policy()).path)
    return study, work / "release"


def test_age_band_release_of_the_tiny_study_resists_the_semantic_attacker(age_band_release) -> None:
    study, release = age_band_release
    attack = build(release, seed_study(["age_band"]))
    assert attack.semantic, "the attacker found no rule to use: the test would prove nothing"
    assert findings(attack, study_truth(study, ("age_band",))) == []


def test_age_band_release_declares_the_age_rule_and_passes_the_audit(age_band_release) -> None:
    _, release = age_band_release
    manifest = json.loads((release / "manifest.json").read_text())
    age_rules = [r for r in manifest["relations"] if r["type"] == "equal" and r["right"] == "population"
                 and r["where"].get("condition") == "frail_elderly"]
    assert age_rules and age_rules[0]["where"]["age_band"] == ["80+"]
    assert manifest["definitions"]["conditions"]["frail_elderly"]["min_age"] == 80
    report = audit_release(release)
    assert report.passed, [f for f in report.findings if not f.advisory]


def test_top_lists_show_no_rank_gap_and_no_count_of_withheld_rows(age_band_release) -> None:
    study, release = age_band_release
    manifest = json.loads((release / "manifest.json").read_text())
    assert "withheld_rows" not in manifest["tables"]["top"]
    small = pl.read_parquet(study / "top.parquet").filter(pl.col("persons") < 10)
    assert small.height, "the tiny study has no small top-list row: the test would prove nothing"
    top = pl.read_parquet(release / "top.parquet")
    for (_year, _discipline), rows in top.group_by("year", "discipline"):
        assert sorted(rows["rank"]) == list(range(1, rows.height + 1))
    assert "rows of code groups with fewer than T persons" not in (release / "summary.md").read_text()


def test_sum_of_hidden_complements_is_not_derivable(tmp_path: Path) -> None:
    study = write_study(tmp_path / "study", COMPLEMENT_SUM["numerators"], strata={"age_band": BANDS},
                        care=COMPLEMENT_SUM["care"])
    make_release(study, tmp_path / "release", ledger=create_ledger(tmp_path / "ledger", Policy()).path)
    report = audit_release(tmp_path / "release")
    assert report.passed, [f for f in report.findings if not f.advisory]
    care = pl.read_parquet(tmp_path / "release" / "care_use.parquet")
    # N - n of Total and of 80+ both shown would give the sum of the other two (6): one is hidden.
    shown = care.filter(pl.col("n_status") == "")["age_band"].to_list()
    assert not {"Total", "80+"} <= set(shown)
