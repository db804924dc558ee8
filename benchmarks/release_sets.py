"""The release's memory and time with the person sets held whole or worked in buckets (issue 14).

Runs ``make_release`` on one study folder, each time into a fresh ledger, once per *setting*, each
in its own process, and prints side by side: the rows of the study's person sets (and of the
ledger record's), the wall time and the process's peak resident memory of the release and of the
auditor's verification with the ledger (``audit_release``, its own process), and whether the
release's tables equal the first setting's. A setting is ``ROWS`` (the rows of one bucket,
``release.overlaps.BUCKET_ROWS``; ``whole``: one bucket whatever the size) run with this checkout,
or ``base=PYTHON``: the same release by another installation's interpreter (an older engine, the
baseline), with its own defaults.

    .venv/bin/python benchmarks/release_sets.py --study /big/pp/nivel-0-local-1-auto/study \\
        --settings base=/work/wt/base/.venv/bin/python whole 25000000 5000000 1000000

Then, with ``--second STUDY``, each setting releases a second study into the same ledger after
the first (the relations between releases, by who is counted, on top).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from execution.engine_folder import EngineFolder

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
args = json.loads(sys.argv[1])
if args["rows"] is not None:
    import release.overlaps as overlaps
    overlaps.BUCKET_ROWS = args["rows"]
    import audit.persons as persons
    persons.BUCKET_ROWS = args["rows"]
from disclosure import Policy
from release.ledger import create_ledger
from release.make import make_release
if args["audit"]:  # the auditor's ledger verification of the last release
    from audit import audit_release
    began = time.perf_counter()
    audit_release(Path(args["audit"]), ledger=Path(args["ledger"]))
    print(json.dumps({"seconds": [time.perf_counter() - began],
                      "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}))
    sys.exit(0)
ledger = create_ledger(Path(args["ledger"]), Policy()).path
times = []
for i, study in enumerate(args["studies"]):
    began = time.perf_counter()
    make_release(Path(study), Path(args["out"]) / f"release{i}", ledger=ledger)
    times.append(time.perf_counter() - began)
print(json.dumps({"seconds": times, "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}))
"""


def _rows(folder: Path) -> int:
    import polars as pl

    return sum(pl.scan_parquet(p).select(pl.len()).collect().item() for p in sorted(folder.glob("*.parquet")))


def _same(a: Path, b: Path) -> bool:
    """Whether two releases' tables are equal, table by table."""
    import polars as pl

    names = sorted(p.name for p in a.glob("*.parquet"))
    return names == sorted(p.name for p in b.glob("*.parquet")) and all(
        pl.read_parquet(a / n).equals(pl.read_parquet(b / n)) for n in names)


def _child(python: str, args: dict) -> dict | None:
    """Run the child with ``args`` in its own process; its figures, or None (its error printed)."""
    # Run from the work folder: from a checkout, ``-c`` would import that checkout's engine, not the interpreter's.
    done = subprocess.run([python, "-c", CHILD, json.dumps(args)], capture_output=True, text=True, check=False,
                          cwd=args["out"])
    if done.returncode != 0:
        killed = ": killed, out of memory?" if done.returncode == -9 else ""
        print(done.stderr[-2000:] or f"(exit {done.returncode}{killed})")
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--study", type=Path, required=True, help="a study folder (pfl-study's output)")
    parser.add_argument("--second", type=Path, help="a second study over the same population, released after")
    parser.add_argument("--settings", nargs="+", default=["25000000", "5000000"],
                        help="ROWS per bucket, 'whole' (every set in memory at once: a large second release and "
                             "its audit can exhaust the machine), or base=PYTHON (default: 25000000 5000000)")
    parser.add_argument("--work", type=Path, help="working folder (default: a temporary one, removed)")
    args = parser.parse_args()
    studies = [str(args.study)] + ([str(args.second)] if args.second else [])
    # Without --work: an owner-only folder that the next run removes if this one is killed.
    engine = EngineFolder("pfl-release-sets-") if args.work is None else None
    work = args.work or Path(engine.path)
    print(f"study {args.study}: {_rows(args.study / 'persons') / 1e6:.1f} M rows of person sets"
          + (f"; second {args.second}" if args.second else "") + f"; load averages {os.getloadavg()}")
    results = []
    try:
        for i, setting in enumerate(args.settings):
            python, rows = sys.executable, None
            if setting.startswith("base="):
                python = setting.removeprefix("base=")
            elif setting != "whole":
                rows = int(setting)
            else:
                rows = 10**15
            folder = work / f"s{i}"
            folder.mkdir(parents=True)
            child = {"rows": rows, "ledger": str(folder / "ledger"), "out": str(folder), "studies": studies,
                     "audit": None}
            got = _child(python, child)
            if got is None:
                results.append(None)
                print(f"{setting}: failed")
                continue
            audited = _child(python, {**child, "audit": str(folder / f"release{len(studies) - 1}")})
            record_rows = _rows(folder / "ledger" / "records")
            same = "-" if not results or results[0] is None else (
                "yes" if all(_same(folder / f"release{r}", work / "s0" / f"release{r}")
                             for r in range(len(studies))) else "NO")
            results.append(got)
            seconds = " + ".join(f"{s:.1f}" for s in got["seconds"])
            audit = f"{audited['seconds'][0]:6.1f} s {audited['peak_gb']:5.2f} GB" if audited else "failed"
            print(f"{setting:<34} release {seconds:>13} s  peak {got['peak_gb']:5.2f} GB   audit {audit}   "
                  f"ledger sets {record_rows / 1e6:6.1f} M rows   tables as the first: {same}", flush=True)
            shutil.rmtree(folder / "ledger", ignore_errors=True)  # person-level: not kept longer than needed
    finally:
        if engine is not None:
            engine.remove()


if __name__ == "__main__":
    main()
