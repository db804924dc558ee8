"""The supplier's part of the fallback: which records get keyed encodings, and their tokens.

EHR (``patients``): every record without a usable BSN gets a record token of its own (its content
rows carry it, so the TTP can give it a project pseudonym if it links it) and its encodings; so
does a random sample of up to ``CALIBRATION_SAMPLE`` records with a valid BSN, under their
person's token: the TTP estimates the model's m-probabilities on them (their BSN links them:
free labels) and the precision of the fallback (it links them again as if their BSN were missing).
A sample, not all: the TTP gets what the estimate needs, no more (data minimisation).

Claims (``insured``): every insured person with a valid BSN, one row per distinct set of
identifiers (people move and switch insurers between years), under the person's token.

The encodings go to the TTP in ``for_ttp/encodings.parquet`` only, rows in token order (random).

Partitioned (issue 14): each partition encodes its records (:func:`ehr_partition`,
:func:`claims_partition`) and writes them with the calibration score of each sampled candidate;
the reduce (:func:`reduce_encodings`) keeps the ``CALIBRATION_SAMPLE`` candidates of smallest
score over all partitions -- the sample one partition would have drawn -- and sorts by token (the
claims' encodings, one or more rows per insured person, are put in token order a range at a
time: :mod:`pseudonymisation.supplier_reduce`).
Record tokens and scores come from :mod:`pseudonymisation.supplier_tokens` (keyed by the run key,
by row number), so they do not depend on the partition.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pseudonymisation.comparison import encodings_table
from pseudonymisation.encodings import IDENTIFIER_COLUMNS, FallbackKeys, encode_identifiers
from pseudonymisation.keys import Key
from pseudonymisation.supplier_reduce import PARTIAL_ROW_GROUP
from pseudonymisation.supplier_tokens import sample_scores

__all__ = ["CALIBRATION_SAMPLE", "PARTS", "claims_partition", "ehr_partition", "parts", "reduce_encodings"]

CALIBRATION_SAMPLE = 20_000
PARTS = ("birth_date", "sex", *IDENTIFIER_COLUMNS)
_SCORE = "score"


def parts(lf: pl.LazyFrame, *extra: str) -> pl.LazyFrame:
    """``extra`` columns and the parts the encodings read (null where the extract lacks one)."""
    schema = lf.collect_schema()
    return lf.select(*extra, *(pl.col(c) if c in schema else pl.lit(None, pl.String).alias(c) for c in PARTS))


def _encoded(keys: FallbackKeys, frame: pl.DataFrame, score: pl.Series | None) -> pa.Table:
    """Encodings of ``frame`` (token and parts), rows sorted by token then parts, with the scores (EHR)."""
    order = frame.with_row_index("__i").sort("token", *PARTS, nulls_last=True)["__i"]
    frame = frame[order]
    table = encodings_table(frame["token"].to_numpy(), encode_identifiers(keys, frame))
    return table if score is None else table.append_column(_SCORE, score[order].to_arrow())


def ehr_partition(keys: FallbackKeys, run_key: Key, patients: pl.DataFrame, path: Path) -> dict:
    """One partition's EHR encodings: records without a usable BSN (``person_token`` null, with their
    record ``token``) and this partition's best calibration candidates. ``patients``: ``__row``,
    ``token``, ``person_token`` and the parts. Writes ``path``; returns the partition's counts."""
    without = patients.filter(pl.col("person_token").is_null())
    valid = patients.filter(pl.col("person_token").is_not_null())
    scores = sample_scores(run_key, valid["__row"].to_numpy())
    best = scores.arg_sort()[:CALIBRATION_SAMPLE]
    candidates = valid[best]
    frame = pl.concat([without, candidates]).select("token", *PARTS)
    score = pl.concat([pl.Series(_SCORE, [None] * without.height, pl.UInt64), scores[best]])
    pq.write_table(_encoded(keys, frame, score), path, compression="none")
    return {"records_without_usable_bsn": without.height, "valid_records": valid.height}


def claims_partition(keys: FallbackKeys, insured: pl.DataFrame, path: Path) -> dict:
    """One partition's claims encodings: one row per person and distinct set of identifiers."""
    sets = insured.select("token", *PARTS).unique()
    # Small row groups (sorted by token): the reduce reads one token range at a time.
    pq.write_table(_encoded(keys, sets, None), path, compression="none", row_group_size=PARTIAL_ROW_GROUP)
    return {"insured_persons": sets["token"].n_unique(), "identifier_sets": sets.height}


def reduce_encodings(paths: list[Path]) -> tuple[pa.Table, pa.Array]:
    """All partitions' EHR encodings: the calibration candidates of smallest score over all partitions,
    rows in token order (a stable sort: a person's rows keep their order). Also returns the
    record tokens of the records without a usable BSN (for the uniqueness check).

    In memory: the records without a usable BSN and each partition's best candidates (at most
    ``CALIBRATION_SAMPLE`` each), not the persons. The claims' encodings (every insured person)
    are reduced a token range at a time (:func:`pseudonymisation.supplier_reduce.write_claims_encodings`).
    """
    table = pa.concat_tables([pq.read_table(p) for p in paths])
    scored = pc.is_valid(table.column(_SCORE))
    candidates = table.filter(scored)
    keep = pc.sort_indices(candidates, sort_keys=[(_SCORE, "ascending")])[:CALIBRATION_SAMPLE]
    records = table.filter(pc.invert(scored))
    merged = pa.concat_tables([records, candidates.take(keep)])
    merged = merged.take(pc.sort_indices(merged, sort_keys=[("token", "ascending")])).drop_columns([_SCORE])
    return merged.combine_chunks(), records.column("token").combine_chunks()
