"""Incidence and index-date cohorts go through ``pfl-study``, ``pfl-release`` and ``pfl-audit``.

On the tiny generated population: each study of schema 2 is run by ``pfl-study``, its tables are
released under the ledger's policy by ``pfl-release`` and the release passes the independent
audit, which checks the cohort table and the study's own attrition chain (its criteria and the
entry step) with the relations the release format gives them. The commands run in this process,
through their console scripts' functions (``command_runner.command_in_process``: a new
interpreter spent a second importing for each); tests/integration/test_commands.py checks that
the installed scripts say what those functions say.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from command_runner import command_in_process


def _ok(proc) -> str:  # noqa: ANN001
    both = proc.stdout + proc.stderr
    assert proc.returncode == 0, both[-3000:]
    assert "Traceback" not in both
    return both


@pytest.mark.parametrize(("study", "overrides", "cohort_table"), [
    # the incidence example without its costs outcome (claimed costs come with cohort.costs)
    ("diabetes_incidence_2021", ["study.cohort.years=[2020,2021]",
                                 "study.outcomes=[{type: contacts, disciplines: [MSZ, HA], window: {days: [0, 365]}}]"],
     "incidence"),
    ("diabetes_index_2021", [], "index_cohort"),
])
def test_cohort_study_is_released_and_audited(tiny_linked: Path, tmp_path: Path, study: str, overrides: list[str],
                                              cohort_table: str) -> None:
    _ok(command_in_process("pfl-study", f"study={study}", *overrides, f"linked={tiny_linked}", f"out={tmp_path / 'study'}",
                    cwd=tmp_path))
    manifest = json.loads((tmp_path / "study" / "manifest.json").read_text())
    assert manifest["cohort"]["chain"][-1] == "no_prior_cancer" and "entry" in manifest["cohort"]["chain"]
    counts = pl.read_parquet(tmp_path / "study" / f"{cohort_table}.parquet")
    assert counts["numerator"].sum() > 0  # a cohort, not an empty table
    _ok(command_in_process("pfl-ledger", "init", "--ledger", str(tmp_path / "ledger"), cwd=tmp_path))
    released = _ok(command_in_process("pfl-release", f"study={tmp_path / 'study'}", f"out={tmp_path / 'release'}",
                               f"ledger={tmp_path / 'ledger'}", cwd=tmp_path))
    assert f"{cohort_table}:" in released
    audited = _ok(command_in_process("pfl-audit", f"release={tmp_path / 'release'}", cwd=tmp_path))
    assert "verdict: PASS" in audited
    assert f"{cohort_table}: PASS" in audited and "attrition: PASS" in audited
    release_manifest = json.loads((tmp_path / "release" / "manifest.json").read_text())
    chain = next(r for r in release_manifest["relations"] if r["type"] == "chain")
    assert chain["order"] == ["base", *manifest["cohort"]["chain"]]


def test_release_refuses_attrition_steps_the_manifest_does_not_name(tiny_linked: Path, tmp_path: Path) -> None:
    _ok(command_in_process("pfl-study", "study=diabetes_index_2021", f"linked={tiny_linked}", f"out={tmp_path / 'study'}",
                    cwd=tmp_path))
    path = tmp_path / "study" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["cohort"]["chain"] = [s for s in manifest["cohort"]["chain"] if s != "registered_1y"]
    path.write_text(json.dumps(manifest))
    _ok(command_in_process("pfl-ledger", "init", "--ledger", str(tmp_path / "ledger"), cwd=tmp_path))
    proc = command_in_process("pfl-release", f"study={tmp_path / 'study'}", f"out={tmp_path / 'release'}",
                       f"ledger={tmp_path / 'ledger'}", cwd=tmp_path)
    assert proc.returncode == 5, proc.stderr[-2000:]
    assert "not in the manifest's chain" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "release").exists()


PREVALENCE_CUSTOM = """\
schema: 2
name: prevalence_custom
cohort: {type: prevalence, years: [2021, 2023],
         conditions: [diabetes, cardiovascular, {name: my_htn, codes: {icpc: [K86, K87]}}]}
criteria:
  - {name: X1, rule: X1}
  - {name: X5, rule: X5}
  - {name: adults, rule: age, min: 18}
  - {name: no_recent_cancer, rule: has_not, condition: cancer, window: {years: [-3, -1]}}
outcomes:
  - {type: contacts, disciplines: [HA, MSZ, HAP]}
