"""Keyed encodings at the TTP: read them, block them into candidate pairs, compare pairs (vectorised).

The TTP holds each supplier's ``encodings.parquet`` (:mod:`pseudonymisation.encodings` wrote it at
the supplier): a token, three exact keyed tokens and two balanced Bloom filters per row. It never
holds the key, so it can compare encodings but not decode them.

Blocking: two records become a candidate pair when they share the birth-date token, the address
token, the insurance token, or one band of the surname filter (locality-sensitive hashing: a band
is ``_BAND_BITS`` bits of the (secretly permuted) filter; records whose filters differ in few bits
share a band with high probability). A block holding more than ``max_block`` records of either side is
not expanded on that key (counted): a very common surname band would otherwise give quadratic work,
and the other keys still reach its true pairs. Bands of the optional given name and street are
keys too, but only in blocks of at most :data:`WEAK_MAX_BLOCK` records: a few hundred names make
most of a population, and only a rare one finds a pair the other keys miss.

Comparison levels (the Fellegi–Sunter agreement pattern, one small integer per field):

    token fields     0 disagree, 1 agree, 2 missing on either side
    Bloom fields     0 Dice < 0.70, 1 [0.70, 0.85), 2 [0.85, 0.95), 3 >= 0.95, 4 missing

Bloom fields are the family name, initials and the optional given name, street and city (contract
v2); a field no row of one side holds is missing on every pair and costs no popcount.

Dice of balanced filters is ``popcount(a & b) / base`` (both hold ``base`` set bits), computed as
``numpy.bitwise_count`` on packed ``uint64`` words, in chunks, on two threads.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from pseudonymisation.encodings import BLOOM_FIELDS, OPTIONAL_BLOOM_FIELDS, TOKEN_FIELDS
from pseudonymisation.errors import PseudonymisationError
from pseudonymisation.stopping import checkpoint, current

__all__ = ["DICE_BANDS", "FIELDS", "Encoded", "block_limit", "blocking_keys", "candidate_pairs", "compare", "distinct", "encoded_from_table",
           "encodings_table", "hits", "pairs_sharing", "read_encodings"]

FIELDS = (*TOKEN_FIELDS, *BLOOM_FIELDS)
DICE_BANDS = (0.70, 0.85, 0.95)
MISSING = {**{f: 2 for f in TOKEN_FIELDS}, **{f: len(DICE_BANDS) + 1 for f in BLOOM_FIELDS}}
_ALL = slice(None)
_BAND_BITS = 24
_BANDS = 4
BANDED_FIELDS = ("bf_family_name", "bf_given_name", "bf_street")
"""Name fields whose filter bands are blocking keys (not initials or city: too few values, blocks
too large to help)."""
WEAK_BANDED_FIELDS = ("bf_given_name", "bf_street")
"""Banded fields that many people share (a few hundred given names and street names make most of a
population): a block of one of their bands is expanded only up to :data:`WEAK_MAX_BLOCK` records
a side. The rare names and streets, where such a band finds a pair whose other keys all failed,
stay blocks; the frequent ones, which would add pairs by the million at register size and find
hardly a true pair the other keys miss, do not."""
WEAK_MAX_BLOCK = 100
_CHUNK = 1 << 14


@dataclass(frozen=True)
class Encoded:
    """One side's encodings, columnar: ``token`` (int64), token fields with presence, Bloom words.

    ``keys`` packs, per row, the three token fields (-1 where missing; a real token is -1 with odds
    2^-64) and the Bloom presence flags in one (n, 4) int64 array: one gather per pair reads them all.
    """

    token: np.ndarray
    tokens: dict[str, np.ndarray]
    present: dict[str, np.ndarray]
    blooms: dict[str, np.ndarray]
    keys: np.ndarray | None = field(default=None, repr=False)  # computed here unless :meth:`take` gives its rows

    def __post_init__(self) -> None:
        if self.keys is not None:
            return
        keys = np.empty((len(self.token), len(TOKEN_FIELDS) + 1), dtype=np.int64)
        for j, f in enumerate(TOKEN_FIELDS):
            keys[:, j] = np.where(self.present[f], self.tokens[f], -1)
        keys[:, -1] = sum(self.present[f].astype(np.int64) << j for j, f in enumerate(BLOOM_FIELDS))
        object.__setattr__(self, "keys", keys)
        for f in BLOOM_FIELDS:
            self.blooms[f] = np.ascontiguousarray(self.blooms[f])

    def __len__(self) -> int:
        return len(self.token)

    def take(self, rows: np.ndarray) -> Encoded:
        """The rows ``rows`` (fancy indexing copies them: contiguous, and ``keys`` taken, not rebuilt)."""
        # A Bloom field no row holds stays an untouched np.zeros (pages never written): no copy of
        # register-sized zeros for the optional name fields a supplier did not deliver.
        blooms = {f: v[rows] if self.present[f].any() else np.zeros((len(rows), v.shape[1]), v.dtype)
                  for f, v in self.blooms.items()}
        return Encoded(self.token[rows], {f: v[rows] for f, v in self.tokens.items()},
                       {f: v[rows] for f, v in self.present.items()}, blooms, self.keys[rows])


def encodings_table(token: np.ndarray, encoded: dict[str, object]) -> pa.Table:
    """The Arrow table the supplier writes: token, token fields (null = missing), Bloom filters.

    An optional name field (given name, street, city) that no row holds is left out.
    """
    columns: dict[str, pa.Array] = {"token": pa.array(token, pa.int64())}
    for f in TOKEN_FIELDS:
        columns[f] = encoded[f].to_arrow()
    for f, spec in BLOOM_FIELDS.items():
        if f in OPTIONAL_BLOOM_FIELDS and not encoded[f"{f}_present"].any():
            continue  # not delivered: left out (the TTP reads it as missing), no column of zeros
        words = np.ascontiguousarray(encoded[f], dtype=np.uint64)
        # All-zero means missing: a balanced filter always holds ``base`` set bits.
        # The array's own memory, not a copy (``tobytes`` doubled the filters: 272 B a row).
        columns[f] = pa.FixedSizeBinaryArray.from_buffers(pa.binary(spec.words * 8), len(words),
                                                           [None, pa.py_buffer(words)])
    return pa.table(columns)


def read_encodings(path: Path) -> Encoded:
    """Read an ``encodings.parquet``; refuses other columns or filter widths (by name, never a value).

    A file of several row groups (a register) is read one row group at a time into arrays of the
    whole file, so that Ctrl-C stops the read between row groups (pseudonymisation/stopping.py);
    the memory is that of one read (the arrays, and one row group while it is copied).
    """
    source = str(path)
    try:
        # ParquetFile, not read_table: that would import pyarrow.dataset and .compute (a third of a
        # second of the TTP step) for what one file's buffers give; threads cost more than they give.
        file = pq.ParquetFile(path)
        if file.num_row_groups <= 1:
            return encoded_from_table(file.read(use_threads=False), source)
        delivered = set(file.schema_arrow.names)
        whole, at = None, 0
        for index in range(file.num_row_groups):
            checkpoint()
            part = encoded_from_table(file.read_row_group(index, use_threads=False), source)
            if whole is None:
                whole = _allocated(part, file.metadata.num_rows, delivered)
            _place(whole, part, at, delivered)
            at += len(part)
    except (pa.ArrowException, OSError):
        msg = f"{path}: not a readable Parquet file of encodings"
        raise PseudonymisationError(msg) from None
    return whole


def _allocated(like: Encoded, rows: int, delivered: set[str]) -> Encoded:
    """Arrays for ``rows`` rows shaped as ``like``'s; Bloom fields not delivered stay untouched zeros."""
    return Encoded(np.empty(rows, dtype=np.int64),
                   {f: np.empty(rows, dtype=v.dtype) for f, v in like.tokens.items()},
                   {f: np.empty(rows, dtype=bool) for f in like.present},
                   {f: (np.empty if f in delivered else np.zeros)((rows, v.shape[1]), dtype=v.dtype)
                    for f, v in like.blooms.items()},
                   np.empty((rows, like.keys.shape[1]), dtype=np.int64))


