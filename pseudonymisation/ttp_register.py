"""The fallback's reads at the TTP in bounded memory: the labels and the part of the claims register that can pair.

The fallback (:mod:`pseudonymisation.ttp_fallback`) compares the few EHR records without a usable
BSN (1-2 %) with the claims register; a register held whole took 2.9 GB for ``nivel``'s 10.8 M rows
(issue 14, item 4). It reads here, by streaming passes, only what can change its result:

- the labels, from the identifier files (a streaming join on P1): the EHR encodings rows linked by
  BSN and their claims tokens, the EHR rows without a P1 (the queries), and the claims tokens of
  persons linked by BSN to any EHR record (no candidates);
- pass 1 over ``encodings.parquet`` (record batches): the whole's figures the model takes
  (:class:`pseudonymisation.matching.Whole`: rows, rows per token field, the counts of the values
  the EHR side holds), per blocking key the candidate rows of each value a query holds, the persons
  an insurance token of a query reaches, and the addresses of the rows sampled for the model;
- pass 2: the rows themselves -- every candidate row sharing a blocking key with a query, except
  on a block too large in the whole (skipped there whatever the rest: the cascade is told its
  values, :func:`pseudonymisation.comparison.candidate_pairs`), every row of a person reached by an
  insurance token or labelled, the random rows of the model's u and every row sharing an address
  with its sample.

The part gives the whole's links and report, byte for byte (tests/spec/test_fallback_register.py).
Memory: the part's rows (a few per query), the per-person token lists (8 bytes each), a batch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from pseudonymisation.comparison import Encoded, block_limit, blocking_keys, distinct, encoded_from_table, hits
from pseudonymisation.encodings import TOKEN_FIELDS
from pseudonymisation.errors import PseudonymisationError
from pseudonymisation.matching import Whole, address_sample, random_rows, unresolved_by_insurance
from pseudonymisation.ttp_fallback import Plan, Register, plan_fallback

__all__ = ["BATCH_ROWS", "labels", "read_register"]

BATCH_ROWS = 1 << 17
"""Register rows per record batch of a pass (about 35 MB of encodings)."""


def _member(sorted_values: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per value: is it in ``sorted_values`` (a binary search; the set is person-sized, built once)."""
    if not len(sorted_values):
        return np.zeros(len(values), dtype=bool)
    pos = np.searchsorted(sorted_values, values).clip(0, len(sorted_values) - 1)
    return sorted_values[pos] == values


def labels(ehr: Encoded, ehr_identifiers: Path, claims_identifiers: Path) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    """(labelled, query rows, claims tokens linked by BSN) from the identifier files, streaming.

    ``labelled``: ``row`` (of the EHR encodings), ``token``, ``claims_token``, in the claims
    identifiers' row order (then the EHR identifiers', then the row): the order in which a hash join
    of the EHR tokens with the whole frames gave them (:class:`pseudonymisation.ttp_fallback.Plan`).
    """
    tokens = pl.Series("token", ehr.token)
    ehr_ids = (pl.scan_parquet(ehr_identifiers).select("token", "p1").with_row_index("epos")
               .filter(pl.col("token").is_in(tokens.implode())).collect(engine="streaming"))
    query_rows = np.flatnonzero(~hits(ehr.token, ehr_ids["token"].to_numpy()))
    claims = (pl.scan_parquet(claims_identifiers).select(pl.col("token").alias("claims_token"), "p1")
              .with_row_index("cpos").join(ehr_ids.lazy(), on="p1", how="inner").collect(engine="streaming"))
    labelled = (pl.DataFrame({"token": ehr.token}).with_row_index("row").join(claims, on="token", how="inner")
                .sort("cpos", "epos", "row").select("row", "token", "claims_token"))
    linked = (pl.scan_parquet(claims_identifiers).select("token", "p1")
              .join(pl.scan_parquet(ehr_identifiers).select("p1"), on="p1", how="semi")
              .select("token").collect(engine="streaming")["token"].to_numpy())
    return labelled, query_rows, np.sort(linked)


