"""m-probabilities without labels: EM on blocked pairs (``pseudonymisation.em_estimation``).

As Splink tests its estimators: plant two files, the second a copy of part of the first corrupted at
known rates, and check that EM, which never sees which pairs are true, recovers the m-probabilities
that the true pairs show (``estimate_model`` on the labels), and links as well as the labelled model.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from pseudonymisation.comparison import FIELDS, encoded_from_table, encodings_table
from pseudonymisation.encodings import encode_identifiers, fallback_keys
from pseudonymisation.errors import PseudonymisationError
from pseudonymisation.keys import Key
from pseudonymisation.em_estimation import estimate_model_em
from pseudonymisation.matching import FallbackSettings, estimate_model, run_cascade

KEYS = fallback_keys(Key("network", bytes(range(32))))
LETTERS = np.array(list("abcdefghijklmnopqrstuvwxyz"))


def _names(rng: np.random.Generator, n: int, pool: int) -> np.ndarray:
    words = np.array(["".join(rng.choice(LETTERS, rng.integers(4, 9))) for _ in range(pool)])
    return words[rng.integers(0, pool, n)]


def _typo(rng: np.random.Generator, name: str) -> str:
    i = int(rng.integers(0, len(name)))
    return name[:i] + str(rng.choice(LETTERS)) + name[i + 1:]


def _files(seed: int = 1, persons: int = 3000, copies: int = 2000):
    """File A: ``persons`` clean records. File B: ``copies`` of them corrupted, then 1000 others."""
    rng = np.random.default_rng(seed)
    a = pl.DataFrame({
        "family_name": _names(rng, persons, 800), "given_name": _names(rng, persons, 300),
        "birth_date": [dt.date(1930, 1, 1) + dt.timedelta(days=int(d)) for d in rng.integers(0, 30000, persons)],
        "postcode6": [f"{p}AB" for p in rng.integers(1000, 9999, persons)],
        "house_number": rng.integers(1, 200, persons).astype(str),
    }).with_columns(sex=pl.lit("F"), insurer=pl.lit(None, pl.String), insurance_number=pl.lit(None, pl.String))
    src = rng.permutation(persons)[:copies]
    rows = a[src].to_dicts()
    for r in rows:  # corruption at known rates
        if rng.random() < 0.10:
            r["birth_date"] = r["birth_date"] + dt.timedelta(days=int(rng.integers(1, 400)))
        u = rng.random()
        if u < 0.05:
            r["house_number"] = None
        elif u < 0.20:
            r["house_number"] = str(int(r["house_number"]) + 1)
        if rng.random() < 0.25:
            r["family_name"] = _typo(rng, r["family_name"])
        if rng.random() < 0.15:
            r["given_name"] = str(_names(rng, 1, 300)[0])
    others = _files_others(rng, 1000).with_columns(sex=pl.lit("F"), insurer=pl.lit(None, pl.String),
                                                   insurance_number=pl.lit(None, pl.String))
    b = pl.concat([pl.DataFrame(rows, schema=a.schema), others.select(a.columns)])
    truth = np.r_[src + 1, np.zeros(1000, np.int64)]  # B row -> A token (row + 1), 0 = no partner
    return a, b, truth


def _files_others(rng: np.random.Generator, n: int) -> pl.DataFrame:
    return pl.DataFrame({
        "family_name": _names(rng, n, 800), "given_name": _names(rng, n, 300),
        "birth_date": [dt.date(1930, 1, 1) + dt.timedelta(days=int(d)) for d in rng.integers(0, 30000, n)],
        "postcode6": [f"{p}AB" for p in rng.integers(1000, 9999, n)],
        "house_number": rng.integers(1, 200, n).astype(str),
    })


def _encoded(frame: pl.DataFrame, first_token: int):
    token = np.arange(first_token, first_token + frame.height, dtype=np.int64)
    return encoded_from_table(encodings_table(token, encode_identifiers(KEYS, frame)), "test")


def test_em_recovers_the_m_probabilities_of_the_true_pairs_without_seeing_them():
    a, b, truth = _files()
    ea, eb = _encoded(a, 1), _encoded(b, 10_000)
    em = estimate_model_em(eb, ea)
    matched = np.flatnonzero(truth)
    labelled = estimate_model((eb.take(matched), ea.take(truth[matched] - 1)), (eb, ea))
    assert em.labelled_pairs == 0
    np.testing.assert_allclose(em.u, labelled.u)  # u from random pairs: the same route
    for j, f in enumerate(FIELDS):
        if f in ("t_insurance", "bf_initials", "bf_street", "bf_city"):
            continue  # missing on every row: nothing to recover
        # EM's m within 0.03 of the true pairs' level shares (planted: birth date 0.90 agree, ...)
        np.testing.assert_allclose(em.m[j], labelled.m[j], atol=0.03, err_msg=f)
    assert abs(em.m[FIELDS.index("t_birth"), 1] - 0.90) < 0.03


def test_em_model_links_as_well_as_the_labelled_model():
    a, b, truth = _files(seed=2)
    ea, eb = _encoded(a, 1), _encoded(b, 10_000)
    matched = np.flatnonzero(truth)
    results = [run_cascade(eb, ea, model, FallbackSettings()) for model in
               (estimate_model_em(eb, ea), estimate_model((eb.take(matched), ea.take(truth[matched] - 1)), (eb, ea)))]
    em, labelled = ((r.method != "") & (r.target == truth) for r in results)
    wrong = [int(((r.method != "") & (r.target != truth)).sum()) for r in results]
    assert wrong[0] <= 2 and em.sum() >= labelled.sum() - 10, (wrong, em.sum(), labelled.sum())


def test_em_without_candidate_pairs_is_refused_by_name():
    a, _, _ = _files(seed=3, persons=50, copies=0)
    empty = a.clear()
    with pytest.raises(PseudonymisationError, match="too few pairs"):
        estimate_model_em(_encoded(empty, 1), _encoded(a, 100))
