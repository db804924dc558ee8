"""The fallback reads a part of the claims register and gives the whole's result (issue 14, item 4).

``pseudonymisation.ttp_register`` reads, by streaming passes, only the claims rows that can pair
with a query (and the few the model samples), with the whole register's figures beside them. Here a
synthetic register with blocks over their limits (a very common family name and given name), persons
with several rows, insurance tokens that take persons and records linked by BSN: the links and the
report from the part are those from the whole register held in memory.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest
from fallback_oracle import link_fallback

from pseudonymisation import ttp_register
from pseudonymisation.comparison import encodings_table, hits, read_encodings
from pseudonymisation.encodings import BLOOM_FIELDS, TOKEN_FIELDS
from pseudonymisation.errors import PseudonymisationError
from pseudonymisation.matching import FallbackSettings
from pseudonymisation.ttp_fallback import Register, run_fallback

PERSONS = 10_000


def _filters(rng: np.random.Generator, field: str, pool: int, picks: np.ndarray) -> np.ndarray:
    words = BLOOM_FIELDS[field].words
    values = rng.integers(1, 2**63, (pool, words), dtype=np.int64).view(np.uint64)
    return values[picks]


def _noisy(rng: np.random.Generator, words: np.ndarray, share: float) -> np.ndarray:
    """A copy with a few bits flipped in a share of the rows (a typo in a name)."""
    out = words.copy()
    rows = np.flatnonzero(rng.random(len(out)) < share)
    out[rows, 0] ^= np.uint64(1) << rng.integers(0, 24, len(rows)).astype(np.uint64)
    return out


def _register(rng: np.random.Generator) -> tuple[np.ndarray, dict, np.ndarray]:
    """Claims rows (1-3 per person): tokens, the encodings' columns, and each row's person."""
    person = np.repeat(np.arange(PERSONS), rng.integers(1, 4, PERSONS))
    n = len(person)
    family = np.where(rng.random(PERSONS) < 0.25, 0, rng.integers(1, 6000, PERSONS))  # one name for 25 %: a big block
    given = np.where(rng.random(PERSONS) < 0.1, 0, rng.integers(1, 10_000, PERSONS))  # 10 %: over the weak limit
    address = rng.integers(0, 8000, PERSONS)
    columns = {
        "t_insurance": pl.Series(np.where(rng.random(n) < 0.3, rng.integers(0, 2**62, n), person * 7 + 1)),
        "t_birth": pl.Series(rng.integers(0, 60_000, PERSONS)[person]),
        "t_address": pl.Series(address[person]).scatter(np.flatnonzero(rng.random(n) < 0.1), None),
    }
    blooms = {"bf_family_name": _filters(rng, "bf_family_name", 6000, family[person]),
              "bf_initials": _filters(rng, "bf_initials", 26, rng.integers(0, 26, PERSONS)[person]),
              "bf_given_name": _filters(rng, "bf_given_name", 10_000, given[person]),
              "bf_street": _filters(rng, "bf_street", 8000, address[person]),
              "bf_city": _filters(rng, "bf_city", 40, (address % 40)[person])}
    tokens = rng.integers(0, 2**62, PERSONS)[person]
    return tokens, {**columns, **blooms}, person


def _write(path: Path, tokens: np.ndarray, columns: dict) -> None:
    encoded = {f: columns[f] for f in TOKEN_FIELDS}
    for f in BLOOM_FIELDS:
        encoded[f] = columns[f]
        encoded[f"{f}_present"] = np.ones(len(tokens), dtype=bool)
    pq.write_table(encodings_table(tokens.astype(np.int64), encoded), path)


@pytest.fixture
def suppliers(tmp_path: Path) -> dict[str, Path]:
    rng = np.random.default_rng(7)
    tokens, columns, person = _register(rng)
    first = np.flatnonzero(np.r_[True, person[1:] != person[:-1]])
    p1 = rng.integers(0, 256, (PERSONS, 16), dtype=np.uint8)
    # EHR: 900 persons linked by BSN (500 of them with encodings), 150 records without a P1 that
    # copy a person's row with typos (some without an insurance token).
    linked, labelled = rng.choice(PERSONS, 900, replace=False), None
    labelled = linked[:500]
    queries = rng.choice(np.setdiff1d(np.arange(PERSONS), linked), 150, replace=False)
    rows = first[np.r_[labelled, queries]]
    ehr_tokens = rng.integers(2**62, 2**63 - 1, len(linked) + len(queries))
    enc_tokens = np.r_[ehr_tokens[:500], ehr_tokens[900:]]
    ehr_columns = {f: columns[f].gather(rows) for f in TOKEN_FIELDS}
    ehr_columns["t_insurance"] = ehr_columns["t_insurance"].scatter(np.arange(500, 530), None)
    for f in BLOOM_FIELDS:
        ehr_columns[f] = _noisy(rng, columns[f][rows], 0.3)
    _write(tmp_path / "ehr.parquet", enc_tokens, ehr_columns)
    _write(tmp_path / "claims.parquet", tokens, columns)
    pl.DataFrame({"token": ehr_tokens[:900], "p1": [bytes(p1[i]) for i in linked]}).write_parquet(
        tmp_path / "ehr_ids.parquet")
    pl.DataFrame({"token": tokens[first], "p1": [bytes(p) for p in p1]}).write_parquet(tmp_path / "claims_ids.parquet")
    return {name: tmp_path / f"{name}.parquet" for name in ("ehr", "claims", "ehr_ids", "claims_ids")}


def test_fallback_on_the_part_of_the_register_gives_the_whole_registers_links_and_report(
        suppliers: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ttp_register, "BATCH_ROWS", 997)  # several batches, not aligned with persons
    settings = FallbackSettings(threshold=18.0, margin=5.0)
    ehr, claims = read_encodings(suppliers["ehr"]), read_encodings(suppliers["claims"])
    plan, linked = ttp_register.fallback_plan(ehr, suppliers["ehr_ids"], suppliers["claims_ids"])
    # The model's samples made small (the register is small): the part is then a part.
    plan = dataclasses.replace(plan, random_pairs=400, address_pairs=200)
    candidate = ~hits(claims.token, linked)
    whole = run_fallback(ehr, Register(claims, candidate, int(candidate.sum())), plan, settings)
    register = ttp_register.read_register(suppliers["claims"], ehr, plan, linked)
    part = run_fallback(ehr, register, plan, settings)

    assert whole.report["blocking"]["skipped_large_blocks"] > 0  # the big blocks are exercised
    assert whole.report["linked_by_method"].get("probabilistic") and whole.report["linked_by_method"].get(
        "insurance_number")
    assert "weights_given_address_agrees" in whole.report["model"]
    assert part.report == whole.report
    assert part.links.sort("token").equals(whole.links.sort("token"))
    assert len(register.encoded) < len(claims) / 2, "the part, not the register"


def test_fallback_plan_from_the_identifier_files_is_the_in_memory_one(suppliers: dict[str, Path]) -> None:
    """The TTP's labels, read by streaming joins of the identifier files, are those of the frames
    held whole (link_fallback): the same records, in the same order."""
    ehr, claims = read_encodings(suppliers["ehr"]), read_encodings(suppliers["claims"])
    ehr_ids, claims_ids = pl.read_parquet(suppliers["ehr_ids"]), pl.read_parquet(suppliers["claims_ids"])
    settings = FallbackSettings(threshold=18.0, margin=5.0)
    plan, linked = ttp_register.fallback_plan(ehr, suppliers["ehr_ids"], suppliers["claims_ids"])
    candidate = ~hits(claims.token, linked)
    streamed = run_fallback(ehr, Register(claims, candidate, int(candidate.sum())), plan, settings)
    in_memory = link_fallback(ehr, claims, ehr_ids, claims_ids, settings)
    assert streamed.report == in_memory.report
    assert streamed.links.equals(in_memory.links)


def test_fallback_on_an_empty_register_refuses_as_the_in_memory_one(suppliers: dict[str, Path]) -> None:
    """No claims encodings: no labelled pair, the same clean refusal (no traceback of a sampler)."""
    empty = suppliers["claims"].with_name("empty.parquet")
    pq.write_table(pq.read_table(suppliers["claims"]).slice(0, 0), empty)
    ehr = read_encodings(suppliers["ehr"])
    plan, linked = ttp_register.fallback_plan(ehr, suppliers["ehr_ids"], suppliers["claims_ids"])
    with pytest.raises(PseudonymisationError, match="cannot be estimated") as in_memory:
        link_fallback(ehr, read_encodings(empty), pl.read_parquet(suppliers["ehr_ids"]),
                      pl.read_parquet(suppliers["claims_ids"]), FallbackSettings())
    with pytest.raises(PseudonymisationError) as streamed:
        run_fallback(ehr, ttp_register.read_register(empty, ehr, plan, linked), plan, FallbackSettings())
    assert str(streamed.value) == str(in_memory.value)
