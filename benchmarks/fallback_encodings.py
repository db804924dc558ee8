"""The supplier's fallback encodings of insured persons, next to encoding every row's names anew.

    .venv/bin/python benchmarks/fallback_encodings.py --extract /big/nivel/claims
    .venv/bin/python benchmarks/fallback_encodings.py --extract /big/nivel/claims --rows 4000000

Reads the first ``--rows`` distinct sets of identifying parts of a claims extract's
``insured.parquet`` (the rows a claims partition encodes: one per person and set of identifiers)
and encodes them twice, each timed:

- the engine: :func:`pseudonymisation.encodings.encode_identifiers`, which standardises and
  encodes each distinct name, street and city once and gives the result to its rows;
- the baseline: the same primitives row by row, as the engine did before (every row's names
  standardised, every row's filters built: ``normalise_*`` and ``bloom_filters`` over the column).

Both must give the same filters and presence on every row. Prints the distinct values per field,
the seconds of each and the speed-up. No identifier is printed.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import polars as pl

from pseudonymisation.encodings import (
    _SOURCES,
    BLOOM_FIELDS,
    bloom_filters,
    encode_identifiers,
    fallback_keys,
    normalise_initials,
    normalise_letters,
    normalise_surname,
)
from pseudonymisation.keys import Key
from pseudonymisation.supplier_encodings import PARTS

STANDARDISE = {"bf_family_name": normalise_surname, "bf_initials": normalise_initials}


def baseline(keys, frame: pl.DataFrame) -> dict[str, np.ndarray]:
    """Every row's names standardised and encoded (the engine before distinct names)."""
    out = {}
    for field, spec in BLOOM_FIELDS.items():
        names = frame.select(STANDARDISE.get(field, normalise_letters)(pl.col(_SOURCES[field]))).to_series()
        out[field] = bloom_filters(keys.blooms[field], spec, names)
        out[f"{field}_present"] = names.is_not_null().to_numpy()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--extract", type=Path, required=True, help="a claims extract folder (insured.parquet)")
    parser.add_argument("--rows", type=int, default=2_000_000, help="distinct identifier sets to encode")
    args = parser.parse_args()
    frame = (pl.scan_parquet(args.extract / "insured.parquet").select("bsn", *PARTS).unique(maintain_order=True)
             .head(args.rows).collect().drop("bsn"))
    keys = fallback_keys(Key("network", bytes(range(32))))
    distinct = ", ".join(f"{c} {frame[c].n_unique() / 1e3:.0f} k" for c in _SOURCES.values() if c in frame.columns)
    print(f"{frame.height / 1e6:.2f} M identifier sets; distinct: {distinct}")
    began = time.perf_counter()
    base = baseline(keys, frame)
    base_s = time.perf_counter() - began
    began = time.perf_counter()
    got = encode_identifiers(keys, frame)
    engine_s = time.perf_counter() - began
    same = all(np.array_equal(got[f], base[f]) for f in base)
    print(f"{'baseline (every row, names only)':<40} {base_s:8.1f} s")
    print(f"{'engine (distinct names, + tokens)':<40} {engine_s:8.1f} s   x{base_s / engine_s:.1f}   "
          f"same filters and presence: {'yes' if same else 'NO'}")
    if not same:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
