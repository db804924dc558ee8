"""The demo job: generate built-in extracts and run every stage that exists on them.

Stages write into one working folder::

    <work>/extracts/            generated supplier extracts (ehr/, claims/) and truth/
    <work>/keys/                demo keys (owner-only files; real deployments keep them apart)
    <work>/pseudonymisation/    per supplier: for_ttp/, for_research/, supplier_report.json;
                                ttp/: token -> project pseudonym maps and the TTP's report
    <work>/linked/              the research environment's linked layout and linkage report
    <work>/study/               the study's tables (pre-disclosure aggregates, not releasable)
    <work>/release/             the study's tables under disclosure control (pfl-release)
    <work>/release.audit.json   the independent audit of the release (pfl-audit)
    <work>/report.html          the release's HTML report, made from the release alone (pfl-report)
    <work>/ledger/<config>/     the release ledger, one per study configuration (A5)
    <work>/logs/                Hydra's record of each run's configuration (key references only)

Rerunning the demo reuses extracts generated with the same preset, seed and generator version.
Regenerated extracts are another population: the demo then starts its ledgers afresh.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from audit.verdict import audit_release
from cohort.config import StudyConfig
from cohort.disclosure import Policy
from cohort.output import config_hash, write_study
from cohort.release.make import make_release
from cohort.study import run_study
from extracts.codelists import ConditionCatalogue
from extracts.generator.config import GeneratorConfig
from extracts.generator.run import GENERATOR_VERSION, GenerationResult, generate
from linkage.evaluate import linkage_quality
from linkage.link import link
from pseudonymisation.keys import Key, generate_key, load_key
from pseudonymisation.supplier import run_supplier_step
from pseudonymisation.ttp import run_ttp_step
from report import write_report

__all__ = ["DemoResult", "StageResult", "run_demo"]


@dataclass
class StageResult:
    name: str
    seconds: float
    summary: str
    outputs: list[Path] = field(default_factory=list)


@dataclass
class DemoResult:
    work: Path
    stages: list[StageResult]


def _reusable(out: Path, config: GeneratorConfig) -> bool:
    manifest = out / "manifest.json"
    if not manifest.is_file():
        return False
    m = json.loads(manifest.read_text())
    return (m.get("preset"), m.get("seed"), m.get("generator_version")) == (
        config.preset, config.seed, GENERATOR_VERSION,
    )


def _demo_key(path: Path, role: str) -> Key:
    return load_key(path, role) if path.exists() else generate_key(path, role)


def run_demo(
    config: GeneratorConfig,
    catalogue: ConditionCatalogue,
    work: Path,
    *,
    max_quarantine_share: float,
    project: str = "demo",
    study: StudyConfig | None = None,
    policy: Policy | None = None,
    on_stage: Callable[[str], None] = lambda name: None,
    progress: Callable[[int, int], None] | None = None,
) -> DemoResult:
    """Run the demo's stages in order; each stage's outputs are complete or absent.

    With a study, the demo ends with its release (under ``policy``, the default disclosure policy
    if None) and the release's independent audit.
    """
    stages: list[StageResult] = []
    extracts = work / "extracts"

    on_stage("generate extracts")
    began = time.perf_counter()
    if _reusable(extracts, config):
        summary = f"reused {config.preset} extracts (seed {config.seed})"
    else:
        shutil.rmtree(work / "ledger", ignore_errors=True)  # a new population: earlier releases do not apply
        gen: GenerationResult = generate(config, extracts, catalogue=catalogue, overwrite=True, progress=progress)
        total = sum(v for k, v in gen.rows.items() if not k.startswith("truth/"))
        summary = f"{total:,} rows, preset {config.preset}, seed {config.seed}"
    stages.append(StageResult("generate extracts", time.perf_counter() - began, summary, [extracts]))

    # Keys: in real use each supplier holds the network key and the TTP its own key, on
    # different machines; the demo keeps both in one owner-only folder of the working folder.
    keys = work / "keys"
    network_key = _demo_key(keys / "network.key", "network")
    ttp_key = _demo_key(keys / "ttp.key", "ttp")
    pseudo = work / "pseudonymisation"
    for supplier in ("ehr", "claims"):
        on_stage(f"supplier step: {supplier}")
        began = time.perf_counter()
        sup = run_supplier_step(extracts / supplier, supplier, network_key, pseudo / supplier,
                                max_quarantine_share=max_quarantine_share, overwrite=True)
        statuses = {r["bsn_status"]: r["rows"] for r in sup.report["bsn_status"]}
        invalid = sum(v for k, v in statuses.items() if k != "valid")
        quarantined = sum(r["rows"] for r in sup.report["validation_quarantine"])
        stages.append(StageResult(
            f"supplier step: {supplier}", time.perf_counter() - began,
            f"{sup.persons:,} persons pseudonymised; {invalid:,} rows with an invalid BSN; "
            f"{quarantined:,} rows quarantined by validation",
            [pseudo / supplier],
        ))
    on_stage("TTP step")
    began = time.perf_counter()
    ttp = run_ttp_step({s: pseudo / s / "for_ttp" for s in ("ehr", "claims")}, ttp_key, project,
                       pseudo / "ttp", expected_network_key_id=network_key.id, overwrite=True)
    stages.append(StageResult(
        "TTP step", time.perf_counter() - began,
        f"project {project}: {ttp.report['distinct_p1']:,} distinct persons, {ttp.report['collisions']} collisions",
        [pseudo / "ttp"],
    ))
    on_stage("linkage")
    began = time.perf_counter()
    linked = link({s: pseudo / s / "for_research" for s in ("ehr", "claims")},
                  {s: pseudo / "ttp" / s for s in ("ehr", "claims")}, work / "linked", overwrite=True)
    ehr = linked.report["ehr"]
    summary = f"{ehr['linked_records']:,} of {ehr['patient_records']:,} EHR records linked ({ehr['linked_share']:.1%})"
    truth = extracts / "truth"
    if truth.is_dir():  # generated data only: measure the linkage against the truth
        quality = linkage_quality(work / "linked", truth)
        summary += f"; precision {quality['precision']:.4f}, recall {quality['recall']:.4f} (vs truth)"
    stages.append(StageResult("linkage", time.perf_counter() - began, summary, [work / "linked"]))

    if study is not None:
        on_stage(f"study {study.name}")
        began = time.perf_counter()
        tables = run_study(work / "linked", study)
        write_study(tables, work / "study", study,
                    linked_manifest=json.loads((work / "linked" / "manifest.json").read_text()), overwrite=True)
        prevalence = tables["prevalence"]
        population = prevalence["denominator"].max() if prevalence.height else 0
        stages.append(StageResult(
            f"study {study.name}", time.perf_counter() - began,
            f"{len(study.catalogue.names)} conditions, years {list(study.reference_years)}, study population up to "
            f"{population:,}; tables are pre-disclosure (not releasable)", [work / "study"],
        ))
        _release_and_audit(work, study, policy or Policy(), stages, on_stage)
        on_stage("report")
        began = time.perf_counter()
        # The audit stage reports a failing release; its report then carries pfl-report's banner.
        shown = write_report(work / "release", work / "report.html", overwrite=True, show_failed=True)
        stages.append(StageResult("report", time.perf_counter() - began, f"{len(shown.figures)} figures, made "
                                  "from the release folder alone", [work / "report.html"]))
    return DemoResult(work=work, stages=stages)


def _release_and_audit(work: Path, study: StudyConfig, policy: Policy, stages: list[StageResult],
                       on_stage: Callable[[str], None]) -> None:
    """Release the study's tables, then audit the release from its folder and the ledger alone."""
    on_stage("release")
    ledger = work / "ledger" / config_hash(study)[:12]
    result = make_release(work / "study", work / "release", steward=policy, ledger=ledger, overwrite=True)
    content = result.content
    rules = ", ".join(f"{r} {n}" for r, n in content.cells_by_reason.items()) or "nothing"
    withheld = f"; withheld: {', '.join(content.withheld)}" if content.withheld else ""
    stages.append(StageResult(
        "release", result.seconds,
        f"{len(content.frames)} tables released under T = {result.policy.threshold}{withheld}; hidden quantities "
        f"by rule: {rules}", [work / "release", ledger]))
    on_stage("audit")
    report = audit_release(work / "release", ledger=ledger)
    report.write(work / "release.audit.json")
    verdicts = [t["verdict"] for t in report.tables.values()]
    stages.append(StageResult(
        "audit", report.seconds,
        f"{'PASS' if report.passed else 'FAIL'} ({report.mode} mode): {verdicts.count('pass')} tables pass, "
        f"{verdicts.count('fail')} fail, {verdicts.count('withheld')} withheld; "
        f"{len([f for f in report.findings if not f.advisory])} blocking findings",
        [work / "release.audit.json"]))
