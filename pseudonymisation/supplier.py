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
extract), so content files of two runs or two suppliers cannot be joined without the TTP's maps:
each is a keyed pseudorandom function of the BSN under a key drawn anew for every run and never
stored (:mod:`pseudonymisation.supplier_tokens`), which makes it the same in every partition.
The identifier file is written in token order, which is random: its rows say nothing about the
order of the content rows. Content files keep the extract's row order. Everything is written under
a temporary name and renamed at the end.

Partitions (issue 14, ``partitions=K``): validation runs once over the whole extract (its
quarantine, duplicate-key and shared-BSN counts are exact by construction); the persons are then
split by a keyed hash of the BSN and pseudonymised and encoded partition by partition
(:mod:`pseudonymisation.supplier_partition`), the reduce combines the partitions exactly, and the
content files are written in one pass each, in row order, tokens computed row by row. The
outputs do not depend on K or the executor.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from execution import Executor, LocalExecutor
from execution.split import partials, row_group_for, split
from extracts.atomic import claim_output, file_sha256, scratch, staging
from extracts.bsn import BsnStatus
from extracts.contract import IDENTIFYING_COLUMNS
from extracts.validation import ValidatedExtract, validate_extract
from pseudonymisation.encodings import ENCODING_SCHEME, fallback_keys
from pseudonymisation.keys import Key, write_worker_key
from pseudonymisation.prf import P1_SCHEME, TOKEN_SCHEME, label, stage1_key
from pseudonymisation.supplier_encodings import CALIBRATION_SAMPLE, reduce_encodings
from pseudonymisation.supplier_partition import (
    PART,
    ROW,
    SupplierTask,
    partition_columns,
    pseudonymise_partition,
    supplier_partition,
    tokenised_content,
    worker_keys,
    write_content,
)
from pseudonymisation.supplier_reduce import write_claims_encodings, write_identifiers
from pseudonymisation.supplier_tokens import bsn_partitions, fresh_run_key, of_valid_bsns, partition_key

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


KEYED = pl.Struct({"bsn_status": pl.String, "part": pl.Int64})


def _status_and_part(network_key: Key, partitions: int) -> Callable[[pl.Series], pl.Series]:
    """A batch of BSN values -> their status and keyed partition (null: not a valid BSN), row by row.

    Row by row, not through a list of the distinct BSNs: a BSN's partition is a function of its
    value alone, so the split needs no person-sized table (issue 14, item 4).
    """
    k_part = partition_key(network_key) if partitions > 1 else None

    def keyed(bsn: pl.Series) -> pl.Series:
        part, valid, status = of_valid_bsns(bsn, None if k_part is None else
                                            lambda value: bsn_partitions(k_part, value, partitions))
        return pl.DataFrame({"bsn_status": status.cast(pl.String),
                             "part": pl.Series(part).set(pl.Series(~valid), None)}).to_struct("keyed")
    return keyed


def _keyed_rows(lf: pl.LazyFrame, network_key: Key, partitions: int) -> pl.LazyFrame:
    """A BSN table's rows with their row number, BSN status and partition (``row mod K`` without a valid BSN)."""
    keyed = pl.col("bsn").map_batches(_status_and_part(network_key, partitions), return_dtype=KEYED,
                                      is_elementwise=True)
    return (
        lf.with_row_index(ROW).with_columns(pl.col(ROW).cast(pl.Int64))
        .with_columns(keyed.alias("__keyed")).unnest("__keyed")
        .with_columns(pl.coalesce("part", pl.col(ROW) % partitions).alias(PART)).drop("part")
    )


def _distinct_values(folder: Path, partitions: int, persons: int) -> pl.DataFrame:
    """Distinct BSN values per status: the valid ones are the persons (each in one partition); the
    others are united from the partitions' small lists (their rows go by row number)."""
    others = pl.read_parquet(partials(folder, "invalid", partitions))
    counted = others.unique().group_by("bsn_status").agg(pl.len().cast(pl.Int64).alias("distinct_values"))
    valid = pl.DataFrame({"bsn_status": [BsnStatus.VALID.value], "distinct_values": [persons]},
                         schema=counted.schema)
    return pl.concat([counted, valid]).filter(pl.col("distinct_values") > 0)


