"""Disclosure control at the sizes of issue 5: protect + audit a 10 x 8 x 5 table, and a study's release.

1. A 10 x 8 x 5 table with every margin (lognormal person counts, some small, some zero):
   :func:`disclosure.protect`, then the independent auditor (``audit``: A1, A3 with its own
   integer programs; A2, A4 with the true values). Target: under 10 s together.
2. A study folder (default ``work/demo/study``, made by ``pfl-demo``): ``pfl-release``'s stage into
   a temporary folder and ledger, then ``pfl-audit``'s checks over the release and the ledger.
   Target: under 60 s together. Prints the hidden cells per rule.

    .venv/bin/python benchmarks/disclosure_release.py
    .venv/bin/python benchmarks/disclosure_release.py --study /tmp/pfl/study --shape 10 8 5

A stratified release (issue 11, item 7: two strata, target < 60 s on 2 cores, no table withheld
where a safe pattern exists), on the tiny preset:

    .venv/bin/pfl-demo preset=tiny work=/tmp/pfl
    .venv/bin/pfl-study linked=/tmp/pfl/linked out=/tmp/pfl/study-age-sex 'study.strata=[age_band,sex]'
    .venv/bin/python benchmarks/disclosure_release.py --study /tmp/pfl/study-age-sex --no-table

Times are wall clock and CPU seconds of this process (on a shared machine the CPU time is the
figure to compare).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from audit import AuditTable, audit_release, audit_table, blocking, cell, crossed_equations
from disclosure import Policy, count_rule, protect, table_nd
from release.ledger import create_ledger
from release.make import make_release

TARGET_TABLE_S, TARGET_STUDY_S = 10.0, 60.0


def counts(shape: tuple[int, ...], median: float, seed: int) -> np.ndarray:
    """Lognormal counts around ``median`` with a heavy lower tail (some zeros, some 1..9)."""
    rng = np.random.default_rng(seed)
    out = np.floor(rng.lognormal(np.log(median), 0.9, size=shape)).astype(np.int64)
    out[rng.random(shape) < 0.03] = 0
    return out


def table_benchmark(shape: tuple[int, ...], median: float, seed: int) -> float:
    policy = Policy()
    inner = counts(shape, median, seed)
    names = [f"v{i}" for i in range(len(shape))]
    levels = [[f"{n}_{j}" for j in range(s)] for n, s in zip(names, shape, strict=True)]
    table = table_nd(inner, levels)
    primary = count_rule(table.values, policy)
    began = time.perf_counter()
    pattern = protect(table, primary, policy)
    protect_s = time.perf_counter() - began
    # The auditor's view: cells keyed by (variable, level), margins leave a variable out.
    def key(label: str):
        return cell(**{n: lvl for n, lvl in zip(names, label.split(","), strict=True) if lvl != "Total"})

    keys = [key(lab) for lab in table.labels]
    truth = dict(zip(keys, table.values.tolist(), strict=True))
    hidden = [k for k, h in zip(keys, pattern.hidden, strict=True) if h]
    audited = AuditTable.from_values("10x8x5", crossed_equations(dict(zip(names, levels, strict=True))), truth, hidden)
    began = time.perf_counter()
    findings = blocking(audit_table(audited, policy=_audit_policy(policy), truth=truth))
    audit_s = time.perf_counter() - began
    print(f"{'x'.join(map(str, shape))} table with every margin: {table.values.size} cells, "
          f"{len(table.equations)} equations, {int(((inner > 0) & (inner < 10)).sum())} inner primaries")
    print(f"  protect {protect_s:.2f} s (releasable={pattern.releasable}; hidden by rule "
          f"{pattern.counts_by_reason()}; {pattern.milp_count} MILPs, {pattern.lp_count} LPs)")
    print(f"  audit   {audit_s:.2f} s (verification mode: A1-A4 with its own integer programs): "
          f"{'PASS' if not findings else f'FAIL {len(findings)} findings'}")
    total = protect_s + audit_s
    print(f"  together {total:.2f} s (target < {TARGET_TABLE_S:.0f} s: {'met' if total < TARGET_TABLE_S else 'MISSED'})")
    return total


def _audit_policy(policy: Policy):
    from audit import Policy as AuditPolicy

    return AuditPolicy(threshold=policy.threshold, margin_percent=round(policy.margin * 100))


def study_benchmark(study: Path) -> float:
    with tempfile.TemporaryDirectory(prefix="pfl-bench-release-") as tmp:
        began, cpu = time.perf_counter(), time.process_time()
        create_ledger(Path(tmp) / "ledger", Policy())
        result = make_release(study, Path(tmp) / "release", ledger=Path(tmp) / "ledger")
        release_s, release_cpu = time.perf_counter() - began, time.process_time() - cpu
        began, cpu = time.perf_counter(), time.process_time()
        report = audit_release(Path(tmp) / "release", ledger=Path(tmp) / "ledger")
        audit_s, audit_cpu = time.perf_counter() - began, time.process_time() - cpu
    content = result.content
    print(f"study release of {study}: {sum(f.height for f in content.frames.values())} rows in "
          f"{len(content.frames)} tables, withheld: {content.withheld or 'none'}")
    print(f"  release {release_s:.2f} s ({release_cpu:.1f} CPU s); hidden quantities by rule (each once): "
          f"{content.cells_by_reason}")
    for table, reasons in content.hidden_by_reason.items():
        print(f"    {table}: {content.status_counts.get(table, {})}; hidden values by rule {reasons}")
    print(f"  audit   {audit_s:.2f} s ({audit_cpu:.1f} CPU s; {report.mode} mode, {report.milps} integer programs): "
          f"{'PASS' if report.passed else 'FAIL'}")
    total = release_s + audit_s
    print(f"  together {total:.2f} s (target < {TARGET_STUDY_S:.0f} s: {'met' if total < TARGET_STUDY_S else 'MISSED'})")
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs="+", default=[10, 8, 5])
    parser.add_argument("--median", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=2023)
    parser.add_argument("--study", type=Path, default=Path("work/demo/study"))
    parser.add_argument("--no-table", action="store_true", help="skip the 10 x 8 x 5 table")
    args = parser.parse_args()
    if not args.no_table:
        table_benchmark(tuple(args.shape), args.median, args.seed)
    if (args.study / "manifest.json").is_file():
        study_benchmark(args.study)
    else:
        print(f"no study folder at {args.study}: run `.venv/bin/pfl-demo` first (or pass --study FOLDER)")


if __name__ == "__main__":
    main()
