"""The supplier step: BSN -> record token + stage-1 pseudonym, split into two outputs.

Runs at each supplier (``shared/spec/pseudonymisation.md``, step 1)::

    <out>/for_ttp/identifiers.parquet     token -> P1 (16 bytes) and its label ``P1v1.<key id>``,
                                          one row per person; nothing else
    <out>/for_ttp/encodings.parquet       keyed fallback encodings (tokens, Bloom filters) of the
                                          records the TTP may link without a BSN
                                          (:mod:`pseudonymisation.supplier_encodings`)
    <out>/for_ttp/manifest.json           supplier, batch id, network key id, counts, checksums
    <out>/for_research/<table>.parquet    the validated extract, ``bsn`` replaced by ``token``
                                          and ``bsn_status``, without the contract v2
                                          identifier columns (postcode6, names, ...)
    <out>/for_research/manifest.json      supplier, batch id, tables, rows, checksums
    <out>/supplier_report.json            stays with the supplier: quarantine counts per reason
                                          (per practice for the EHR), never a value

Tokens are fresh random 64-bit integers per run and per person (one per distinct valid BSN of the
extract), so content files of two runs or two suppliers cannot be joined without the TTP's maps.
The identifier file is written in token order, which is random: its rows say nothing about the
order of the content rows. Everything is written under a temporary name and renamed at the end.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from extracts.atomic import claim_output, file_sha256, staging
from extracts.bsn import BsnStatus
from extracts.contract import IDENTIFYING_COLUMNS
from extracts.validation import ValidatedExtract, validate_extract
from pseudonymisation.supplier_encodings import FallbackEncodings, supplier_encodings
from pseudonymisation.encodings import ENCODING_SCHEME, FallbackKeys, fallback_keys
from pseudonymisation.keys import Key
from pseudonymisation.prf import (
    P1_SCHEME,
    TOKEN_SCHEME,
    label,
    p1_from_bsn,
    parse_bsn_column,
    pseudonym_table,
    random_tokens,
    stage1_key,
)

__all__ = ["SupplierResult", "run_supplier_step", "write_json", "write_random_columns"]

BSN_TABLES = {"ehr": ("patients",), "claims": ("insured", "claims")}


@dataclass(frozen=True)
class SupplierResult:
    out: Path
    batch_id: str
    network_key_id: str
    persons: int
    report: dict
    seconds: float


def write_random_columns(table: pa.Table, path: Path) -> None:
    """Write pseudonyms/tokens: no dictionary or compression for random columns.

    Random values neither repeat nor compress; trying costs more time than it saves space.
    Label columns (one value) are dictionary-encoded.
    """
    labels = [c for c in table.column_names if c.endswith("_label")]
    pq.write_table(table, path, compression="none", use_dictionary=labels or False, write_statistics=False)


def write_json(path: Path, payload: object) -> None:
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str))
    os.replace(tmp, path)


def _token_map(validated: ValidatedExtract, supplier: str, k1: Key, network_key: Key) -> tuple[pl.DataFrame, pa.Table]:
    """(bsn -> token, bsn_status) for every distinct BSN value, and the (token, p1) identifiers."""
    distinct = (
        pl.concat([validated.tables[t].select("bsn") for t in BSN_TABLES[supplier]])
        .unique()
        .collect(engine="streaming")["bsn"]
    )
    value, status = parse_bsn_column(distinct)
    valid = (status == BsnStatus.VALID.value).to_numpy()
    # One person per distinct valid BSN value: odd spellings were normalised by the validator.
    tokens = random_tokens(int(valid.sum()))
    spread = np.zeros(len(distinct), dtype=np.int64)
    spread[valid] = tokens.to_numpy()
    token_column = pl.select(pl.when(pl.Series(valid)).then(pl.Series(spread)).alias("token")).to_series()
    mapping = pl.DataFrame({"bsn": distinct, "bsn_status": status.cast(pl.String), "token": token_column})
    # Rows in token order, which is random: the file says nothing about content row order.
    order = tokens.arg_sort().to_numpy()
    raw = p1_from_bsn(k1, value[valid])[order]
    identifiers = pseudonym_table(raw, label(P1_SCHEME, network_key.id), tokens.gather(order))
    return mapping, identifiers


def _practice_quarantine(validated: ValidatedExtract, mapping: pl.DataFrame) -> list[dict]:
    """EHR: invalid BSNs per practice (the practice of each patient's latest registration)."""
    latest = (
        validated.tables["registrations"]
        .sort("start_date")
        .group_by("patient_id")
        .agg(pl.col("practice_id").last())
    )
    return (
        validated.tables["patients"]
        .select("patient_id", "bsn")
        .join(mapping.lazy().select("bsn", "bsn_status"), on="bsn", how="left", nulls_equal=True)
        .join(latest, on="patient_id", how="left")
        .filter(pl.col("bsn_status") != BsnStatus.VALID.value)
        .group_by("practice_id", "bsn_status")
        .agg(pl.len().alias("patients"))
        .sort("practice_id", "bsn_status")
        .collect()
        .to_dicts()
    )


def run_supplier_step(
    extract: Path,
    supplier: str,
    network_key: Key,
    out: Path,
    *,
    max_quarantine_share: float = 0.01,
    overwrite: bool = False,
    linkage: str = "",
) -> SupplierResult:
    """Validate an extract, pseudonymise its BSNs and write the two outputs (see module doc).

    ``linkage``: the label of this linkage, the same at every supplier; the fallback's encodings are
    keyed per linkage (:func:`pseudonymisation.encodings.fallback_keys`). Empty: the network's
    standing sub-keys.
    """
    out = Path(out)
    keys = fallback_keys(network_key, linkage)  # a bad label is refused before anything is claimed
    with claim_output(out, overwrite=overwrite, inputs={"extract": extract}):  # before anything is read
        return _supplier_step(extract, supplier, network_key, out, max_quarantine_share=max_quarantine_share,
                              overwrite=overwrite, keys=keys, linkage=linkage)


def _supplier_step(extract: Path, supplier: str, network_key: Key, out: Path, *, max_quarantine_share: float,
                   overwrite: bool, keys: FallbackKeys, linkage: str) -> SupplierResult:
    began = time.perf_counter()
    validated = validate_extract(extract, supplier, max_quarantine_share=max_quarantine_share)
    k1 = stage1_key(network_key)
    mapping, identifiers = _token_map(validated, supplier, k1, network_key)
    fallback = supplier_encodings(validated, supplier, mapping, keys)
    batch_id = uuid.uuid4().hex
    # The partial folder holds identifiers: staging removes it on any failure.
    with staging(out, overwrite=overwrite) as tmp:
        report = _write_outputs(validated, supplier, network_key, mapping, identifiers, batch_id, tmp, fallback,
                                linkage)
    return SupplierResult(out, batch_id, network_key.id, identifiers.num_rows, report, time.perf_counter() - began)


def _write_outputs(
    validated: ValidatedExtract, supplier: str, network_key: Key, mapping: pl.DataFrame,
    identifiers: pa.Table, batch_id: str, tmp: Path, fallback: FallbackEncodings, linkage: str,
) -> dict:
    (tmp / "for_ttp").mkdir(parents=True)
    (tmp / "for_research").mkdir(parents=True)

    ident_path = tmp / "for_ttp" / "identifiers.parquet"
    write_random_columns(identifiers, ident_path)
    encodings_path = tmp / "for_ttp" / "encodings.parquet"
    pq.write_table(fallback.table, encodings_path, compression="none", write_statistics=False)
    write_json(tmp / "for_ttp" / "manifest.json", {
        "supplier": supplier, "batch_id": batch_id, "p1_scheme": P1_SCHEME, "token_scheme": TOKEN_SCHEME,
        "network_key_id": network_key.id, "rows": identifiers.num_rows,
        "encoding_scheme": ENCODING_SCHEME, "encoding_linkage": linkage, "encoding_rows": fallback.table.num_rows,
        "sha256": {"identifiers.parquet": file_sha256(ident_path), "encodings.parquet": file_sha256(encodings_path)},
    })

    rows: dict[str, int] = {}
    checksums: dict[str, str] = {}
    lookup = mapping.lazy()
    for table, lf in validated.tables.items():
        # Identifiers stay at the supplier like the BSN (contract v2): never in content files.
        lf = lf.drop(IDENTIFYING_COLUMNS.get((supplier, table), ()))
        if "bsn" in lf.collect_schema():
            columns = [c if c != "bsn" else "token" for c in lf.collect_schema()]
            lf = lf.join(lookup, on="bsn", how="left", nulls_equal=True).select(*columns, "bsn_status")
            if table == "patients" and fallback.record_tokens is not None:
                # A record without a usable BSN carries its own token: the TTP may link it.
                lf = lf.join(fallback.record_tokens.lazy().rename({"token": "record_token"}), on="patient_id",
                             how="left").with_columns(pl.coalesce("token", "record_token").alias("token"))
                lf = lf.drop("record_token")
        path = tmp / "for_research" / f"{table}.parquet"
        lf.sink_parquet(path, compression="zstd", statistics=False)
        rows[table] = pl.scan_parquet(path).select(pl.len()).collect().item()
        checksums[f"{table}.parquet"] = file_sha256(path)
    write_json(tmp / "for_research" / "manifest.json", {
        "supplier": supplier, "batch_id": batch_id, "token_scheme": TOKEN_SCHEME, "rows": rows,
        "sha256": checksums,
    })

    # BSN statuses per table were counted by the validator (clean rows only): no extra pass.
    status_counts = (
        validated.notes.filter(pl.col("column") == "bsn")
        .with_columns(pl.col("note").str.strip_prefix("status:").alias("bsn_status"))
        .filter(pl.col("note").str.starts_with("status:") & (pl.col("rows") > 0))
        .group_by("bsn_status").agg(pl.col("rows").sum())
        .join(mapping.group_by("bsn_status").agg(pl.len().alias("distinct_values")), on="bsn_status", how="left")
    )
    report = {
        "supplier": supplier,
        "batch_id": batch_id,
        "network_key_id": network_key.id,
        "persons_pseudonymised": identifiers.num_rows,
        "bsn_status": status_counts.sort("bsn_status").to_dicts(),
        "validation_quarantine": validated.quarantine.to_dicts(),
        "rows": rows,
        "fallback_encodings": fallback.counts,
    }
    if supplier == "ehr":
        report["invalid_bsn_per_practice"] = _practice_quarantine(validated, mapping)
    write_json(tmp / "supplier_report.json", report)
    return report