def _practice_quarantine(validated: ValidatedExtract, network_key: Key) -> list[dict]:
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
        .pipe(_keyed_rows, network_key, 1)
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
    executor: Executor | None = None,
    partitions: int = 1,
    linkage: str = "",
) -> SupplierResult:
    """Validate an extract, pseudonymise its BSNs and write the two outputs (see module doc).

    ``partitions`` (K) splits the persons by a keyed hash of their BSN and runs the partitions on
    ``executor`` (None: in process); the outputs are byte-identical for every K given the same
    run key (:mod:`pseudonymisation.supplier_partition`).

    ``linkage``: the label of this linkage, the same at every supplier; the fallback's encodings are
    keyed per linkage (:func:`pseudonymisation.encodings.fallback_keys`). Empty: the network's
    standing sub-keys.
    """
    out = Path(out)
    fallback_keys(network_key, linkage)  # a bad label is refused before anything is claimed
    with claim_output(out, overwrite=overwrite, inputs={"extract": extract}):  # before anything is read
        return _supplier_step(extract, supplier, network_key, out, max_quarantine_share=max_quarantine_share,
                              overwrite=overwrite, executor=executor or LocalExecutor(), partitions=partitions,
                              linkage=linkage)


def _supplier_step(extract: Path, supplier: str, network_key: Key, out: Path, *, max_quarantine_share: float,
                   overwrite: bool, executor: Executor, partitions: int, linkage: str) -> SupplierResult:
    began = time.perf_counter()
    # Scratch holds person-level partials and the workers' key files; the partial output folder
    # holds identifiers: both are owner-only and removed on any failure (and after a kill).
    with scratch(out) as folder:
        # K partitions: the unique keys are checked in K buckets (hashes of the keys, in scratch).
        validated = validate_extract(extract, supplier, max_quarantine_share=max_quarantine_share,
                                     buckets=partitions, workdir=folder / "validation")
        batch_id = uuid.uuid4().hex
        run_key = fresh_run_key()
        with staging(out, overwrite=overwrite) as tmp:
            return _supplier_outputs(validated, supplier, network_key, out, batch_id, run_key, folder, tmp,
                                     executor=executor, partitions=partitions, linkage=linkage, began=began)


def _supplier_outputs(validated: ValidatedExtract, supplier: str, network_key: Key, out: Path, batch_id: str,
                      run_key: Key, folder: Path, tmp: Path, *, executor: Executor, partitions: int, linkage: str,
                      began: float) -> SupplierResult:
    """Pseudonymise, encode and write both outputs into ``tmp`` (published by the caller)."""
    counts = _pseudonymise(validated, supplier, network_key, run_key, folder, tmp,
                           executor=executor, partitions=partitions, linkage=linkage)
    persons = _write_for_ttp(supplier, network_key, batch_id, folder, tmp, counts, linkage, partitions)
    distinct = _distinct_values(folder, partitions, counts["persons"])
    report = _write_for_research(validated, supplier, network_key, distinct, batch_id, persons, tmp, counts)
    return SupplierResult(out, batch_id, network_key.id, persons, report, time.perf_counter() - began)


