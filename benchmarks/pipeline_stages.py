"""The whole main job on a generated preset, stage by stage: wall time and peak memory.

Stages: supplier step (EHR), supplier step (claims), TTP step, linkage, the study in polars,
and the same study as DuckDB SQL (the independent reference of the differential test) side by
side. Each stage runs in its own process, so its peak memory (max RSS) is its own.

    .venv/bin/python benchmarks/pipeline_stages.py /path/to/extracts          # e.g. a nivel preset
    .venv/bin/python benchmarks/pipeline_stages.py /path/to/extracts --skip-duckdb
    .venv/bin/python benchmarks/pipeline_stages.py /path/to/national --only supplier_claims
    .venv/bin/python benchmarks/pipeline_stages.py /path/to/nivel --work /path/to/work \
        --only study_baseline study_polars study_v2 study_duckdb --baseline-root /path/to/old-checkout

``study_baseline`` runs the ``study_polars`` stage with the code of another checkout (``git worktree
add /path/to/old-checkout <commit>``) on the same linked layout, in the same run: the engine
before a change, side by side with the engine after it (issue 12, item 8: 191707e, the last commit
before the cohort language).

``link_quality`` (precision and recall against the generator's truth) is a stage of its own: it
joins every claim line to the truth and is not part of the engine's linkage.

Generate the extracts first:  .venv/bin/pfl-generate preset=nivel out=/big/nivel
Targets (issue 4): the full study on nivel in under 10 minutes and 12 GB, faster than DuckDB.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(sys.argv[1]) / "tests"))
stage, extracts, work = sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4])
began = time.perf_counter()
extra = {}
if stage.startswith("supplier_"):
    from pseudonymisation.keys import load_key
    from pseudonymisation.supplier import run_supplier_step
    supplier = stage.split("_", 1)[1]
    r = run_supplier_step(extracts / supplier, supplier, load_key(work / "keys" / "network.key", "network"),
                          work / "pseudo" / supplier, overwrite=True)
    extra = {"persons": r.persons}
elif stage == "ttp":
    from pseudonymisation.keys import load_key
    from pseudonymisation.ttp import run_ttp_step
    r = run_ttp_step({s: work / "pseudo" / s / "for_ttp" for s in ("ehr", "claims")},
                     load_key(work / "keys" / "ttp.key", "ttp"), "bench", work / "pseudo" / "ttp", overwrite=True)
    extra = {"distinct_p1": r.report["distinct_p1"]}
elif stage == "link":
    from linkage.link import link
    r = link({s: work / "pseudo" / s / "for_research" for s in ("ehr", "claims")},
             {s: work / "pseudo" / "ttp" / s for s in ("ehr", "claims")}, work / "linked", project="bench",
             overwrite=True)
    extra = {"linked_share": r.report["ehr"]["linked_share"]}
elif stage == "link_quality":  # against the generator's truth: not part of the engine's linkage
    from linkage.evaluate import linkage_quality
    q = linkage_quality(work / "linked", extracts / "truth")
    extra = {"precision": q["precision"], "recall": q["recall"]}
elif stage in ("study_polars", "study_v2", "study_duckdb"):
    from omegaconf import OmegaConf
    from cohort.config import parse_study
    from extracts.codelists import load_catalogue
    conf = Path(sys.argv[1]) / "conf"
    catalogue = load_catalogue(conf / "conditions" / "seed_study.yaml")
    config = parse_study(OmegaConf.to_container(OmegaConf.load(conf / "study" / "seed_study.yaml")), catalogue)
    if stage == "study_polars":
        from cohort.study import run_study
        tables = run_study(work / "linked", config)
    elif stage == "study_v2":  # the general engine: the seed study in schema 2, through the compiler
        from cohort.compile import run_compiled
        from cohort.convert import load_study
        study = load_study(OmegaConf.to_container(OmegaConf.load(conf / "study" / "seed_study_v2.yaml")), catalogue)
        tables = run_compiled(work / "linked", study)
    else:
        from reference.duckdb_study import run_reference
        tables = run_reference(work / "linked", config)
    extra = {"rows": {k: v.height for k, v in tables.items()}}
seconds = time.perf_counter() - began
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
print(json.dumps({"stage": stage, "seconds": seconds, "peak_gb": peak, **extra}))
"""