def _place(whole: Encoded, part: Encoded, at: int, delivered: set[str]) -> None:
    rows = slice(at, at + len(part))
    whole.token[rows] = part.token
    whole.keys[rows] = part.keys
    for f, v in part.tokens.items():
        whole.tokens[f][rows] = v
    for f, v in part.present.items():
        whole.present[f][rows] = v
    for f, v in part.blooms.items():
        if f in delivered:
            whole.blooms[f][rows] = v


def encoded_from_table(table: pa.Table, source: str) -> Encoded:
    """One side's encodings from the Arrow table :func:`encodings_table` makes.

    The Bloom fields added to contract v2 later (:data:`OPTIONAL_BLOOM_FIELDS`) may be absent
    (encodings written before them): they read as missing on every row.
    """
    names = table.column_names
    optional = set(OPTIONAL_BLOOM_FIELDS) - set(names)
    expected = ["token", *TOKEN_FIELDS, *(f for f in BLOOM_FIELDS if f not in optional)]
    if names != expected:
        msg = f"{source}: expected exactly the columns {', '.join(['token', *TOKEN_FIELDS, *BLOOM_FIELDS])}"
        raise PseudonymisationError(msg)
    token_column = table.column("token")
    if token_column.type != pa.int64() or token_column.null_count:
        msg = f"{source}: column token is not a column of 64-bit tokens without nulls"
        raise PseudonymisationError(msg)
    token = token_column.to_numpy(zero_copy_only=False)
    tokens, present, blooms = {}, {}, {}
    for f in TOKEN_FIELDS:
        checkpoint()
        col = table.column(f).combine_chunks()
        if col.type != pa.int64():
            msg = f"{source}: column {f} is not a column of 64-bit tokens"
            raise PseudonymisationError(msg)
        present[f] = _validity(col)
        values = np.frombuffer(col.buffers()[1], dtype=np.int64)[col.offset: col.offset + len(col)]
        tokens[f] = np.where(present[f], values, 0)
    for f, spec in BLOOM_FIELDS.items():
        checkpoint()
        if f in optional:
            blooms[f] = np.zeros((len(token), spec.words), dtype=np.uint64)
            present[f] = np.zeros(len(token), dtype=bool)
            continue
        col = table.column(f).combine_chunks()
        if col.type != pa.binary(spec.words * 8) or col.null_count:
            msg = f"{source}: column {f} is not a {spec.words * 64}-bit filter column without nulls"
            raise PseudonymisationError(msg)
        data = np.frombuffer(col.buffers()[1], dtype=np.uint8)
        start = col.offset * spec.words * 8
        blooms[f] = data[start: start + len(col) * spec.words * 8].view(np.uint64).reshape(len(col), spec.words)
        present[f] = blooms[f].any(axis=1)
    return Encoded(token.astype(np.int64), tokens, present, blooms)


