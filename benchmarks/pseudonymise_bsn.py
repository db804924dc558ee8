"""Benchmark of stage-1 pseudonymisation over a national BSN column, next to its baselines.

One run prints, side by side:

1. the engine: read the column from Parquet -> valid/invalid (11-test) -> stage-1 pseudonym
   (AES PRF) -> labelled strings written to Parquet, for N BSNs (default 17.8 million);
2. the baseline a data steward would write: a per-row Python loop doing the same normalisation
   and 11-test, then ``hmac.new(key, bsn, sha256)`` per row, written the same way;
3. the limit: raw AES-256 throughput of this machine over N 16-byte blocks in one call;
4. optionally, the full supplier step (validation, tokens, P1, both outputs) on generated
   presets: ``--extracts nivel=/path/to/nivel --extracts national=/path/to/national``.

    .venv/bin/python benchmarks/pseudonymise_bsn.py
    .venv/bin/python benchmarks/pseudonymise_bsn.py --rows 1000000 --skip-baseline

Targets (issue 3): the whole column in under 5 s and at least 10x the per-row loop.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from extracts.bsn import valid_bsns_from_prefixes
from pseudonymisation.keys import Key, generate_key
from pseudonymisation.prf import P1_SCHEME, label, p1_from_bsn, parse_bsn_column, pseudonym_table, stage1_key
from pseudonymisation.supplier import run_supplier_step, write_random_columns


def make_column(n: int, path: Path) -> None:
    """N BSN strings as delivered: 99.3 % valid, the rest missing, malformed or mistyped."""
    rng = np.random.default_rng(17)
    prefixes = 10**7 + rng.choice(9 * 10**7, size=int(n * 1.12), replace=False)
    bsns, ok = valid_bsns_from_prefixes(prefixes)
    values = pl.Series(bsns[ok][:n]).cast(pl.String).str.zfill(9)
    defect = rng.random(n)
    values = pl.select(
        pl.when(pl.Series(defect < 0.003)).then(None)
        .when(pl.Series(defect < 0.005)).then(values.str.slice(0, 7))
        .when(pl.Series(defect < 0.007)).then(values.str.slice(0, 3) + " " + values.str.slice(3))
        .otherwise(values)
    ).to_series()
    pl.DataFrame({"bsn": values}).write_parquet(path)


def engine(src: Path, dst: Path, key: Key) -> tuple[float, int, dict[str, float]]:
    """The supplier step's own functions, in its order; returns time, valid count, phases."""
    phases = {}
    began = last = time.perf_counter()

    def mark(name: str) -> None:
        nonlocal last
        now = time.perf_counter()
        phases[name] = now - last
        last = now

    column = pl.read_parquet(src, columns=["bsn"])["bsn"]
    mark("read")
    value, status = parse_bsn_column(column)
    valid = (status == "valid").to_numpy()
    mark("validate")
    raw = p1_from_bsn(stage1_key(key), value[valid])
    mark("pseudonymise")
    write_random_columns(pseudonym_table(raw, label(P1_SCHEME, key.id)), dst)
    pl.DataFrame({"bsn_status": status}).write_parquet(dst.with_suffix(".status.parquet"))
    mark("write")
    return time.perf_counter() - began, int(valid.sum()), phases


def _valid_per_row(raw: str | None) -> int | None:
    if raw is None:
        return None
    s = raw.replace(" ", "").replace(".", "").replace("-", "")
    if len(s) == 8 and s.isascii() and s.isdigit():
        s = "0" + s
    if len(s) != 9 or not (s.isascii() and s.isdigit()) or s == "000000000":
        return None
    total = sum(w * int(c) for w, c in zip((9, 8, 7, 6, 5, 4, 3, 2, -1), s, strict=True))
    return int(s) if total % 11 == 0 else None


def baseline(src: Path, dst: Path, key: Key) -> tuple[float, int]:
    began = time.perf_counter()
    column = pl.read_parquet(src, columns=["bsn"])["bsn"].to_list()
    material = key.material
    out = []
    for raw in column:
        v = _valid_per_row(raw)
        if v is not None:
            out.append(hmac.new(material, b"%09d" % v, hashlib.sha256).hexdigest())
    pl.DataFrame({"p1": out}).write_parquet(dst, compression="zstd", statistics=False)
    return time.perf_counter() - began, len(out)


def hmac_only(src: Path, key: Key) -> float:
    """The bare per-row loop of the spec's reference figure: HMAC-SHA256 of each valid BSN."""
    column = [b.encode() for b in pl.read_parquet(src, columns=["bsn"])["bsn"].drop_nulls().to_list() if len(b) == 9]
    material = key.material
    began = time.perf_counter()
    out = [hmac.new(material, b, hashlib.sha256).digest() for b in column]
    seconds = time.perf_counter() - began
    assert len(out) == len(column)
    return seconds


def raw_aes(n: int) -> float:
    """One AES-256-ECB call over n blocks into a preallocated buffer (OpenSSL, AES-NI)."""
    blocks = np.random.default_rng(1).integers(0, 256, size=n * 16, dtype=np.uint8)
    out = np.empty(n * 16 + 16, dtype=np.uint8)
    out[:] = 0  # touch the pages first: measure the cipher, not the page faults
    enc = Cipher(algorithms.AES(bytes(32)), modes.ECB()).encryptor()
    began = time.perf_counter()
    enc.update_into(memoryview(blocks), memoryview(out))
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=17_800_000)
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--extracts", action="append", default=[], metavar="NAME=PATH",
                        help="time the full supplier step on a generated preset (both suppliers)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pfl-pseudo-"))
    try:
        key = generate_key(work / "network.key", "network")
        src = work / "bsn.parquet"
        make_column(args.rows, src)
        n = args.rows
        t_engine, valid, phases = engine(src, work / "engine.parquet", key)
        print(f"BSN column: {n:,} values, {valid:,} valid")
        print("engine phases: " + ", ".join(f"{k} {v:.2f} s" for k, v in phases.items()))
        print(f"{'method':<52}{'seconds':>9}{'M BSN/s':>10}{'vs loop':>9}")
        t_loop = t_hmac = None
        if not args.skip_baseline:
            t_loop, valid_loop = baseline(src, work / "loop.parquet", key)
            assert valid_loop == valid, "baseline and engine disagree on validity"
            t_hmac = hmac_only(src, key)
        t_aes = raw_aes(n)
        rows = [
            ("engine: read, 11-test, AES PRF, labelled, written", t_engine),
            ("baseline: per-row Python loop with hmac/hashlib", t_loop),
            ("  of which bare hmac per row (no validation/write)", t_hmac),
            ("limit: raw AES-256 over N blocks, one call", t_aes),
        ]
        for name, t in rows:
            if t is None:
                continue
            ratio = f"{t_loop / t:8.1f}x" if t_loop else "      -"
            print(f"{name:<52}{t:9.2f}{n / t / 1e6:10.2f}{ratio:>9}")
        print(f"target: engine < 5 s and >= 10x the loop -> "
              f"{'met' if t_engine < 5 and (t_loop is None or t_loop / t_engine >= 10) else 'NOT met'}")
        for spec in args.extracts:
            name, _, path = spec.partition("=")
            for supplier in ("ehr", "claims"):
                began = time.perf_counter()
                result = run_supplier_step(Path(path) / supplier, supplier, key, work / f"{name}-{supplier}")
                print(f"supplier step {name}/{supplier}: {time.perf_counter() - began:.1f} s, "
                      f"{result.persons:,} persons, peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2:.1f} GB")
                shutil.rmtree(work / f"{name}-{supplier}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
