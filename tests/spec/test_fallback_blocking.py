"""Spec tests of the TTP's blocking (``pseudonymisation/comparison.py``, ``candidate_pairs``).

A given name or a street is shared by many people: a band of one is a blocking key only where it
is rare (at most ``WEAK_MAX_BLOCK`` records a side). A frequent given name adds no pairs; a rare
one still finds the pair whose birth date, address, insurance number and family name all failed.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from pseudonymisation.comparison import WEAK_MAX_BLOCK, candidate_pairs, encodings_table, read_encodings
from pseudonymisation.encodings import encode_identifiers, fallback_keys
from pseudonymisation.keys import Key

KEYS = fallback_keys(Key("network", bytes(range(32))))
_SURNAMES = [a + b for a in ("Ooster", "Wester", "Hout", "Molen", "Kerk", "Brug", "Zand", "Linde", "Haver", "Rozen")
             for b in ("berg", "dijk", "veen", "hof", "bos", "kamp", "meer", "wijk", "broek", "horst", "beek",
                       "hout", "hoek", "land", "huis", "laar", "wal", "vliet", "mate", "brink", "sloot",
                       "haar", "loo", "rade", "donk", "heide", "hoven", "burg", "stra", "kerk")]


def _encoded(tmp_path: Path, name: str, rows: list[dict]):
    frame = pl.DataFrame(rows, schema={"family_name": pl.String, "initials": pl.String, "given_name": pl.String,
                                       "birth_date": pl.Date, "sex": pl.String, "postcode6": pl.String,
                                       "house_number": pl.String, "insurer": pl.String,
                                       "insurance_number": pl.String})
    path = tmp_path / f"{name}.parquet"
    pq.write_table(encodings_table(np.arange(len(rows), dtype=np.int64), encode_identifiers(KEYS, frame)), path)
    return read_encodings(path)


def _person(i: int, given: str) -> dict:
    return {"family_name": _SURNAMES[i], "initials": given[0], "given_name": given,
            "birth_date": dt.date(1930, 1, 1) + dt.timedelta(days=37 * i), "sex": "F",
            "postcode6": f"{1000 + i}AB", "house_number": str(1 + i % 90), "insurer": "3311",
            "insurance_number": f"{100000000 + i}"}


def test_a_frequent_given_name_is_no_blocking_key_and_a_rare_one_is(tmp_path: Path) -> None:
    n_common = WEAK_MAX_BLOCK + 50
    register = [_person(i, "Emma") for i in range(n_common)] + [_person(n_common, "Quirine")]
    # Queries: an Emma and the Quirine, each with every other identifier different from all rows.
    queries = [{**_person(290, "Emma"), "family_name": "Zzyzx"}, {**_person(291, "Quirine"), "family_name": "Qwylt"}]
    qi, ti, stats = candidate_pairs(_encoded(tmp_path, "q", queries), _encoded(tmp_path, "t", register))
    pairs = set(zip(qi.tolist(), ti.tolist(), strict=True))
    assert (1, n_common) in pairs  # the rare given name found it
    assert not any(q == 0 for q, _ in pairs)  # the frequent one: not a block (it would give n_common pairs)
    assert stats["skipped_large_blocks"] > 0