def _validity(col: pa.Array) -> np.ndarray:
    """Per row: has a value (the Arrow validity bitmap, read without pyarrow.compute)."""
    if col.null_count == 0 or col.buffers()[0] is None:
        return np.ones(len(col), dtype=bool)
    bits = np.unpackbits(np.frombuffer(col.buffers()[0], dtype=np.uint8), bitorder="little")
    return bits[col.offset: col.offset + len(col)].astype(bool)


def distinct(values: np.ndarray, *, counts: bool = False):
    """Sorted distinct values (and their counts) of a 1-D array, by sorting.

    numpy 2's ``np.unique`` hashes, which measured ten times slower than a sort on tens of
    millions of pseudorandom 64-bit keys.
    """
    ordered = np.sort(values, kind="stable")
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]) if len(ordered) else np.zeros(0, np.int64)
    if not counts:
        return ordered[starts]
    return ordered[starts], np.diff(np.r_[starts, len(ordered)])


# --- blocking -------------------------------------------------------------------------------

def _band_keys(blooms: np.ndarray, present: np.ndarray, band: int, rows: np.ndarray | slice = _ALL) -> np.ndarray:
    """A key of one band: ``_BAND_BITS`` bits of word ``band`` of the filter (of the rows ``rows``).

    The filter's bits were permuted with a secret permutation at the supplier, so adjacent bits
    are a random sample of positions: the band is what LSH samples, read with one mask.
    """
    key = (blooms[rows, band] & np.uint64((1 << _BAND_BITS) - 1)).astype(np.int64) + (band << 32)
    return np.where(present[rows], key, -1)


