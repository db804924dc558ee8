"""Secondary suppression of a 10 x 8 x 5 table with every margin (issue 5: under 10 s on 2 cores).

The counts are realistic for a stratified table of persons (age band x region x sex-and-more):
a lognormal spread around a few tens, so that some inner cells are small (primaries), a few are
zero, and the margins are large. Prints the wall time of :func:`protect`, the hidden cells by
reason and the number of integer (and linear) programs solved, then re-checks the pattern.

    .venv/bin/python benchmarks/disclosure_protect.py
    .venv/bin/python benchmarks/disclosure_protect.py --shape 10 8 5 --median 25 --seed 3
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from disclosure import Policy, check, count_rule, protect, table_nd


def counts(shape: tuple[int, ...], median: float, seed: int) -> np.ndarray:
    """Lognormal counts around ``median`` with a heavy lower tail (some zeros, some 1..9)."""
    rng = np.random.default_rng(seed)
    out = np.floor(rng.lognormal(np.log(median), 0.9, size=shape)).astype(np.int64)
    out[rng.random(shape) < 0.03] = 0  # empty strata (structural or sampling zeros)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs="+", default=[10, 8, 5])
    parser.add_argument("--median", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=2023)
    args = parser.parse_args()
    policy = Policy()
    inner = counts(tuple(args.shape), args.median, args.seed)
    table = table_nd(inner)
    primary = count_rule(table.values, policy)
    print(f"table {'x'.join(map(str, args.shape))} with margins: {table.values.size} cells, "
          f"{len(table.equations)} equations; inner zeros {int((inner == 0).sum())}, "
          f"inner 1..{policy.threshold - 1}: {int(((inner > 0) & (inner < policy.threshold)).sum())}")
    start = time.perf_counter()
    pattern = protect(table, primary, policy)
    elapsed = time.perf_counter() - start
    print(f"protect: {elapsed:.2f} s, releasable={pattern.releasable} {pattern.reason}")
    print(f"hidden by reason: {pattern.counts_by_reason()}")
    print(f"integer programs solved (milp): {pattern.milp_count}; "
          f"linear programs (accepted only when integral): {pattern.lp_count}")
    secondary = np.array([r == "secondary" for r in pattern.reasons])
    print(f"secondary cost (sum of values): {int(table.values[secondary].sum())}")
    start = time.perf_counter()
    problems = check(table, pattern.hidden, pattern.hidden & primary.hidden, policy)
    print(f"re-check A1-A4: {len(problems)} violations ({time.perf_counter() - start:.2f} s)")


if __name__ == "__main__":
    main()