def _pseudonymise(validated: ValidatedExtract, supplier: str, network_key: Key, run_key: Key,
                  folder: Path, tmp: Path, *, executor: Executor, partitions: int, linkage: str) -> dict:
    """Run the partitions (identifiers, encodings), write every content file to
    ``tmp/for_research`` in one pass each; return the summed counts."""
    for what in ("identifiers", "encodings", "invalid"):
        (folder / what).mkdir(parents=True)
    (tmp / "for_research").mkdir(parents=True)
    keyed = {t: _keyed_rows(validated.tables[t], network_key, partitions) for t in BSN_TABLES[supplier]}
    if partitions == 1:
        results = [pseudonymise_partition(supplier, keyed, stage1_key(network_key),
                                          fallback_keys(network_key, linkage), run_key, folder, 0)]
    else:
        (folder / "tables").mkdir()
        tables = []
        for table, lf in keyed.items():  # one pass per table: each partition then reads its own rows
            split(lf.select(partition_columns(supplier, table, lf.collect_schema())), folder / "tables" / table,
                  row_group_size=row_group_for(partitions))
            tables.append((table, str(folder / "tables" / table)))
        stage1, fallback = worker_keys(folder, network_key, linkage)  # derived keys only, never K_net
        run = write_worker_key(folder, run_key, "run")
        results = executor.map(supplier_partition, [
            SupplierTask(supplier, tuple(tables), stage1, fallback, run, i, str(folder))
            for i in range(partitions)], stage=f"supplier step ({supplier})")
    for table, lf in validated.tables.items():  # content: one pass per table, in the extract's order
        target = tmp / "for_research" / f"{table}.parquet"
        if table in keyed:
            write_content(tokenised_content(lf, supplier, table, run_key), target)
        else:  # no BSN: no person key
            write_content(lf.drop(IDENTIFYING_COLUMNS.get((supplier, table), ())), target)
    return {k: sum(r[k] for r in results) for k in results[0]}


def _write_for_ttp(supplier: str, network_key: Key, batch_id: str, folder: Path, tmp: Path, counts: dict,
                   linkage: str, partitions: int) -> int:
    """identifiers.parquet and encodings.parquet from the partials, and the for_ttp manifest."""
    (tmp / "for_ttp").mkdir(parents=True)
    encoding_parts = partials(folder, "encodings", partitions)
    encodings_path = tmp / "for_ttp" / "encodings.parquet"
    if supplier == "claims":  # a row per insured person and set of identifiers: a token range at a time
        encoding_rows, record_tokens = write_claims_encodings(encoding_parts, encodings_path), pa.array([], pa.int64())
    else:  # the records without a usable BSN and the calibration sample: small
        encodings, record_tokens = reduce_encodings(encoding_parts)
        pq.write_table(encodings, encodings_path, compression="none", write_statistics=False)
        encoding_rows = encodings.num_rows
    ident_path = tmp / "for_ttp" / "identifiers.parquet"
    persons = write_identifiers(partials(folder, "identifiers", partitions),
                                label(P1_SCHEME, network_key.id), ident_path, record_tokens=record_tokens)
    write_json(tmp / "for_ttp" / "manifest.json", {
        "supplier": supplier, "batch_id": batch_id, "p1_scheme": P1_SCHEME, "token_scheme": TOKEN_SCHEME,
        "network_key_id": network_key.id, "rows": persons,
        "encoding_scheme": ENCODING_SCHEME, "encoding_linkage": linkage,
        "encoding_rows": encoding_rows,
        "sha256": {"identifiers.parquet": file_sha256(ident_path), "encodings.parquet": file_sha256(encodings_path)},
    })
    return persons


def _fallback_counts(supplier: str, counts: dict) -> dict:
    if supplier == "ehr":
        return {"records_without_usable_bsn": counts["records_without_usable_bsn"],
                "calibration_records": min(CALIBRATION_SAMPLE, counts["valid_records"])}
    return {"insured_persons": counts["insured_persons"], "identifier_sets": counts["identifier_sets"]}


def _write_for_research(validated: ValidatedExtract, supplier: str, network_key: Key, distinct: pl.DataFrame,
                        batch_id: str, persons: int, tmp: Path, counts: dict) -> dict:
    """The for_research manifest (the content files are written) and the supplier report."""
    rows: dict[str, int] = {}
    checksums: dict[str, str] = {}
    for table in validated.tables:
        path = tmp / "for_research" / f"{table}.parquet"
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
        .join(distinct, on="bsn_status", how="left")
    )
    report = {
        "supplier": supplier,
        "batch_id": batch_id,
        "network_key_id": network_key.id,
        "persons_pseudonymised": persons,
        "bsn_status": status_counts.sort("bsn_status").to_dicts(),
        "validation_quarantine": validated.quarantine.to_dicts(),
        "rows": rows,
        "fallback_encodings": _fallback_counts(supplier, counts),
    }
    if supplier == "ehr":
        report["invalid_bsn_per_practice"] = _practice_quarantine(validated, network_key)
    write_json(tmp / "supplier_report.json", report)
    return report
