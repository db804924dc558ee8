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
    <work>/ledger/<population>/ the release ledger, one per population (A5): every study over the same
                                linked data is released into it and checked against the earlier ones
    <work>/logs/                Hydra's record of each run's configuration (key references only)

Rerunning the demo reuses extracts generated with the same preset, seed and generator version.
Regenerated extracts are another population, released into a ledger of its own beside the earlier
ones (``<work>/ledger/<population>/``); the demo never deletes or moves a ledger.

The demo replaces its own outputs on every run, so it writes only into a folder it created: a
``.pfl-demo`` marker file says so. A folder that holds anything else (a steward's ledger, keys,
someone's extracts) and no marker is refused with exit 9 unless ``adopt=true`` is given; one demo
runs per working folder at a time (a second gets exit 9, :func:`extracts.atomic.output_lock`).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from execution import Executor, LocalExecutor
from audit.verdict import audit_release
from cohort.config import StudyConfig
from disclosure import Policy
from cohort.output import population_fingerprint, write_study
from release.ledger import create_ledger
from release.make import make_release
from cohort.study import run_study
from extracts.atomic import output_lock, scratch
from extracts.codelists import ConditionCatalogue
from extracts.errors import OutputExistsError
from extracts.generator.config import GeneratorConfig
from extracts.generator.run import GENERATOR_VERSION, GenerationResult, generate
from extracts.targets import check_target
from linkage.evaluate import linkage_quality
from linkage.link import link
from pseudonymisation.keys import Key, generate_key, load_key
from pseudonymisation.supplier import run_supplier_step
from pseudonymisation.ttp import run_ttp_step
from pipeline.work_folder import MARKER, claim
from report import write_report

__all__ = ["MARKER", "DemoResult", "StageResult", "demo_linkage_label", "run_demo"]



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
    adopt: bool = False,
    executor: Executor | None = None,
    partitions: int = 1,
    linkage: str | None = None,
) -> DemoResult:
    """Run the demo's stages in order; each stage's outputs are complete or absent.

    With a study, the demo ends with its release and the release's independent audit. The release
    ledger of the population is created with ``policy`` (the default disclosure policy if None)
    the first time; afterwards its own policy applies. ``executor`` and ``partitions`` (K) run the
    person-level stages in K partitions (issue 14); the outputs are those of K = 1. ``linkage`` labels
    this linkage at both supplier steps, so that the fallback's encodings are keyed for it alone
    (``pfl-supplier linkage=``, docs/guide-data-steward.md); None: :func:`demo_linkage_label`.

    Raises:
        ConfigError: ``work`` is the root, the home folder, the current folder or above it, or
            inside a folder of person-level records (:func:`extracts.targets.check_target`).

        OutputExistsError: ``work`` holds files and no demo marker and ``adopt`` is false (exit
            9), or another demo is running in it (:class:`~extracts.errors.OutputBusyError`).
    """
    work = Path(work)
    check_target(work, setting="work")
    with output_lock(work):
        claim(work, adopt=adopt)
        return _run_stages(config, catalogue, work, max_quarantine_share=max_quarantine_share, project=project,
                           study=study, policy=policy, on_stage=on_stage, progress=progress,
                           executor=executor or LocalExecutor(), partitions=partitions,
                           linkage=demo_linkage_label(config) if linkage is None else linkage)


def demo_linkage_label(config: GeneratorConfig) -> str:
    """The demo's linkage label: one per generated population (``demo-<preset>-<seed>``), as a real
    network takes a new one for every delivery."""
    return re.sub(r"[^A-Za-z0-9._-]", "-", f"demo-{config.preset}-{config.seed}")[:64]


