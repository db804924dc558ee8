"""The supplier's part of the fallback: which records get keyed encodings, and their tokens.

EHR (``patients``): every record without a usable BSN gets a fresh random record token of its own
(its content rows carry it, so the TTP can give it a project pseudonym if it links it) and its
encodings; so does a random sample of up to ``CALIBRATION_SAMPLE`` records with a valid BSN, under
their person's token: the TTP estimates the model's m-probabilities on them (their BSN links them:
free labels) and the precision of the fallback (it links them again as if their BSN were missing).
A sample, not all: the TTP gets what the estimate needs, no more (data minimisation).

Claims (``insured``): every insured person with a valid BSN, one row per distinct set of
identifiers (people move and switch insurers between years), under the person's token.

The encodings go to the TTP in ``for_ttp/encodings.parquet`` only, rows in token order (random).
"""

from __future__ import annotations

import polars as pl
import pyarrow as pa

from extracts.validation import ValidatedExtract
from pseudonymisation.comparison import encodings_table
from pseudonymisation.encodings import IDENTIFIER_COLUMNS, FallbackKeys, encode_identifiers
from pseudonymisation.errors import PseudonymisationError
from pseudonymisation.prf import random_tokens

__all__ = ["CALIBRATION_SAMPLE", "FallbackEncodings", "supplier_encodings"]

CALIBRATION_SAMPLE = 20_000
_PARTS = ("birth_date", "sex", *IDENTIFIER_COLUMNS)


class FallbackEncodings:
    """What the supplier step writes for the fallback: encodings, per-record tokens, counts."""

    def __init__(self, table: pa.Table, record_tokens: pl.DataFrame | None, counts: dict) -> None:
        self.table = table
        self.record_tokens = record_tokens  # EHR: patient_id -> token of records without a usable BSN
        self.counts = counts


def _parts(lf: pl.LazyFrame, *extra: str) -> pl.LazyFrame:
    schema = lf.collect_schema()
    return lf.select(*extra, *(pl.col(c) if c in schema else pl.lit(None, pl.String).alias(c) for c in _PARTS))


def _table(keys: FallbackKeys, frame: pl.DataFrame) -> pa.Table:
    frame = frame.sort("token")  # token order is random: the rows say nothing of content order
    return encodings_table(frame["token"].to_numpy(), encode_identifiers(keys, frame))


def _ehr(validated: ValidatedExtract, mapping: pl.DataFrame, keys: FallbackKeys) -> FallbackEncodings:
    patients = (
        _parts(validated.tables["patients"], "patient_id", "bsn")
        .join(mapping.lazy().select("bsn", "token"), on="bsn", how="left", nulls_equal=True)
        .drop("bsn")
        .collect(engine="streaming")
    )
    without = patients.filter(pl.col("token").is_null())
    fresh = random_tokens(without.height)
    if fresh.is_in(mapping["token"].drop_nulls().implode()).any():  # odds ~1e-9 at register size
        msg = "internal: a fresh record token repeated a person's token; run the step again"
        raise PseudonymisationError(msg)
    without = without.with_columns(token=fresh)
    valid = patients.filter(pl.col("token").is_not_null())
    sample = valid.sample(min(CALIBRATION_SAMPLE, valid.height), shuffle=True) if valid.height else valid
    frame = pl.concat([without, sample])
    counts = {"records_without_usable_bsn": without.height, "calibration_records": sample.height}
    return FallbackEncodings(_table(keys, frame), without.select("patient_id", "token"), counts)


def _claims(validated: ValidatedExtract, mapping: pl.DataFrame, keys: FallbackKeys) -> FallbackEncodings:
    insured = (
        _parts(validated.tables["insured"], "bsn")
        .join(mapping.lazy().select("bsn", "token"), on="bsn", how="left", nulls_equal=True)
        .filter(pl.col("token").is_not_null())
        .drop("bsn")
        .unique()
        .collect(engine="streaming")
    )
    counts = {"insured_persons": insured["token"].n_unique(), "identifier_sets": insured.height}
    return FallbackEncodings(_table(keys, insured), None, counts)


def supplier_encodings(validated: ValidatedExtract, supplier: str, mapping: pl.DataFrame,
                       keys: FallbackKeys) -> FallbackEncodings:
    """The fallback encodings of an extract (see the module docstring); ``mapping`` is bsn -> token."""
    if supplier == "ehr":
        return _ehr(validated, mapping, keys)
    return _claims(validated, mapping, keys)
