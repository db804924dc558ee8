"""Generate a pair of supplier extracts (EHR and claims) and their ground truth.

Layout of the output folder::

    <out>/ehr/<table>.parquet        the EHR registry's extract (data contract v2: with the
                                     optional identifiers of patients, docs/data-contract.md)
    <out>/claims/<table>.parquet     the claims extract (v2: identifiers of insured rows)
    <out>/truth/*.parquet            who is behind each record, injected defects (tests only):
                                     patients (patient_id -> person, household, the errors of
                                     the record's identifiers), insured (row-aligned: person,
                                     name typo, address before a move), persons (true BSN,
                                     birth date, household, twin, move year, family name,
                                     initials), claims, conditions
    <out>/truth/defects.json         counts of every injected defect
    <out>/manifest.json              preset, seed, row counts, timings

The folder is written under a temporary name and renamed when complete, so an interrupted run
never leaves an output that looks finished. The persons are drawn in blocks of ``chunk_persons``
(:mod:`extracts.generator.block`), run as partition functions on an executor
(:mod:`extracts.generator.blocks`) and appended in block order (:mod:`extracts.generator.parts`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import polars as pl

from execution import Executor, LocalExecutor
from extracts.atomic import claim_output, scratch, staging
from extracts.codelists import ConditionCatalogue, load_catalogue
from extracts.contract import CLAIMS, EHR
from extracts.generator.blocks import SINKS, BlockTask, run_blocks, save_bsns, shared_plan
from extracts.generator.config import GeneratorConfig
from extracts.generator.parts import TableFiles
from extracts.generator.plan import REGIONS, Plan

__all__ = ["GenerationResult", "generate"]

GENERATOR_VERSION = "1"
DEFAULT_CATALOGUE = Path(__file__).resolve().parents[2] / "conf" / "conditions" / "seed_study.yaml"


@dataclass(frozen=True)
class GenerationResult:
    out: Path
    rows: dict[str, int]
    seconds: float
    defects: dict[str, int]


def _global_tables(plan: Plan, ehr: TableFiles, claims: TableFiles) -> None:
    cfg = plan.config
    years = list(plan.years)
    ehr.write("practices", pl.DataFrame({
        "practice_id": plan.practice_ids, "region": np.array(REGIONS)[plan.practice_region],
    }), EHR.table("practices"))
    n = len(plan.practice_ids)
    ehr.write("practice_years", pl.DataFrame({
        "practice_id": np.repeat(plan.practice_ids, len(years)), "year": np.tile(years, n),
        "referrals_delivered": plan.referral_years.ravel(),
    }), EHR.table("practice_years"))
    incomplete = set(cfg.defects.incomplete_insurer_years)
    codes = np.repeat(plan.insurer_codes, len(years))
    yrs = np.tile(years, len(plan.insurer_codes))
    claims.write("insurer_years", pl.DataFrame({
        "insurer": codes, "year": yrs,
        "complete": [(c, int(y)) not in incomplete for c, y in zip(codes, yrs, strict=True)],
    }), CLAIMS.table("insurer_years"))


def generate(
    config: GeneratorConfig,
    out: Path,
    *,
    catalogue: ConditionCatalogue | None = None,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
    executor: Executor | None = None,
    in_flight: int | None = None,
) -> GenerationResult:
    """Generate the extracts of ``config`` into ``out`` (atomically: temporary folder, rename).

    The population is drawn in blocks of ``config.chunk_persons`` persons, each a partition
    function on ``executor`` (:mod:`extracts.generator.blocks`); the extracts are byte-identical
    whatever the executor, its workers and ``in_flight``.

    Args:
        config: what to generate.
        out: the output folder; must not exist unless ``overwrite``.
        catalogue: the conditions to plant (default: the seed study's, conf/conditions).
        overwrite: replace an existing output folder once the new one is complete.
        progress: called with (blocks done, blocks total) as blocks are written.
        executor: where blocks are drawn (default: in process, one after the other).
        in_flight: blocks drawn at once (default: the executor's workers); bounds memory.
    """
    out = Path(out)
    executor = executor or LocalExecutor()
    in_flight = executor.workers if in_flight is None else in_flight
    if isinstance(in_flight, bool) or not isinstance(in_flight, int) or in_flight < 1:
        msg = f"in_flight must be a whole number >= 1, not {in_flight!r}"
        raise ValueError(msg)
    if catalogue is None:
        catalogue = load_catalogue(DEFAULT_CATALOGUE)
    with claim_output(out, overwrite=overwrite):  # where out may go, then its lock for the whole run
        return _generate(config, out, catalogue=catalogue,
                         overwrite=overwrite, progress=progress, executor=executor, in_flight=in_flight)


def _generate(config: GeneratorConfig, out: Path, *, catalogue: ConditionCatalogue, overwrite: bool,
              progress: Callable[[int, int], None] | None, executor: Executor, in_flight: int) -> GenerationResult:
    began = time.perf_counter()
    plan = shared_plan(config, catalogue)
    with staging(out, overwrite=overwrite) as tmp, scratch(out) as parts:
        files = {name: TableFiles(tmp / name, config.output_format if name != "truth" else "parquet")
                 for name in SINKS}
        try:
            _global_tables(plan, files["ehr"], files["claims"])
            bsns = save_bsns(plan, parts) if plan.n_chunks > 1 else None
            tasks = [BlockTask(config, catalogue, index, str(parts), bsns) for index in range(plan.n_chunks)]
            defects = run_blocks(tasks, files, executor=executor, in_flight=in_flight, progress=progress)
        finally:
            for f in files.values():
                f.close()
        rows = {f"{k}/{t}": v for k, s in files.items() for t, v in sorted(s.rows.items())}
        seconds = time.perf_counter() - began
        (tmp / "truth" / "defects.json").write_text(json.dumps(dict(sorted(defects.items())), indent=2))
        manifest = {
            "generator_version": GENERATOR_VERSION,
            "preset": config.preset,
            "seed": config.seed,
            "persons": plan.n_total,
            "registry_persons": plan.n_ehr,
            "practices": config.practices,
            "conditions": list(catalogue.names),
            "config": json.loads(json.dumps(asdict(config), default=str)),
            "rows": rows,
            "seconds": round(seconds, 2),
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))

    return GenerationResult(out=out, rows=rows, seconds=seconds, defects=dict(defects))