strata: [sex]
"""


def test_prevalence_study_with_own_criteria_is_released_and_audited(tiny_linked: Path, tmp_path: Path) -> None:
    (tmp_path / "config" / "study").mkdir(parents=True)
    (tmp_path / "config" / "study" / "prevalence_custom.yaml").write_text(PREVALENCE_CUSTOM)
    _ok(command_in_process("pfl-study", "--config-dir", str(tmp_path / "config"), "study=prevalence_custom",
                    f"linked={tiny_linked}", f"out={tmp_path / 'study'}", cwd=tmp_path))
    steps = pl.read_parquet(tmp_path / "study" / "attrition.parquet")["step"].unique(maintain_order=True).to_list()
    assert steps == ["base", "X1", "X5", "adults", "no_recent_cancer"]
    _ok(command_in_process("pfl-ledger", "init", "--ledger", str(tmp_path / "ledger"), cwd=tmp_path))
    _ok(command_in_process("pfl-release", f"study={tmp_path / 'study'}", f"out={tmp_path / 'release'}",
                    f"ledger={tmp_path / 'ledger'}", cwd=tmp_path))
    audited = _ok(command_in_process("pfl-audit", f"release={tmp_path / 'release'}", cwd=tmp_path))
    assert "verdict: PASS" in audited


def test_every_table_the_study_writes_reaches_the_release(tiny_linked: Path, tmp_path: Path) -> None:
    # An index cohort with contacts, contact bands and costs: before, the release built only the
    # tables of the seed design plus the cohort table, and dropped contact_bands and costs without
    # a word (issue 12: disclosure control on every table a study produces).
    study = tmp_path / "study"
    _ok(command_in_process("pfl-study", "study=asthma_copd_index_followup",
                    "study.outcomes=[{type: contact_bands, disciplines: [HA, MSZ], window: {days: [0, 365]}, "
                    "bands: [1, 3]}, {type: contacts, disciplines: [HA, MSZ], window: {days: [0, 365]}}, "
                    "{type: costs, disciplines: [MSZ], window: {days: [0, 365]}}, "
                    "{type: referrals, window: {days: [0, 365]}}, {type: top, n: 5, window: {days: [0, 365]}}, "
                    "{type: acsc, codes: ['0322:1311', '0320:302'], window: {days: [0, 730]}}]",
                    f"linked={tiny_linked}", f"out={study}", cwd=tmp_path))
    written = {p.stem for p in study.glob("*.parquet")}
    assert {"contact_bands", "costs", "care_use", "referrals", "top", "acsc"} <= written
    _ok(command_in_process("pfl-ledger", "init", "--ledger", str(tmp_path / "ledger"), cwd=tmp_path))
    _ok(command_in_process("pfl-release", f"study={study}", f"out={tmp_path / 'release'}",
                    f"ledger={tmp_path / 'ledger'}", cwd=tmp_path))
    released = json.loads((tmp_path / "release" / "manifest.json").read_text())
    listed = set(released["tables"]) | set(released.get("withheld", {}))
    assert written - {"care_use_change"} <= listed | {"care_use_change"}, written - listed
    bands = pl.read_parquet(tmp_path / "release" / "contact_bands.parquet")
    assert set(bands["band"]) >= {"0", "1-2", "3+", "Total"}
    # The bands add up to their Total: one hidden cell among them would be the difference of the
    # others, so a group hides none or at least two (the margin relation reached the protection).
    hidden = bands.group_by("year", "condition", "discipline").agg((pl.col("persons_status") != "").sum().alias("h"))
    assert hidden.filter(pl.col("h") == 1).is_empty()
    assert hidden["h"].sum() > 0  # the tiny cohort has small bands: the check above is not vacuous
    relations = json.loads((tmp_path / "release" / "manifest.json").read_text())["relations"]
    assert {"type": "margin", "quantity": "band_persons", "dimension": "band", "levels": ["0", "1-2", "3+"]} in relations
    audited = _ok(command_in_process("pfl-audit", f"release={tmp_path / 'release'}", cwd=tmp_path))
    assert "contact_bands: PASS" in audited and "costs: PASS" in audited and "verdict: PASS" in audited
    assert all(f"{table}: PASS" in audited for table in ("referrals", "top", "acsc")), audited


@pytest.mark.parametrize(("study_name", "tables"), [
    # contacts in the year after, contact bands and costs over two years of a prevalence cohort
    ("diabetes_prevalence_windows", ("care_use", "contact_bands", "costs")),
    # the insured population: persons without a GP record (no region) in every table
    ("copd_insured_claims", ("care_use", "costs", "referrals", "top", "acsc")),
])
def test_prevalence_study_with_outcomes_in_windows_or_of_the_insured_is_released_and_audited(
        tiny_linked: Path, tmp_path: Path, study_name: str, tables: tuple[str, ...]) -> None:
    # Issue 12, item 3: each table reaches the release and passes the independent audit.
    study = tmp_path / "study"
    _ok(command_in_process("pfl-study", f"study={study_name}", f"linked={tiny_linked}", f"out={study}", cwd=tmp_path))
    written = {p.stem for p in study.glob("*.parquet")}
    assert {"prevalence", *tables} <= written
    _ok(command_in_process("pfl-ledger", "init", "--ledger", str(tmp_path / "ledger"), cwd=tmp_path))
    _ok(command_in_process("pfl-release", f"study={study}", f"out={tmp_path / 'release'}",
                    f"ledger={tmp_path / 'ledger'}", cwd=tmp_path))
    released = json.loads((tmp_path / "release" / "manifest.json").read_text())
    assert set(tables) <= set(released["tables"]) | set(released.get("withheld", {}))
    audited = _ok(command_in_process("pfl-audit", f"release={tmp_path / 'release'}", cwd=tmp_path))
    assert "verdict: PASS" in audited
    assert all(f"{table}: PASS" in audited for table in tables), audited
