"""Validating a supplier extract against the data contract: clean rows, quarantine, errors.

Every row of every table ends up in exactly one place: the clean table, or the quarantine count
of one named reason. ``row_counts[t] == clean rows of t + quarantined rows of t`` holds for every
table (``shared/spec/data-contract.md``: no silent drop).

Row-level problems are *quarantined* (counted per table and reason; the row is left out). A row
breaking several rules is counted once, under the first reason in this order:

1. ``bad_type:<column>`` — a value that is not of the column's type (unparseable or non-ISO date,
   ``abc`` as a year, an amount with more than 2 decimals, ...), per column in contract order;
2. ``missing_value:<column>`` — null (or empty after normalisation) in a non-nullable column;
3. ``duplicate_key:<key>`` — the table's unique key (``patient_id``, ``claim_id``, ...) occurs on
   more than one row: *every* row carrying a duplicated key is quarantined, not all but one,
   because the supplier-local id is ambiguous and no row of it can be trusted to be "the" one.
   The insured's key is (``bsn``, ``year``) over normalised BSNs ("one row per insured person
   and calendar year"): two rows of one person in one year (two insurers, or in and out of a Wlz
   institution) would make the study count that person's year one way or the other, so both go;
   rows without a BSN have no key and are never duplicates;
4. ``unknown_patient_id`` — a row of an EHR table (registrations, episodes, contacts, referrals,
   out-of-hours contacts) whose patient is not in ``patients`` (any row of it, clean or
   quarantined: a quarantined patient's rows are counted under that patient's reason by the
   stages that join them, not twice here); see :func:`_patient_hashes`;
5. ``unknown_<column>`` — a sex, provider, contact type, sector or care type outside the
   contract's domain after normalisation (out-of-hours contacts have their own, smaller domain);
6. ``invalid_icpc`` — an episode whose ICPC code is invalid after normalisation;
7. ``end_before_start`` — a registration with ``end_date < start_date``;
8. ``overlapping_registration`` — see :func:`_flag_overlaps` (the clean registrations come
   out sorted by patient, practice, start and end).

Not quarantined, only counted in :attr:`ValidatedExtract.notes` (over the clean rows): values
changed by normalisation (``t90.02`` -> ``T9002``; a specialism code that lost its leading zero,
``313`` -> ``0313``; ``1234 ab`` -> ``1234AB``), malformed contract v2 identifiers (note
``malformed``: a PC6, house number, insurer, insurance number, name, street or city that is
not well-formed after normalisation, :mod:`extracts.identifiers`; the value is read as null, the
row is kept), invalid codes in nullable ICPC columns, the
:class:`~extracts.bsn.BsnStatus` of every BSN, valid BSNs shared by several EHR patients, and
the practice-years with ``referrals_delivered`` (note ``true``).
BSNs are normalised but never dropped here: validity is a status the pseudonymisation step acts on.

Structural problems — a missing or unreadable file, a missing column, an incompatible stored
type, an empty table (every table must have rows; only ``referrals`` may be empty, with a
warning, when no practice-year has ``referrals_delivered``) — and every table whose quarantined
share exceeds ``max_quarantine_share`` are collected over the whole extract and raised once, as one
:class:`~extracts.errors.ContractError`. Messages name file, column, rule and count; never a value.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from extracts import bsn as bsn_rules
from extracts import codes, contract
from extracts.identifiers import IDENTIFIER_RULES
from extracts.errors import ConfigError, ContractError, ExtractError, ExtractNotFoundError, counted
from extracts.reader import TableFile, open_table, resolve_supplier, scan_error_message

__all__ = ["ValidatedExtract", "validate_extract"]

logger = logging.getLogger(__name__)

# Code domains per (table, column), after normalisation (contract.py holds the domains).
_DOMAINS: dict[tuple[str, str], frozenset[str]] = {
    ("patients", "sex"): contract.SEXES,
    ("insured", "sex"): contract.SEXES,
    ("contacts", "provider"): contract.PROVIDERS,
    ("contacts", "contact_type"): contract.CONTACT_TYPES,
    ("ooh_contacts", "contact_type"): contract.OOH_CONTACT_TYPES,
    ("claims", "sector"): contract.SECTORS,
    ("claims", "care_type"): contract.CARE_TYPES,
}
_ALL_TABLES = {t.name: t for s in contract.SUPPLIERS.values() for t in s.tables}
_BSN, _ICPC, _PATIENT = "bsn", "icpc", "patient_id"
_REGISTRATIONS, _PATIENTS = contract.EHR.table("registrations"), contract.EHR.table("patients")
# The EHR tables whose rows belong to a patient of `patients` (rule unknown_patient_id).
_OF_PATIENTS = frozenset(
    t.name for t in contract.EHR.tables if _PATIENT in t.column_names and t.name != _PATIENTS.name
)
_UNKNOWN_PATIENT = f"unknown_{_PATIENT}"
# practice_years.referrals_delivered: referral data exist only for the practice-years flagged so
# (about a quarter): `referrals` may be empty exactly when no practice-year is.
_REFERRALS, _PRACTICE_YEARS = contract.EHR.table("referrals"), contract.EHR.table("practice_years")
_DELIVERED = _PRACTICE_YEARS.column("referrals_delivered").name
_DELIVERING = f"{_DELIVERED}|true"
_REG_KEY = (_REGISTRATIONS.column(_PATIENT).name, _REGISTRATIONS.column("practice_id").name)
_START, _END = _REGISTRATIONS.column("start_date").name, _REGISTRATIONS.column("end_date").name
_OPEN_END, _NEVER = dt.date(9999, 12, 31), dt.date(1, 1, 1)
_REASON = "__reason"
_OVERLAP = "overlapping_registration"
_DAY_OFFSET = -800_000  # days from 1970-01-01 to before 0001-01-01
_DAY_SPAN = 1 << 23  # more days than 0001-01-01 .. 9999-12-31, offset included
for _table, _column in _DOMAINS:
    _ALL_TABLES[_table].column(_column)  # fail at import, not mid-run, if the contract changes


@dataclass(frozen=True)
class ValidatedExtract:
    """A validated extract: clean lazy tables plus the counts of everything left out.

    Attributes:
        supplier: ``"ehr"`` or ``"claims"``.
        tables: per table, the clean rows only, typed and normalised (lazy).
        row_counts: per table, the number of rows in the file.
        quarantine: one row per (table, reason) with ``rows`` > 0; columns table, reason, rows.
        notes: counts that do not remove rows; columns table, column, note, rows.
        warnings: extra columns ignored; an empty referrals table that practice_years explains.
    """

    supplier: str
    tables: dict[str, pl.LazyFrame]
    row_counts: dict[str, int]
    quarantine: pl.DataFrame
    notes: pl.DataFrame
    warnings: list[str]

    def quarantined(self, table: str, reason: str | None = None) -> int:
        """Rows of ``table`` quarantined (for ``reason``, or for any reason)."""
        q = self.quarantine.filter(pl.col("table") == table)
        if reason is not None:
            q = q.filter(pl.col("reason") == reason)
        return int(q["rows"].sum())

    def clean_rows(self, table: str) -> int:
        """Rows of ``table`` kept: rows in minus rows quarantined."""
        return self.row_counts[table] - self.quarantined(table)

    def note(self, table: str, column: str, note: str) -> int:
        """The count of one note, 0 when it was not recorded."""
        n = self.notes.filter(
            (pl.col("table") == table) & (pl.col("column") == column) & (pl.col("note") == note)
        )
        return int(n["rows"].sum())


def _identifier_columns(table: contract.Table) -> tuple[str, ...]:
    """The optional (contract v2) identifier columns of ``table``: normalised, checked, counted."""
    return tuple(c.name for c in table.columns if c.optional and c.name in IDENTIFIER_RULES)


def _normaliser(table: contract.Table, name: str) -> Callable[[pl.Expr], pl.Expr] | None:
    if name in _identifier_columns(table):
        return IDENTIFIER_RULES[name].normalise
    return bsn_rules.normalise_bsn if name == _BSN else codes.COLUMN_NORMALISERS.get(name)


def _typed(tf: TableFile) -> pl.LazyFrame:
    """Typed, normalised contract columns plus flags ``__bad__<c>``, ``__changed__<c>`` and,
    for the identifier columns, ``__malformed__<c>`` (the value is then null).

    Built in stages that reference materialised columns, so that no cast or normalisation
    expression is evaluated more than once per value.
    """
    table = tf.table
    columns = table.column_names
    identifiers = _identifier_columns(table)
    typed = {c: pl.col(f"__typed__{c}") for c in columns}
    lf = tf.scan().with_columns(
        tf.cast_expression(c).alias(f"__typed__{c.name}") for c in table.columns
    )
    bad = [(pl.col(c).is_not_null() & typed[c].is_null()).alias(f"__bad__{c}") for c in columns]
    normalised = [
        (f(typed[c]) if (f := _normaliser(table, c)) else typed[c]).alias(c) for c in columns
    ]
    malformed = [
        (pl.col(c).is_not_null() & ~IDENTIFIER_RULES[c].is_valid(pl.col(c))).alias(
            f"__malformed__{c}"
        )
        for c in identifiers
    ]
    changed = [
        (typed[c].is_not_null() & pl.col(c).ne_missing(typed[c])).alias(f"__changed__{c}")
        for c in columns
        if _normaliser(table, c) and c not in identifiers
    ]
    changed += [  # counted as malformed, not as changed
        (typed[c].is_not_null() & ~pl.col(f"__malformed__{c}") & pl.col(c).ne_missing(typed[c]))
        .alias(f"__changed__{c}")
        for c in identifiers
    ]
    # `bad` reads the raw column `c` that `normalised` replaces: same with_columns, same input.
    lf = lf.with_columns(*bad, *normalised).with_columns(malformed)
    # A malformed identifier is unusable: counted, then null (docs/data-contract.md, v2).
    lf = lf.with_columns(
        pl.when(pl.col(f"__malformed__{c}")).then(None).otherwise(pl.col(c)).alias(c)
        for c in identifiers
    ).with_columns(changed)
    return lf.drop(f"__typed__{c}" for c in columns)


def _rules(
    table: contract.Table, duplicates: pl.Series | None = None, patients: pl.Series | None = None
) -> list[tuple[str, pl.Expr]]:
    """(reason, condition) pairs in priority order; a row gets the first whose condition holds.

    ``duplicates`` holds the table's duplicated unique-key values (see :func:`_duplicated_keys`):
    the duplicate-key rule is then an element-wise membership test that streams, instead of a
    window over the whole table, which would hold every column of every row in memory.
    ``patients`` holds the hashes of the patient ids of ``patients`` (:func:`_patient_hashes`;
    None: that file could not be read, and the rule is left out: its problem is reported).
    """
    rules = [(f"bad_type:{c.name}", pl.col(f"__bad__{c.name}")) for c in table.columns]
    rules += [
        (f"missing_value:{c.name}", pl.col(c.name).is_null())
        for c in table.columns
        if not c.nullable
    ]
    if table.unique_key:
        key_known = pl.all_horizontal(pl.col(k).is_not_null() for k in table.unique_key)
        if duplicates is None or duplicates.is_empty():
            duplicated = pl.lit(False)
        else:
            duplicated = key_known & _key_expr(table).is_in(duplicates.implode())
        rules.append((f"duplicate_key:{','.join(table.unique_key)}", duplicated))
    if table.name in _OF_PATIENTS and patients is not None:
        known = _patient_hash(pl.col(_PATIENT)).is_in(patients.implode())
        rules.append((_UNKNOWN_PATIENT, pl.col(_PATIENT).is_not_null() & ~known))
    for (name, column), domain in _DOMAINS.items():
        if name == table.name:
            c = pl.col(column)
            rules.append((f"unknown_{column}", c.is_not_null() & ~c.is_in(sorted(domain))))
    if _ICPC in table.column_names and not table.column(_ICPC).nullable:
        c = pl.col(_ICPC)
        rules.append(("invalid_icpc", c.is_not_null() & ~codes.icpc_is_valid(c)))
    if table.name == _REGISTRATIONS.name:
        rules.append(("end_before_start", (pl.col(_END) < pl.col(_START)).fill_null(False)))
    return rules


def _key_expr(table: contract.Table) -> pl.Expr:
    key = table.unique_key
    return pl.col(key[0]) if len(key) == 1 else pl.struct(key)


def _duplicated_keys(tf: TableFile, *, buckets: int = 1, workdir: Path | None = None) -> pl.Series:
    """The unique-key values that occur on more than one row (exact), as one series.

    Memory stays near 16 bytes per row whatever the table's width: the 64-bit hashes of the
    typed keys are collected alone and sorted in numpy; equal neighbours name the few suspect
    hashes; only the rows carrying one are grouped by their real key, so a hash collision
    between two different keys cannot quarantine anything. With ``buckets`` > 1 (and a private
    ``workdir``) the hashes are first written to disk in ``buckets`` buckets (hash mod buckets)
    by one streaming pass, and each bucket is sorted alone: equal hashes share a bucket, and the
    memory is 16 bytes per row of one bucket (issue 14, item 4: the supplier step passes its
    partitions).
    """
    table = tf.table
    key_known = pl.all_horizontal(pl.col(k).is_not_null() for k in table.unique_key)
    key_hash = pl.struct(table.unique_key).hash(seed=0)
    typed = _typed(tf).filter(key_known)
    hashes = typed.select(key_hash.alias("h"))
    if buckets > 1 and workdir is not None:
        suspect = _bucketed_suspects(hashes, buckets, Path(workdir) / f"keys-{table.name}")
    else:
        suspect = _suspects(hashes.collect(engine="streaming")["h"].to_numpy())
    if not len(suspect):
        return pl.Series("key", [], dtype=typed.select(_key_expr(table)).collect_schema().dtypes()[0])
    return (
        typed.filter(key_hash.is_in(pl.Series(suspect).implode()))
        .group_by(table.unique_key)
        .agg(pl.len().alias("__n"))
        .filter(pl.col("__n") > 1)
        .select(_key_expr(table).alias("key"))
        .collect()["key"]
    )


def _suspects(hashes: np.ndarray) -> np.ndarray:
    """The hash values that occur more than once."""
    hashes = np.sort(hashes)
    return np.unique(hashes[1:][hashes[1:] == hashes[:-1]])


_BUCKET = "__bucket"


def _bucketed_suspects(hashes: pl.LazyFrame, buckets: int, folder: Path) -> np.ndarray:
    """:func:`_suspects` bucket by bucket from one streaming pass to ``folder`` (removed after)."""
    try:
        # Small row groups: each bucket's open file buffers one row group while the pass runs.
        hashes.with_columns((pl.col("h") % buckets).alias(_BUCKET)).sink_parquet(
            pl.PartitionBy(folder, key=_BUCKET, include_key=False), mkdir=True, compression="uncompressed",
            row_group_size=65_536)
        found = [_suspects(pl.read_parquet(sorted(bucket.glob("*.parquet")))["h"].to_numpy())
                 for bucket in sorted(folder.glob(f"{_BUCKET}=*"))]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return np.concatenate([np.empty(0, np.uint64), *found])


def _patient_hash(expr: pl.Expr) -> pl.Expr:
    return expr.hash(seed=0)


def _patient_hashes(tf: TableFile) -> pl.Series:
    """The 64-bit hashes of the patient ids of ``patients`` (distinct), for rule unknown_patient_id.

    Memory stays at 8 bytes per patient, and the membership test over tables of hundreds of
    millions of rows runs on integers (about 3x faster than on the ids themselves). A row whose
    patient is missing is kept only if its id's hash equals that of a delivered patient: odds of
    at most (patients / 2**64) per row, about 1e-13 for two million patients.
    """
    ids = _typed(tf).select(pl.col(_PATIENT)).filter(pl.col(_PATIENT).is_not_null())
    hashes = ids.select(_patient_hash(pl.col(_PATIENT)).alias("h")).collect(engine="streaming")["h"]
    return pl.Series("h", np.unique(hashes.to_numpy()), dtype=pl.UInt64)


def _flag_overlaps(lf: pl.LazyFrame) -> pl.LazyFrame:
    """Quarantine registrations overlapping an earlier-starting one (same patient and practice).

    Among the rows of one (patient_id, practice_id) that broke no earlier rule, ordered by
    start_date, then end_date (open = null last), a row is quarantined when its start_date is on
    or before the end_date of any row before it (an open end counts as never ending). End and
    start on the same day overlap (both days are registered days); a start the day after an end
    does not. So the first-starting registration is kept and every later one overlapping any
    earlier registration (kept or not) is quarantined; on equal start dates the one ending first
    is treated as the earlier. Only the quarantined rows are counted, not the pairs.

    Implementation: one sort, then a running maximum over a (group number, end day) composite,
    which is ~8x faster than a window per group when most groups hold one row. The returned
    frame is therefore ordered by patient, practice, start and end.
    """
    eligible = pl.col(_REASON).is_null()
    start_key = pl.when(eligible).then(pl.col(_START)).otherwise(_NEVER).alias("__start")
    end_key = pl.when(eligible).then(pl.col(_END).fill_null(_OPEN_END)).otherwise(_NEVER)
    lf = lf.with_columns(start_key, end_key.alias("__end")).sort(
        [*_REG_KEY, "__start", "__end"], nulls_last=True
    )
    new_group = pl.any_horizontal(pl.col(k).ne_missing(pl.col(k).shift(1)) for k in _REG_KEY)
    group = new_group.fill_null(True).cast(pl.Int64).cum_sum()
    day = pl.col("__end").cast(pl.Int32).cast(pl.Int64) - _DAY_OFFSET  # >= 0 for year 1..9999
    running = (group * _DAY_SPAN + day).cum_max().shift(1)
    previous_end = pl.when(running // _DAY_SPAN == group).then(running % _DAY_SPAN + _DAY_OFFSET)
    overlap = eligible & (pl.col("__start").cast(pl.Int64) <= previous_end).fill_null(False)
    return lf.with_columns(
        pl.when(overlap).then(pl.lit(_OVERLAP)).otherwise(pl.col(_REASON)).alias(_REASON)
    ).drop("__start", "__end")


def _annotate(
    tf: TableFile,
    only: set[str] | None = None,
    duplicates: pl.Series | None = None,
    patients: pl.Series | None = None,
) -> tuple[pl.LazyFrame, list[str]]:
    """The table with normalised columns, helper flags and ``__reason`` (null = clean).

    ``only`` keeps just the named rules: once the counts are known, the clean table is rebuilt
    with the rules that quarantined something, so that reading it later does not evaluate rules
    that remove nothing. ``duplicates`` are the table's duplicated keys (:func:`_duplicated_keys`),
    ``patients`` the hashes of the delivered patient ids (:func:`_patient_hashes`).
    """
    rules = [r for r in _rules(tf.table, duplicates, patients) if only is None or r[0] in only]
    reason: pl.Expr = pl.lit(None, dtype=pl.String)
    for name, condition in reversed(rules):
        reason = pl.when(condition).then(pl.lit(name)).otherwise(reason)
    lf = _typed(tf).with_columns(reason.alias(_REASON))
    reasons = [name for name, _ in rules]
    if tf.table.name == _REGISTRATIONS.name and (only is None or _OVERLAP in only):
        lf = _flag_overlaps(lf)
        reasons.append(_OVERLAP)
    return lf, reasons


def _stats_query(tf: TableFile, annotated: pl.LazyFrame, reasons: list[str]) -> pl.LazyFrame:
    """One row: rows in, rows per reason, and notes over the clean rows (``<column>|<note>``)."""
    table = tf.table
    clean = pl.col(_REASON).is_null()
    exprs = [pl.len().alias("rows_in")]
    exprs += [(pl.col(_REASON) == r).sum().alias(r) for r in reasons]
    exprs += [
        (clean & pl.col(f"__changed__{c}")).sum().alias(f"{c}|changed_by_normalisation")
        for c in table.column_names
        if _normaliser(table, c)
    ]
    exprs += [
        (clean & pl.col(f"__malformed__{c}")).sum().alias(f"{c}|malformed")
        for c in _identifier_columns(table)
    ]
    if _ICPC in table.column_names and table.column(_ICPC).nullable:
        invalid = pl.col(_ICPC).is_not_null() & ~codes.icpc_is_valid(pl.col(_ICPC))
        exprs.append((clean & invalid).sum().alias(f"{_ICPC}|invalid_icpc"))
    if table.name == _PRACTICE_YEARS.name:
        exprs.append((clean & pl.col(_DELIVERED)).sum().alias(_DELIVERING))
    if _BSN in table.column_names:
        # Materialise the status once: bsn_status repeats its input in every branch.
        annotated = annotated.with_columns(bsn_rules.bsn_status(pl.col(_BSN)).alias("__status"))
        exprs += [
            (clean & (pl.col("__status") == s.value)).sum().alias(f"{_BSN}|status:{s.value}")
            for s in bsn_rules.BsnStatus
        ]
    return annotated.select(exprs)


def _shared_bsn_query(clean_patients: pl.LazyFrame) -> pl.LazyFrame:
    """One row: valid BSNs on two or more EHR patient records (method.md 9.1), and those records."""
    valid = bsn_rules.bsn_status(pl.col(_BSN)) == bsn_rules.BsnStatus.VALID.value
    return (
        clean_patients.filter(valid)
        .group_by(_BSN)
        .agg(pl.col(_PATIENT).n_unique().alias("n"))
        .filter(pl.col("n") > 1)
        .select(
            pl.len().alias(f"{_BSN}|valid_bsn_shared_by_patients"),
            pl.col("n").sum().alias(f"{_BSN}|patients_with_shared_valid_bsn"),
        )
    )


def _open_all(
    folder: str | Path, spec: contract.Supplier
) -> tuple[dict[str, TableFile], list[str], list[str]]:
    """Locate every table and check its header or schema (cheap): files, problems, warnings."""
    files: dict[str, TableFile] = {}
    problems: list[str] = []
    warnings: list[str] = []
    for table in spec.tables:
        try:
            tf = open_table(folder, spec, table.name)
        except ExtractError as exc:
            problems.append(str(exc))
            continue
        table_problems = tf.structural_problems()
        problems += table_problems
        warnings += tf.extra_column_warnings()
        if not table_problems:
            files[table.name] = tf
    return files, problems, warnings


def _all_duplicated_keys(
    files: dict[str, TableFile], *, buckets: int = 1, workdir: Path | None = None
) -> tuple[dict[str, pl.Series | None], list[str]]:
    """Duplicated keys per table (None: the table has no unique key); read failures by file."""
    found: dict[str, pl.Series | None] = {}
    problems: list[str] = []
    for name, tf in files.items():
        try:
            found[name] = (_duplicated_keys(tf, buckets=buckets, workdir=workdir)
                           if tf.table.unique_key else None)
        except pl.exceptions.PolarsError as exc:
            problems.append(scan_error_message(tf, exc))
    return found, problems


# A damaged file can make polars panic while reading it (pyo3's PanicException, a BaseException
# that ``except PolarsError`` lets through): both are "polars could not read the file".
_UNREADABLE = (pl.exceptions.PolarsError, pl.exceptions.PanicException)


def _collect(
    queries: dict[str, list[pl.LazyFrame]], files: dict[str, TableFile]
) -> tuple[dict[str, dict[str, int]], list[str]]:
    """Run every table's count queries together; attribute a read failure to its file."""
    try:
        flat = pl.collect_all([q for qs in queries.values() for q in qs], engine="streaming")
        it = iter(flat)
        frames = {name: [next(it) for _ in qs] for name, qs in queries.items()}
    except _UNREADABLE:
        frames, problems = {}, []
        for name, qs in queries.items():  # a loop over tables, to name the unreadable file
            try:
                frames[name] = pl.collect_all(qs, engine="streaming")
            except _UNREADABLE as exc:
                problems.append(scan_error_message(files[name], exc))
        if problems:
            return {}, problems
    counts: dict[str, dict[str, int]] = {}
    for name, dfs in frames.items():
        counts[name] = {k: int(v or 0) for df in dfs for k, v in df.row(0, named=True).items()}
    return counts, []