def _batches(path: Path):
    """(first row, encodings of the batch, the batch) over the register, in row order.

    Row group by row group (an iterator over record batches read ahead of what it gave: the whole
    file, by the measure in tests/integration/test_ttp_memory.py): a pass holds one row group.
    """
    try:
        file = pq.ParquetFile(path)
        first = 0
        for group in range(file.metadata.num_row_groups):
            rows = file.read_row_group(group, use_threads=False)
            for start in range(0, len(rows), BATCH_ROWS):
                table = rows.slice(start, BATCH_ROWS)
                yield first, encoded_from_table(table, str(path)), table
                first += len(table)
            del rows
    except (pa.ArrowException, OSError):
        msg = f"{path}: not a readable Parquet file of encodings"
        raise PseudonymisationError(msg) from None


def _query_keys(ehr: Encoded, rows: np.ndarray) -> dict[str, np.ndarray]:
    """Per blocking key, the distinct values (ascending) the EHR rows ``rows`` hold."""
    keys = blocking_keys(ehr, rows)
    return {name: distinct(k[k != -1]) for name, k in keys.items()}


def _count(values: np.ndarray, got: np.ndarray) -> np.ndarray:
    return np.bincount(np.searchsorted(values, got), minlength=len(values))


def read_register(path: Path, ehr: Encoded, plan: Plan, linked: np.ndarray) -> Register:
    """The part of the claims register at ``path`` that the fallback's plan can pair (module doc)."""
    b_rows = plan.b["row"].to_numpy().astype(np.int64)
    qkeys = _query_keys(ehr, np.concatenate([plan.query_rows, b_rows]))
    ins = qkeys.pop("t_insurance")  # every row an insurance token reaches is read
    truth = distinct(plan.b["claims_token"].to_numpy())
    ehr_values = {f: distinct(ehr.tokens[f][ehr.present[f]]) for f in TOKEN_FIELDS}
    size = pq.ParquetFile(path).metadata.num_rows
    # An empty register has no random rows (the model then refuses: no labelled pairs).
    u_rows = random_rows(len(ehr), size, plan.random_pairs, plan.model_seed)[1] if size else np.zeros(0, np.int64)
    direct = distinct(np.concatenate([u_rows, address_sample(size, plan.model_seed, plan.address_pairs)]))
    counts = {name: np.zeros(len(v), np.int64) for name, v in qkeys.items()}
    value_counts = {f: np.zeros(len(v), np.int64) for f, v in ehr_values.items()}
    present = dict.fromkeys(TOKEN_FIELDS, 0)
    bloom_any: dict[str, bool] = {}
    none = np.zeros(0, np.int64)
    reached, addresses, insured, candidates_total = [none], [none], [], 0
    for first, enc, table in _batches(path):  # pass 1: counts, and the rows insurance tokens reach
        cand = ~_member(linked, enc.token)
        candidates_total += int(cand.sum())
        keys = blocking_keys(enc)
        for name, values in qkeys.items():
            counts[name] += _count(values, keys[name][cand & hits(keys[name], values)])
        by_insurance = cand & hits(keys["t_insurance"], ins)
        reached.append(enc.token[by_insurance])
        insured.append(table.take(pa.array(np.flatnonzero(by_insurance | hits(enc.token, truth)))))
        for f, values in ehr_values.items():
            present[f] += int(enc.present[f].sum())
            value_counts[f] += _count(values, enc.tokens[f][enc.present[f] & hits(enc.tokens[f], values)])
        for f, held in enc.present.items():
            bloom_any[f] = bloom_any.get(f, False) or bool(held.any())
        addresses.append(keys["t_address"][_member(direct, np.arange(first, first + len(enc)))])
    # Only the records the insurance step leaves are blocked (matching.run_cascade): their keys.
    rest = _rest_keys(ehr, plan, b_rows, encoded_from_table(_concat(insured, path), str(path)), linked, truth)
    reached_tokens = distinct(np.concatenate(reached))
    persons = distinct(np.concatenate([reached_tokens, plan.a["claims_token"].to_numpy(), truth]))
    shared = distinct(np.concatenate(addresses))
    shared = shared[shared != -1]
    counts = {name: counts[name][np.searchsorted(qkeys[name], v)] for name, v in rest.items()}
    # A value over its block's limit stays skipped whatever an insurance link takes from its rows,
    # unless those rows could bring it to the limit: counted in pass 2, and read again if so.
    limits = {name: block_limit(name) for name in rest}
    small = {name: v[counts[name] <= limits[name]] for name, v in rest.items()}
    part, reached_counts = _read_part(path, linked, rest, small, ins, persons, reached_tokens, direct, shared)
    big = {name: v[counts[name] - reached_counts[name] > limits[name]] for name, v in rest.items()}
    if any(len(small[n]) + len(big[n]) < len(rest[n]) for n in rest):
        small = {name: v[counts[name] - reached_counts[name] <= limits[name]] for name, v in rest.items()}
        part, _ = _read_part(path, linked, rest, small, ins, persons, reached_tokens, direct, shared)
    rows, table = part
    encoded = encoded_from_table(table, str(path))
    whole = Whole(rows, size, present,
                  {f: (v[value_counts[f] > 0], value_counts[f][value_counts[f] > 0]) for f, v in ehr_values.items()},
                  bloom_any)
    return Register(encoded, ~_member(linked, encoded.token), candidates_total, whole,
                    {name: v for name, v in big.items() if len(v)})


