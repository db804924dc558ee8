"""The seed study stratified by age band and sex on the tiny preset: released whole, audited clean.

Issue 11, item 7: such a release took 884 s and withheld 5 of its 7 tables; its audit with the
ledger (verification mode: A2 and A4 with the true values) took 564 CPU s. Here the demo releases
it and audits it with the ledger, and the auditor audits the folder alone too: both pass, and no
table is withheld. ``benchmarks/stratified_release.py`` prints the times.

The population is the one ``pfl-demo preset=tiny`` makes (seed 20230101). With the test suite's
usual tiny population (``conftest.TINY``, seed 7) the release still withholds 5 of 7 tables:
that part of item 7 is open (see the issue), and this test does not hide it by using that seed.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import TINY
from omegaconf import OmegaConf

from audit.verdict import audit_release
from cohort.config import parse_study
from extracts.codelists import load_catalogue
from extracts.generator.run import DEFAULT_CATALOGUE
from pipeline.demo import run_demo

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_tiny_seed_study_by_age_band_and_sex_is_released_whole_and_passes_the_audit_both_ways(
        tmp_path: Path) -> None:
    raw = OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "study" / "seed_study.yaml"))
    study = parse_study(raw, load_catalogue(ROOT / "conf" / "conditions" / "seed_study.yaml"))  # type: ignore[arg-type]
    work = tmp_path / "work"
    demo_tiny = replace(TINY, seed=20230101)  # conf/demo.yaml's seed
    result = run_demo(demo_tiny, load_catalogue(DEFAULT_CATALOGUE), work, max_quarantine_share=0.01,
                      study=replace(study, strata=("age_band", "sex")))
    release = next(s for s in result.stages if s.name == "release")
    assert "withheld" not in release.summary, release.summary
    manifest = json.loads((work / "release" / "manifest.json").read_text())
    assert not [t for t, entry in manifest["tables"].items() if entry.get("status") == "withheld"]
    with_ledger = json.loads((work / "release.audit.json").read_text())
    assert (with_ledger["verdict"], with_ledger["mode"]) == ("pass", "verification"), with_ledger["findings"][:5]
    alone = audit_release(work / "release")
    assert alone.passed and alone.mode == "release", [f for f in alone.findings if not f.advisory][:5]