def validate_extract(
    folder: str | Path, supplier: str, *, max_quarantine_share: float = 0.01, buckets: int = 1,
    workdir: Path | None = None,
) -> ValidatedExtract:
    """Validate a supplier extract and return its clean tables and counts.

    Reads the key columns of each keyed table once (exact duplicate keys, :func:`_duplicated_keys`),
    then every file in one streaming ``collect_all`` (counts, and shared BSNs for patients);
    memory stays bounded whatever the extract's size. The returned clean tables are lazy and
    read the files again when used.

    Args:
        folder: the extract folder (one ``<table>.csv`` or ``<table>.parquet`` per table).
        supplier: ``"ehr"`` or ``"claims"``.
        max_quarantine_share: the largest share of a table's rows that may be quarantined
            before the extract is rejected, in [0, 1].
        buckets: check each unique key in this many hash buckets, one at a time, written to
            ``workdir`` (a private folder: the hashes of the keys); 1 holds the hashes of a
            whole table at once (16 bytes a row).
        workdir: where the buckets go (needed when ``buckets`` > 1; left empty after).

    Returns:
        The validated extract; see the module docstring for what is quarantined.

    Raises:
        ConfigError: unknown supplier, or max_quarantine_share outside [0, 1].
        ExtractNotFoundError: the extract folder does not exist.
        ContractError: every structural problem and every over-tolerance table, at once.
    """
    spec = resolve_supplier(supplier)
    if not 0.0 <= max_quarantine_share <= 1.0:
        msg = f"max_quarantine_share must be between 0 and 1, got {max_quarantine_share!r}"
        raise ConfigError(msg)
    if not Path(folder).is_dir():
        msg = f"extract folder {str(folder)!r} does not exist or is not a folder"
        raise ExtractNotFoundError(msg)

    files, problems, warnings = _open_all(folder, spec)
    tables: dict[str, pl.LazyFrame] = {}
    reasons: dict[str, list[str]] = {}
    queries: dict[str, list[pl.LazyFrame]] = {}
    duplicates, dup_problems = _all_duplicated_keys(files, buckets=buckets, workdir=workdir)
    problems += dup_problems
    files = {name: tf for name, tf in files.items() if name in duplicates}
    patients: pl.Series | None = None
    if _PATIENTS.name in files:
        try:
            patients = _patient_hashes(files[_PATIENTS.name])
        except pl.exceptions.PolarsError as exc:
            problems.append(scan_error_message(files[_PATIENTS.name], exc))
            del files[_PATIENTS.name]

    def table_queries(tf: TableFile) -> list[pl.LazyFrame]:
        annotated, reasons[tf.table.name] = _annotate(
            tf, duplicates=duplicates[tf.table.name], patients=patients
        )
        clean = annotated.filter(pl.col(_REASON).is_null()).select(tf.table.column_names)
        found = [_stats_query(tf, annotated, reasons[tf.table.name])]
        if tf.table.name == _PATIENTS.name:
            found.append(_shared_bsn_query(clean))
        return found

    queries = {name: table_queries(tf) for name, tf in files.items()}
    counts, read_problems = _collect(queries, files)
    problems += read_problems

    row_counts: dict[str, int] = {}
    quarantine_rows: list[dict[str, object]] = []
    note_rows: list[dict[str, object]] = []
    delivering = counts.get(_PRACTICE_YEARS.name, {}).get(_DELIVERING)
    for name, result in counts.items():
        file_name = files[name].file_name
        rows_in = row_counts[name] = result.pop("rows_in")
        quarantined = {r: n for r in reasons[name] if (n := result.pop(r))}
        quarantine_rows += [{"table": name, "reason": r, "rows": n} for r, n in quarantined.items()]
        for key, value in result.items():
            column, note = key.split("|", 1)
            note_rows.append({"table": name, "column": column, "note": note, "rows": value})
        if rows_in == 0 and name == _REFERRALS.name and delivering == 0:
            warnings.append(f"{file_name}: the table is empty (0 rows), as practice_years says: "
                            f"no practice-year has {_DELIVERED} = true")
            logger.warning(warnings[-1])
            continue
        elif rows_in == 0:  # data-contract.md: an empty table is a clear error, not a warning
            detail = ""
            if name == _REFERRALS.name and delivering:
                detail = f"; {counted(delivering, 'practice-year')} with {_DELIVERED}"
            problems.append(f"{file_name}: the table is empty (rule: must have rows{detail})")
            continue
        n_quarantined = sum(quarantined.values())
        if n_quarantined / rows_in > max_quarantine_share:
            detail = ", ".join(f"{r}: {n}" for r, n in quarantined.items())
            problems.append(
                f"{file_name}: {n_quarantined} of {counted(rows_in, 'row')} quarantined "
                f"({n_quarantined / rows_in:.2%}), above the tolerance of "
                f"{max_quarantine_share:.2%} (rule: max_quarantine_share; {detail})"
            )

    if problems:
        raise ContractError(problems)
    # Rebuild each clean table with only the rules that quarantined rows (same result, cheaper).
    fired = {(q["table"], q["reason"]) for q in quarantine_rows}
    for name, tf in files.items():
        lf, _ = _annotate(tf, {r for t, r in fired if t == name}, duplicates[name], patients)
        tables[name] = lf.filter(pl.col(_REASON).is_null()).select(tf.table.column_names)
    return ValidatedExtract(
        supplier=spec.name,
        tables=tables,
        row_counts=row_counts,
        quarantine=pl.DataFrame(
            quarantine_rows, schema={"table": pl.String, "reason": pl.String, "rows": pl.Int64}
        ),
        notes=pl.DataFrame(
            note_rows,
            schema={"table": pl.String, "column": pl.String, "note": pl.String, "rows": pl.Int64},
        ),
        warnings=warnings,
    )