def _concat(tables: list[pa.Table], path: Path) -> pa.Table:
    return pa.concat_tables(tables).combine_chunks() if tables else pq.ParquetFile(path).schema_arrow.empty_table()


def _rest_keys(ehr: Encoded, plan: Plan, b_rows: np.ndarray, insured: Encoded, linked: np.ndarray,
               truth: np.ndarray) -> dict[str, np.ndarray]:
    """Per blocking key (not the insurance token), the values of the queries and of half B that the
    insurance step leaves, run here on the rows it reads (``insured``), as the cascade will."""
    cand = ~_member(linked, insured.token)
    left_q = unresolved_by_insurance(ehr.take(plan.query_rows), insured, np.flatnonzero(cand))
    left_b = unresolved_by_insurance(ehr.take(b_rows), insured, np.flatnonzero(cand | hits(insured.token, truth)))
    keys = _query_keys(ehr, np.concatenate([plan.query_rows[left_q], b_rows[left_b]]))
    del keys["t_insurance"]
    return keys


def _read_part(path: Path, linked: np.ndarray, qkeys: dict[str, np.ndarray], small: dict[str, np.ndarray],
               ins: np.ndarray, persons: np.ndarray, reached: np.ndarray, direct: np.ndarray, shared: np.ndarray,
               ) -> tuple[tuple[np.ndarray, pa.Table], dict[str, np.ndarray]]:
    """Pass 2: the part's rows (their row numbers, their table) and, per blocking key and query
    value, the candidate rows of the persons an insurance token reaches."""
    rows, tables = [], []
    reached_counts = {name: np.zeros(len(v), np.int64) for name, v in qkeys.items()}
    for first, enc, table in _batches(path):
        cand = ~_member(linked, enc.token)
        keys = blocking_keys(enc)
        of_reached = cand & hits(enc.token, reached)
        keep = hits(enc.token, persons) | _member(direct, np.arange(first, first + len(enc)))
        keep |= hits(keys["t_address"], shared) | (cand & hits(keys["t_insurance"], ins))
        for name, values in qkeys.items():
            keep |= cand & hits(keys[name], small[name])
            reached_counts[name] += _count(values, keys[name][of_reached & hits(keys[name], values)])
        taken = np.flatnonzero(keep)
        rows.append(first + taken)
        tables.append(table.take(pa.array(taken)))
    return (np.concatenate(rows) if rows else np.zeros(0, np.int64), _concat(tables, path)), reached_counts


def fallback_plan(ehr: Encoded, ehr_identifiers: Path, claims_identifiers: Path) -> tuple[Plan, np.ndarray]:
    """The fallback's plan from the identifier files, and the claims tokens linked by BSN (sorted)."""
    labelled, query_rows, linked = labels(ehr, ehr_identifiers, claims_identifiers)
    return plan_fallback(ehr, labelled, query_rows), linked