def hits(values: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Per value: is it one of ``wanted`` (a hash probe: polars ``is_in``)."""
    if not len(wanted) or not len(values):
        return np.zeros(len(values), dtype=bool)
    return pl.Series(values).is_in(pl.Series(wanted).implode()).to_numpy()


def _join_on(qk: np.ndarray, tk: np.ndarray, max_block: int,
             skip_values: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """All (q row, t row) with equal key (key -1 = missing), blocks over ``max_block`` skipped.

    The query side is small (records without a usable BSN): it is sorted, and every key of the
    large side looked up in it, so that no register-sized array is sorted. ``skip_values``: keys
    whose block is known to exceed ``max_block`` in the whole register (``tk`` holds a part of
    it, :mod:`pseudonymisation.ttp_register`): skipped and counted as in the whole.
    """
    q_rows = np.flatnonzero(qk != -1)
    q_order = q_rows[np.argsort(qk[q_rows])]
    q_sorted = qk[q_order]
    # The few register rows whose key a query holds, found by a hash probe (a binary search of every
    # register row cost five times more); -1 (missing) is no query key, so it never hits.
    t_rows = np.flatnonzero(hits(tk, q_sorted))
    values = tk[t_rows]
    lo = np.searchsorted(q_sorted, values, side="left")
    hi = np.searchsorted(q_sorted, values, side="right")
    keys, t_counts = distinct(values, counts=True)
    t_size = t_counts[np.searchsorted(keys, values)] if len(keys) else np.zeros(0, np.int64)
    skip = (t_size > max_block) | (hi - lo > max_block)
    if skip_values is not None and len(skip_values):
        # Every such key a query holds has rows in the whole register: skipped there too.
        skip |= hits(values, skip_values)
        skipped = len(distinct(np.concatenate([values[skip], q_sorted[hits(q_sorted, skip_values)]])))
    else:
        skipped = len(distinct(values[skip]))
    t_rows, lo, sizes = t_rows[~skip], lo[~skip], (hi - lo)[~skip]
    ti = np.repeat(t_rows, sizes)
    offsets = np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    qi = q_order[np.repeat(lo, sizes) + offsets]
    return qi, ti, skipped


def pairs_sharing(q: Encoded, t: Encoded, field: str, *, max_block: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """(q row, t row) pairs with the same value of one token field (blocks over ``max_block`` skipped)."""
    j = TOKEN_FIELDS.index(field)
    qi, ti, _ = _join_on(q.keys[:, j], t.keys[:, j], max_block)
    return qi, ti


def block_limit(name: str, max_block: int = 2000) -> int:
    """The largest block expanded on blocking key ``name`` (weak bands: :data:`WEAK_MAX_BLOCK`)."""
    return min(max_block, WEAK_MAX_BLOCK) if name.rsplit("_band", 1)[0] in WEAK_BANDED_FIELDS else max_block


def blocking_keys(enc: Encoded, rows: np.ndarray | slice = _ALL) -> dict[str, np.ndarray]:
    """Every blocking key of the rows ``rows`` of ``enc`` (-1 where missing), by name."""
    keys = {f: enc.keys[rows, j] for j, f in enumerate(TOKEN_FIELDS)}
    for f in BANDED_FIELDS:
        for b in range(_BANDS):
            keys[f"{f}_band{b}"] = _band_keys(enc.blooms[f], enc.present[f], b, rows)
    return keys


def _holds(t: Encoded, f: str, rows: np.ndarray | slice, skip_values: dict[str, np.ndarray]) -> bool:
    """Does the register hold field ``f`` on a row of ``rows`` (or, where ``t`` is a part of it, on a
    row of a block skipped for its size)?"""
    return bool(t.present[f][rows].any()) or any(k.rsplit("_band", 1)[0] == f for k in skip_values)


def candidate_pairs(q: Encoded, t: Encoded, *, max_block: int = 2000, t_rows: np.ndarray | None = None,
                    t_total: int | None = None, skip_values: dict[str, np.ndarray] | None = None,
                    ) -> tuple[np.ndarray, np.ndarray, dict]:
    """Distinct (q row, t row) pairs sharing a blocking key; and counts per key (no values).

    ``t_rows``: block against these rows of ``t`` only (the pairs' t rows then index ``t_rows``),
    so that a register is not copied to block a part of it. ``t_total`` and ``skip_values``: when
    ``t`` holds only the part of a register that can pair (:mod:`pseudonymisation.ttp_register`),
    the register's candidate rows and, per key, the values whose blocks are too large in it.
    """
    parts, stats = [], {"skipped_large_blocks": 0}
    rows = _ALL if t_rows is None else t_rows
    n_t = len(t) if t_rows is None else len(t_rows)
    skip_values = skip_values or {}
    # ``keys`` holds the token fields with -1 where missing already: no pass over the register.
    keys = [(f, q.keys[:, j], t.keys[rows, j]) for j, f in enumerate(TOKEN_FIELDS)]
    keys += [(f"{f}_band{b}", _band_keys(q.blooms[f], q.present[f], b), _band_keys(t.blooms[f], t.present[f], b, rows))
             for f in BANDED_FIELDS if q.present[f].any() and _holds(t, f, rows, skip_values) for b in range(_BANDS)]
    for name, qk, tk in keys:
        checkpoint()  # Ctrl-C: stop between blocking keys (pseudonymisation/stopping.py)
        # Tokens are pseudorandom 64-bit values; -1 (missing) has odds 2^-64 of being a real one.
        qi, ti, skipped = _join_on(qk, tk, block_limit(name, max_block), skip_values.get(name))
        stats["skipped_large_blocks"] += skipped
        parts.append(qi.astype(np.int64) * n_t + ti)
    pair = distinct(np.concatenate(parts))
    stats["candidate_pairs"] = int(len(pair))
    total = n_t if t_total is None else t_total
    stats["reduction_ratio"] = round(1 - len(pair) / max(len(q) * total, 1), 6)
    return pair // max(n_t, 1), pair % max(n_t, 1), stats


# --- comparison -----------------------------------------------------------------------------

_LOW_BYTES = np.uint64(0x00FF00FF00FF00FF)
_LANES = np.uint64(0x0001000100010001)


def _common_bits(a: np.ndarray, b: np.ndarray, qi: np.ndarray, ti: np.ndarray) -> np.ndarray:
    """popcount(a[qi] & b[ti]) per pair, for filters of up to 8 words (512 bits)."""
    x = np.take(a, qi, axis=0)
    x &= np.take(b, ti, axis=0)
    counts = np.bitwise_count(x)  # uint8, <= 64 per word
    if counts.shape[1] == 8:
        # The eight byte counts of a row are one uint64: add them as SWAR lanes (<= 512 fits 16 bits).
        v = counts.view(np.uint64).ravel()
        v = (v & _LOW_BYTES) + ((v >> np.uint64(8)) & _LOW_BYTES)
        return ((v * _LANES) >> np.uint64(48)).astype(np.int32)
    total = counts[:, 0].astype(np.int32)
    for w in range(1, counts.shape[1]):  # a few words: column adds beat a reduction over rows
        total += counts[:, w]
    return total


def _levels_chunk(q: Encoded, t: Encoded, qi: np.ndarray, ti: np.ndarray, out: np.ndarray,
                  active: frozenset[str]) -> None:
    a = np.take(q.keys, qi, axis=0)
    b = np.take(t.keys, ti, axis=0)
    tokens = len(TOKEN_FIELDS)
    missing = (a[:, :tokens] == -1) | (b[:, :tokens] == -1)
    out[:, :tokens] = np.where(missing, 2, a[:, :tokens] == b[:, :tokens])
    flags = a[:, tokens] & b[:, tokens]
    for j, (f, spec) in enumerate(BLOOM_FIELDS.items()):
        if f not in active:  # no row of one side has it: missing on every pair, no popcount
            out[:, tokens + j] = MISSING[f]
            continue
        common = _common_bits(q.blooms[f], t.blooms[f], qi, ti)
        level = np.searchsorted(_THRESHOLDS[spec.base], common, side="right")
        out[:, tokens + j] = np.where((flags >> j) & 1, level, MISSING[f])


# Dice bands as counts of common bits: level = number of band edges at or below Dice.
_THRESHOLDS = {spec.base: np.ceil(np.asarray(DICE_BANDS) * spec.base - 1e-9).astype(np.int32)
               for spec in BLOOM_FIELDS.values()}


def compare(q: Encoded, t: Encoded, qi: np.ndarray, ti: np.ndarray) -> np.ndarray:
    """The comparison levels (n pairs, len(FIELDS)) uint8 of pairs (q row qi, t row ti).

    Cache-sized chunks (a chunk's filters fit in L2) on two threads: numpy releases the GIL.
    """
    out = np.empty((len(qi), len(FIELDS)), dtype=np.uint8)
    # The optional name fields cost nothing where no supplier delivers them.
    active = frozenset(f for f in BLOOM_FIELDS if q.present[f].any() and t.present[f].any())
    bounds = [(lo, min(lo + _CHUNK, len(qi))) for lo in range(0, len(qi), _CHUNK)]
    stop = current()  # the pool's threads do not see this thread's context

    def chunk(b: tuple[int, int]) -> None:
        checkpoint(stop)  # Ctrl-C: stop between chunks (pseudonymisation/stopping.py)
        _levels_chunk(q, t, qi[b[0]:b[1]], ti[b[0]:b[1]], out[b[0]:b[1]], active)

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(chunk, bounds))
    return out