STAGES = ("supplier_ehr", "supplier_claims", "ttp", "link", "link_quality", "study_baseline", "study_polars", "study_v2",
          "study_duckdb")
# Issue 12, item 8: the seed study on nivel before the cohort language (schema 2) took 110 s and 5.1 GB.
BASELINE_STUDY = {"seconds": 110.0, "peak_gb": 5.1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("extracts", type=Path, help="a generated extracts folder (ehr/, claims/, truth/)")
    parser.add_argument("--work", type=Path, default=None, help="working folder (default: a temp dir)")
    parser.add_argument("--skip-duckdb", action="store_true")
    parser.add_argument("--only", nargs="*", choices=STAGES, help="run only these stages (inputs must exist)")
    parser.add_argument("--baseline-root", type=Path, help="another checkout whose study_polars is study_baseline")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="pfl-pipeline-"))
    keys = work / "keys"
    if not keys.exists():
        from pseudonymisation.keys import generate_key

        generate_key(keys / "network.key", "network")
        generate_key(keys / "ttp.key", "ttp")
    stages = args.only or [s for s in STAGES if not (args.skip_duckdb and s == "study_duckdb")
                           and not (s == "study_baseline" and args.baseline_root is None)]
    if "study_baseline" in stages and args.baseline_root is None:
        parser.error("study_baseline needs --baseline-root")
    print(f"extracts: {args.extracts}   work: {work}")
    print(f"{'stage':<18}{'seconds':>9}{'peak GB':>9}  detail", flush=True)
    results = []
    for stage in stages:
        began = time.perf_counter()
        root = args.baseline_root.resolve() if stage == "study_baseline" else ROOT
        child = "study_polars" if stage == "study_baseline" else stage
        proc = subprocess.run([sys.executable, "-c", CHILD, str(root), child, str(args.extracts), str(work)],
                              capture_output=True, text=True, check=False, cwd=root)
        if proc.returncode != 0:
            print(f"{stage:<18} FAILED after {time.perf_counter() - began:.0f} s: {proc.stderr.strip().splitlines()[-1:]}")
            break
        r = {**json.loads(proc.stdout.strip().splitlines()[-1]), "stage": stage}
        results.append(r)
        detail = {k: v for k, v in r.items() if k not in ("stage", "seconds", "peak_gb", "rows")}
        print(f"{stage:<18}{r['seconds']:>9.1f}{r['peak_gb']:>9.2f}  {detail}", flush=True)
    by_stage = {r["stage"]: r for r in results}
    polars_s = by_stage.get("study_polars", {}).get("seconds")
    duck_s = by_stage.get("study_duckdb", {}).get("seconds")
    if polars_s and duck_s:
        print(f"study: polars {polars_s:.1f} s vs DuckDB SQL {duck_s:.1f} s ({duck_s / polars_s:.2f}x)")
    # The engine before the change, measured in this run, or else the figure of issue 12.
    base = by_stage.get("study_baseline", BASELINE_STUDY)
    what = "study_baseline (this run)" if "study_baseline" in by_stage else "the nivel baseline of issue 12"
    for name in ("study_polars", "study_v2"):
        if name in by_stage:
            r = by_stage[name]
            print(f"{name}: {r['seconds']:.1f} s, {r['peak_gb']:.2f} GB vs {what} {base['seconds']:.1f} s, "
                  f"{base['peak_gb']:.2f} GB ({r['seconds'] / base['seconds'] - 1:+.1%} time, "
                  f"{r['peak_gb'] / base['peak_gb'] - 1:+.1%} memory; target within +10 %)")
    total = sum(r["seconds"] for r in results)
    print(f"total {total:.1f} s; largest peak {max((r['peak_gb'] for r in results), default=0):.2f} GB")
    (work / "pipeline_stages.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
