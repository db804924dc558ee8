"""Benchmark of the extract generator: rows written, wall time and peak memory per preset.

Each preset runs in a fresh subprocess so that its peak memory (max RSS) is its own.

    .venv/bin/python benchmarks/generate_presets.py                 # tiny demo nivel national
    .venv/bin/python benchmarks/generate_presets.py demo nivel      # some presets
    .venv/bin/python benchmarks/generate_presets.py --out /big/disk # where extracts go

Targets (issue 2): demo < 30 s; nivel < 10 min and < 12 GB; national < 30 min within 24 GB.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGETS = {"tiny": (60, 24), "demo": (30, 24), "nivel": (600, 12), "national": (1800, 24)}

CHILD = """
import json, sys, time
from pathlib import Path
from extracts.codelists import load_catalogue
from extracts.generator.config import config_from_mapping
from extracts.generator.run import DEFAULT_CATALOGUE, generate
from omegaconf import OmegaConf
raw = OmegaConf.to_container(OmegaConf.load(sys.argv[1]))
result = generate(config_from_mapping(raw), Path(sys.argv[2]), catalogue=load_catalogue(DEFAULT_CATALOGUE))
json.dump({"rows": result.rows, "seconds": result.seconds}, sys.stdout)
"""


def run_preset(preset: str, out_root: Path, conf: Path) -> dict:
    out = out_root / preset
    shutil.rmtree(out, ignore_errors=True)
    began = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(conf / "preset" / f"{preset}.yaml"), str(out)],
        capture_output=True, text=True, check=False,
    )
    wall = time.perf_counter() - began
    if proc.returncode != 0:
        return {"preset": preset, "error": proc.stderr.strip().splitlines()[-1:]}
    peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2
    data = json.loads(proc.stdout)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file() and "truth" not in f.parts)
    extract_rows = {k: v for k, v in data["rows"].items() if not k.startswith("truth/")}
    return {
        "preset": preset, "rows": sum(extract_rows.values()), "wall_s": wall, "peak_gb": peak_gb,
        "size_gb": size / 1024**3, "detail": extract_rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("presets", nargs="*", default=["tiny", "demo", "nivel", "national"])
    parser.add_argument("--out", type=Path, default=None, help="folder for the extracts (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the generated extracts")
    args = parser.parse_args()
    conf = Path(__file__).resolve().parents[1] / "conf"
    out_root = args.out or Path(tempfile.mkdtemp(prefix="pfl-bench-"))
    print(f"{'preset':<10}{'rows':>14}{'wall s':>9}{'target s':>10}{'peak GB':>9}{'limit GB':>10}{'on disk GB':>11}")
    results = []
    for preset in args.presets:
        r = run_preset(preset, out_root, conf)
        results.append(r)
        target_s, limit_gb = TARGETS.get(preset, (float("nan"), float("nan")))
        if "error" in r:
            print(f"{preset:<10} FAILED: {r['error']}")
        else:
            # ru_maxrss of children is the largest child so far; presets run small to large.
            print(f"{preset:<10}{r['rows']:>14,}{r['wall_s']:>9.1f}{target_s:>10.0f}{r['peak_gb']:>9.2f}"
                  f"{limit_gb:>10.0f}{r['size_gb']:>11.2f}", flush=True)
        if not args.keep:
            shutil.rmtree(out_root / preset, ignore_errors=True)
    detail = out_root / "generate_presets.json"
    detail.write_text(json.dumps(results, indent=2))
    print(f"per-table rows: {detail}")


if __name__ == "__main__":
    main()
