"""The overhead of each executor against the in-process loop (issue 14, item 6), side by side.

The same toy partition function (a polars plan: read one partition file, per-person totals,
written back, a small summary returned) over the same generated rows, as one partition in
process (K = 1), as K partitions in process, on a local process pool, on a Dask
``LocalCluster`` and on Spark ``local[N]``:

    .venv/bin/python benchmarks/executors.py                       # K = 8, 2 workers, 4M rows
    .venv/bin/python benchmarks/executors.py --rows 20000000 --k 16 --workers 2 --repeat 3

Per executor: the time to start it (a pool, a cluster, a JVM), the wall time of one map over
the K partitions (the best of ``--repeat``, after one warm-up map that also starts the workers'
Pythons), and the overhead of that map against K partitions in process, in seconds and as a
factor. Nothing leaves the machine; the files live in a temporary folder removed at the end.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from execution import open_executor


def totals(item: tuple[str, str]) -> tuple[int, int]:
    """The partition function: per-person totals of one partition file, written beside it."""
    source, out = item
    frame = (pl.scan_parquet(source)
             .filter(pl.col("amount") > 0)
             .group_by("p2").agg(pl.col("amount").sum(), pl.len().alias("lines"),
                                 pl.col("practice").n_unique().alias("practices"))
             .sort("p2").collect())
    frame.write_parquet(Path(out) / f"{Path(source).stem}.totals.parquet")
    return frame.height, int(frame["amount"].sum())


def write_partitions(folder: Path, rows: int, k: int, seed: int = 14) -> list[Path]:
    """``rows`` claim-like rows split by person into ``k`` files (p2 mod k, as the engine does)."""
    rng = np.random.default_rng(seed)
    frame = pl.DataFrame({"p2": rng.integers(0, rows // 20 + 1, rows), "practice": rng.integers(0, 400, rows),
                          "amount": rng.integers(-50, 5000, rows)})
    files = []
    for index in range(k):
        files.append(folder / f"k{k}-part-{index:04d}.parquet")
        frame.filter(pl.col("p2") % k == index).write_parquet(files[-1])
    return files


def measure(name: str, options: dict, items: list[tuple[str, str]], repeat: int) -> tuple[float, float, list]:
    began = time.perf_counter()
    with open_executor(name, **options) as ex:
        ex.map(totals, items[:1])  # the workers' first task: their Python and polars start
        started = time.perf_counter() - began
        best, result = float("inf"), []
        for _ in range(repeat):
            t = time.perf_counter()
            result = ex.map(totals, items)
            best = min(best, time.perf_counter() - t)
    return started, best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4_000_000)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip", nargs="*", default=[], help="executors to leave out: processes dask spark")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pfl-bench-executors-") as tmp:
        folder = Path(tmp)
        one = write_partitions(folder, args.rows, 1)
        many = write_partitions(folder, args.rows, args.k)
        out = folder / "out"
        out.mkdir()
        cases = [("local", 1, {}, one), ("local", args.k, {}, many),
                 ("processes", args.k, {"workers": args.workers}, many),
                 ("dask", args.k, {"workers": args.workers}, many),
                 ("spark", args.k, {"workers": args.workers}, many)]
        rows, reference, baseline = [], None, None
        for name, k, options, files in cases:
            if name in args.skip:
                continue
            started, wall, result = measure(name, options, [(str(f), str(out)) for f in files], args.repeat)
            summary = (sum(r[0] for r in result), sum(r[1] for r in result))
            reference = reference or summary
            assert summary == reference, f"{name} K={k}: {summary} != {reference}"
            if name == "local" and k == args.k:
                baseline = wall
            rows.append((name, k, started, wall))
    print(f"executor overhead: {args.rows:,} rows in K partitions, {args.workers} workers, "
          f"best of {args.repeat} (python benchmarks/executors.py --rows {args.rows} --k {args.k} "
          f"--workers {args.workers} --repeat {args.repeat})")
    print(f"{'executor':<28}{'start s':>9}{'map s':>9}{'overhead s':>12}{'x in-process':>14}")
    for name, k, started, wall in rows:
        label = f"{name} K={k}" + (f" ({args.workers} workers)" if name not in ("local",) else "")
        over = f"{wall - baseline:+.2f}" if baseline else "-"
        factor = f"{wall / baseline:.2f}" if baseline else "-"
        print(f"{label:<28}{started:>9.2f}{wall:>9.2f}{over:>12}{factor:>14}")


if __name__ == "__main__":
    main()