def _run_stages(
    config: GeneratorConfig, catalogue: ConditionCatalogue, work: Path, *, max_quarantine_share: float,
    project: str, study: StudyConfig | None, policy: Policy | None, on_stage: Callable[[str], None],
    progress: Callable[[int, int], None] | None, executor: Executor, partitions: int, linkage: str,
) -> DemoResult:
    stages: list[StageResult] = []
    extracts = work / "extracts"

    on_stage("generate extracts")
    began = time.perf_counter()
    if _reusable(extracts, config):
        summary = f"reused {config.preset} extracts (seed {config.seed})"
    else:
        gen: GenerationResult = generate(config, extracts, catalogue=catalogue, overwrite=True, progress=progress)
        total = sum(v for k, v in gen.rows.items() if not k.startswith("truth/"))
        # A new population: its releases go to a ledger of its own (_release); earlier ones stay.
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
                                max_quarantine_share=max_quarantine_share, overwrite=True, executor=executor,
                                partitions=partitions, linkage=linkage)
        statuses = {r["bsn_status"]: r["rows"] for r in sup.report["bsn_status"]}
        invalid = sum(v for k, v in statuses.items() if k != "valid")
        quarantined = sum(r["rows"] for r in sup.report["validation_quarantine"])
        stages.append(StageResult(
            f"supplier step: {supplier}", time.perf_counter() - began,
            f"{sup.persons:,} persons pseudonymised; {invalid:,} rows with an invalid BSN; "
            f"{quarantined:,} rows quarantined by validation; fallback encodings keyed for linkage {linkage}",
            [pseudo / supplier],
        ))
    on_stage("TTP step")
    began = time.perf_counter()
    ttp = run_ttp_step({s: pseudo / s / "for_ttp" for s in ("ehr", "claims")}, ttp_key, project,
                       pseudo / "ttp", expected_network_key_id=network_key.id, overwrite=True, executor=executor,
                       partitions=partitions)
    stages.append(StageResult(
        "TTP step", time.perf_counter() - began,
        f"project {project}: {ttp.report['distinct_p1']:,} distinct persons, {ttp.report['collisions']} collisions",
        [pseudo / "ttp"],
    ))
    on_stage("linkage")
    began = time.perf_counter()
    linked = link({s: pseudo / s / "for_research" for s in ("ehr", "claims")},
                  {s: pseudo / "ttp" / s for s in ("ehr", "claims")}, work / "linked", project=project,
                  overwrite=True, executor=executor, partitions=partitions)
    ehr = linked.report["ehr"]
    summary = f"{ehr['linked_records']:,} of {ehr['patient_records']:,} EHR records linked ({ehr['linked_share']:.1%})"
    fallback = {k: v for k, v in linked.report["linked_records_by_method"].items() if k != "bsn"}
    if fallback:  # issue 13: records without a usable BSN linked by the TTP's fallback
        summary += " (without BSN: " + ", ".join(f"{k} {v:,}" for k, v in fallback.items()) + ")"
    truth = extracts / "truth"
    if truth.is_dir():  # generated data only: measure the linkage against the truth
        quality = linkage_quality(work / "linked", truth)
        summary += f"; precision {quality['precision']:.4f}, recall {quality['recall']:.4f} (vs truth)"
    stages.append(StageResult("linkage", time.perf_counter() - began, summary, [work / "linked"]))

    if study is not None:
        on_stage(f"study {study.name}")
        began = time.perf_counter()
        with scratch(work / "study") as folder:  # person-level claim units beside the output, never in $TMPDIR
            tables = run_study(work / "linked", study, scratch=folder, executor=executor, partitions=partitions)
            write_study(tables, work / "study", study,  # a partitioned run's persons are files in the scratch
                        linked_manifest=json.loads((work / "linked" / "manifest.json").read_text()),
                        population=population_fingerprint(work / "linked"), overwrite=True)
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
    """Release the study's tables, then audit the release from its folder and the ledger alone.

    One ledger per population (the study manifest's fingerprint of the linked data), created as a
    data steward would (``pfl-ledger init``) with ``policy`` when the population is new.
    """
    on_stage("release")
    population = json.loads((work / "study" / "manifest.json").read_text())["population"]
    # In groups of four: a folder name never holds a run of nine digits (BSN-like to a leak scan).
    ledger = work / "ledger" / "-".join(population[i:i + 4] for i in range(0, 12, 4))
    if not (ledger / "ledger.json").exists():
        create_ledger(ledger, policy)
    result = make_release(work / "study", work / "release", ledger=ledger, overwrite=True)
    content = result.content
    rules = ", ".join(f"{r} {n}" for r, n in content.cells_by_reason.items()) or "nothing"
    withheld = f"; withheld: {', '.join(content.withheld)}" if content.withheld else ""
    stages.append(StageResult(
        "release", result.seconds,
        f"{len(content.frames)} tables released under T = {result.policy.threshold}{withheld}; hidden quantities "
        f"by rule: {rules}", [work / "release", ledger]))
    on_stage("audit")
    report = audit_release(work / "release", ledger=ledger, study=work / "study")  # costs re-checked too
    report.write(work / "release.audit.json")
    verdicts = [t["verdict"] for t in report.tables.values()]
    stages.append(StageResult(
        "audit", report.seconds,
        f"{'PASS' if report.passed else 'FAIL'} ({report.mode} mode): {verdicts.count('pass')} tables pass, "
        f"{verdicts.count('fail')} fail, {verdicts.count('withheld')} withheld; "
        f"{len([f for f in report.findings if not f.advisory])} blocking findings",
        [work / "release.audit.json"]))
