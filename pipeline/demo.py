"""The demo job: generate built-in extracts and run every stage that exists on them.

Stages write into one working folder::

    <work>/extracts/            generated supplier extracts (ehr/, claims/) and truth/
    <work>/reports/             per-stage reports (JSON), never row-level data
    <work>/logs/                Hydra's record of each run's configuration

Rerunning the demo reuses extracts generated with the same preset, seed and generator version.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from extracts.codelists import ConditionCatalogue
from extracts.generator.config import GeneratorConfig
from extracts.generator.run import GENERATOR_VERSION, GenerationResult, generate
from extracts.validation import ValidatedExtract, validate_extract

__all__ = ["DemoResult", "StageResult", "run_demo", "write_json_atomic"]


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


def write_json_atomic(path: Path, payload: object) -> None:
    """Write JSON to a temporary file and rename it: a reader never sees half a report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(json.dumps(payload, indent=2, default=str))
    os.replace(tmp, path)


def _reusable(out: Path, config: GeneratorConfig) -> bool:
    manifest = out / "manifest.json"
    if not manifest.is_file():
        return False
    m = json.loads(manifest.read_text())
    return (m.get("preset"), m.get("seed"), m.get("generator_version")) == (
        config.preset, config.seed, GENERATOR_VERSION,
    )


def validation_report(result: ValidatedExtract) -> dict:
    """Counts only: rows per table, quarantine reasons, notes, warnings."""
    return {
        "supplier": result.supplier,
        "rows_in": result.row_counts,
        "rows_clean": {t: result.clean_rows(t) for t in result.row_counts},
        "quarantine": result.quarantine.to_dicts(),
        "notes": result.notes.to_dicts(),
        "warnings": result.warnings,
    }


def run_demo(
    config: GeneratorConfig,
    catalogue: ConditionCatalogue,
    work: Path,
    *,
    max_quarantine_share: float,
    on_stage: Callable[[str], None] = lambda name: None,
    progress: Callable[[int, int], None] | None = None,
) -> DemoResult:
    """Run the demo's stages in order; each stage's outputs are complete or absent."""
    stages: list[StageResult] = []
    extracts = work / "extracts"

    on_stage("generate extracts")
    began = time.perf_counter()
    if _reusable(extracts, config):
        summary = f"reused {config.preset} extracts (seed {config.seed})"
    else:
        gen: GenerationResult = generate(config, extracts, catalogue=catalogue, overwrite=True, progress=progress)
        total = sum(v for k, v in gen.rows.items() if not k.startswith("truth/"))
        summary = f"{total:,} rows, preset {config.preset}, seed {config.seed}"
    stages.append(StageResult("generate extracts", time.perf_counter() - began, summary,
                              [extracts / "ehr", extracts / "claims"]))

    for supplier in ("ehr", "claims"):
        on_stage(f"validate {supplier} extract")
        began = time.perf_counter()
        result = validate_extract(extracts / supplier, supplier, max_quarantine_share=max_quarantine_share)
        report = work / "reports" / f"validation_{supplier}.json"
        write_json_atomic(report, validation_report(result))
        rows = sum(result.row_counts.values())
        quarantined = int(result.quarantine["rows"].sum()) if result.quarantine.height else 0
        stages.append(StageResult(
            f"validate {supplier} extract", time.perf_counter() - began,
            f"{rows:,} rows read, {quarantined:,} quarantined ({len(result.quarantine)} reasons)", [report],
        ))
    return DemoResult(work=work, stages=stages)
