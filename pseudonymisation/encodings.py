"""Keyed encodings of the fallback identifiers, computed at the supplier (issue 13, item 3).

Records without a usable BSN can still be linked by the TTP on other identifiers, but the TTP must
never see those identifiers in the clear, nor be able to guess them: every encoding is keyed with a
sub-key of the network key K_net, which the TTP does not hold (``shared/spec/pseudonymisation.md``,
roles), so a dictionary attack (encode every birth date, every postcode, every surname and compare)
is not open to it.

Sub-keys: ``K_f = HKDF(K_net, "fallback/v1/<field>")``, one per field, so that tokens of two fields
cannot be compared with each other; with a *linkage* label (one per linkage, agreed by the suppliers:
``pfl-supplier linkage=2026-q4``) ``K_f = HKDF(K_net, "fallback/v1/<linkage>/<field>")``, so that the
encodings of two linkages under one network key are incomparable: a TTP cannot join the encodings
it held for an earlier linkage to this one's, nor pool their frequencies (key rotation per linkage,
``docs/security-boundaries.md``).

Exact tokens (64-bit integers): AES-256 under the field's sub-key of one 16-byte block that holds a
field tag and the normalised value at fixed positions (a PRF on fixed-length input, as stage 1)::

    insurance  tag 'I' | digit count | UZOVI code (u16) | insurance number (u64; with the count,
               leading zeros stay significant: a number is a code)
    birth      tag 'B' | birth date (days since 1970, i32) | sex (1 M, 2 F, 3 X)
    address    tag 'A' | PC6 digits (u16) | PC6 letters (2 bytes) | house number (u32) | suffix (6 bytes)

A token is null where a part is missing or malformed (nothing to compare, never a shared value).

Names: hardened field-level Bloom filters (Schnell et al. 2009; balanced: Schnell, Borgs 2016) of
the family name and initials, and of the optional given name, street and city (contract v2).
The name is standardised (lower case, accents removed, Dutch prefixes such as *van der* split off,
letters only) and padded (``_name_``); every bigram sets ``k`` positions of a ``base``-bit filter,
drawn from HMAC-SHA256(K_f, bigram) (independent random positions, not double hashing, whose
regular pattern the pattern-mining attacks exploit). The filter is then *balanced* (concatenated
with its complement: every filter has exactly ``base`` bits set, whatever the name's length, so the
Hamming weight says nothing about the name) and its ``2·base`` bits permuted with a keyed
permutation. For balanced filters Dice = 1 − Hamming(a, b)/base of the unbalanced filters.

Everything is vectorised over the column: per-bigram position masks are precomputed (27 × 27
bigrams), and a filter is the OR of its bigrams' masks, in packed ``uint64`` words.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

import numpy as np
import polars as pl

from pseudonymisation.errors import PseudonymisationError
from pseudonymisation.keys import Key, derive
from pseudonymisation.prf import aes_ecb

__all__ = [
    "BLOOM_FIELDS",
    "LINKAGE_LABEL",
    "ENCODING_SCHEME",
    "IDENTIFIER_COLUMNS",
    "OPTIONAL_BLOOM_FIELDS",
    "TOKEN_FIELDS",
    "BloomSpec",
    "FallbackKeys",
    "bloom_filters",
    "encode_identifiers",
    "fallback_keys",
    "normalise_initials",
    "normalise_letters",
    "normalise_surname",
]

ENCODING_SCHEME = "FBv1"
LINKAGE_LABEL = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z"
"""A linkage label: public, part of the sub-keys' derivation, written in the manifests."""
TOKEN_FIELDS = ("t_insurance", "t_birth", "t_address")
"""The exact keyed tokens, in the order of the TTP's cascade and model."""
IDENTIFIER_COLUMNS = ("postcode6", "house_number", "insurer", "insurance_number", "family_name", "initials",
                      "given_name", "street", "city")
"""Contract-v2 identifier columns of ``patients`` and ``insured``: to the TTP encoded, never to content."""


@dataclass(frozen=True)
class BloomSpec:
    """A field-level Bloom filter: ``base`` bits before balancing, ``k`` positions per bigram."""

    base: int
    k: int

    @property
    def words(self) -> int:
        return 2 * self.base // 64  # balanced: twice the base, packed in 64-bit words


BLOOM_FIELDS = {"bf_family_name": BloomSpec(base=256, k=10), "bf_initials": BloomSpec(base=64, k=6),
                "bf_given_name": BloomSpec(base=256, k=10), "bf_street": BloomSpec(base=256, k=10),
                "bf_city": BloomSpec(base=256, k=10)}
OPTIONAL_BLOOM_FIELDS = ("bf_given_name", "bf_street", "bf_city")
"""Added to contract v2 after the first encodings: a TTP reads them as missing where absent."""
_SOURCES = {"bf_family_name": "family_name", "bf_initials": "initials", "bf_given_name": "given_name",
            "bf_street": "street", "bf_city": "city"}
"""The identifier column each Bloom field encodes."""
_TAGS = {"t_insurance": 0x49, "t_birth": 0x42, "t_address": 0x41}
_ALPHABET = 27  # '_' (padding) and a..z
_CHUNK = 1 << 20
_MAX_NAME = 30  # longer standardised names are cut: no Dutch surname core comes near
# Tussenvoegsels and foreign particles that precede a surname core (standardised to lower case).
_PREFIXES = ("van", "von", "de", "der", "den", "het", "t", "ten", "ter", "te", "in", "op", "aan", "bij", "uit",
             "la", "le", "les", "du", "da", "di", "del", "della", "des", "d", "l", "s", "vd", "zu", "am", "al", "el")
_PREFIX_RE = rf"^(?:(?:{'|'.join(_PREFIXES)})\s+)+"
_FOLD = {"ø": "o", "æ": "ae", "œ": "oe", "ß": "ss", "ł": "l", "đ": "d", "ı": "i", "’": "'", "`": "'"}


@dataclass(frozen=True)
class FallbackKeys:
    """The sub-keys of the fallback encodings; ``repr`` shows key ids only (keys hide material)."""

    tokens: dict[str, Key]
    blooms: dict[str, Key]


def fallback_keys(network_key: Key, linkage: str = "") -> FallbackKeys:
    """Sub-keys ``HKDF(K_net, "fallback/v1/[<linkage>/]<field>")``: per field and linkage, unknown to the TTP.

    ``linkage`` is a label of one linkage (:data:`LINKAGE_LABEL`); empty: the network's standing
    sub-keys (the same for every linkage under this network key).
    """
    if linkage and not re.match(LINKAGE_LABEL, linkage):
        msg = "linkage: expected a label of letters, digits, '.', '_' or '-' (at most 64), e.g. 2026-q4"
        raise PseudonymisationError(msg)
    scope = f"fallback/v1/{linkage}/" if linkage else "fallback/v1/"
    return FallbackKeys(
        tokens={f: derive(network_key, f"{scope}{f}", role="fallback") for f in TOKEN_FIELDS},
        blooms={f: derive(network_key, f"{scope}{f}", role="fallback") for f in BLOOM_FIELDS},
    )


# --- standardisation ------------------------------------------------------------------------

def _letters(expr: pl.Expr) -> pl.Expr:
    folded = expr.cast(pl.String).str.to_lowercase().str.replace_many(_FOLD).str.normalize("NFKD")
    return folded.str.replace_all(r"[\p{Mn}]", "")


def normalise_surname(expr: pl.Expr) -> pl.Expr:
    """Surname core: lower case, no accents, 'Berg, van der' and 'van der Berg' both ``berg``."""
    text = _letters(expr)
    # 'Berg, van der': the inverted form keeps the core before the comma.
    text = pl.when(text.str.contains(",")).then(text.str.split(",").list.first()).otherwise(text)
    text = text.str.replace_all(r"[-'.]", " ").str.strip_chars().str.replace_all(r"\s+", " ")
    core = text.str.replace(_PREFIX_RE, "").str.replace_all(r"[^a-z]", "").str.slice(0, _MAX_NAME)
    return pl.when(core.str.len_chars() > 0).then(core).otherwise(None)


def normalise_letters(expr: pl.Expr) -> pl.Expr:
    """Letters only, lower case, no accents: given names, streets, cities (``Anne-Marie`` and
    ``anne marie`` both ``annemarie``; ``'s-Gravenhage`` ``sgravenhage``)."""
    core = _letters(expr).str.replace_all(r"[^a-z]", "").str.slice(0, _MAX_NAME)
    return pl.when(core.str.len_chars() > 0).then(core).otherwise(None)


def normalise_initials(expr: pl.Expr) -> pl.Expr:
    """Initials as letters only: ``J.P.`` and ``jp`` both ``jp``."""
    return normalise_letters(expr)


def _digits(expr: pl.Expr, max_len: int) -> pl.Expr:
    """A digit string with spaces, dots and hyphens removed, as an integer; null if not digits."""
    text = expr.cast(pl.String).str.replace_all(r"[\s.\-]", "")
    ok = text.str.contains(rf"^[0-9]{{1,{max_len}}}$")
    return pl.when(ok).then(text.cast(pl.UInt64, strict=False)).otherwise(None)


# --- exact tokens ---------------------------------------------------------------------------

def _token_blocks(frame: pl.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per token field: the (n, 16) plaintext blocks and the mask of rows that have a value."""
    pc = frame.get_column("postcode6").cast(pl.String).str.to_uppercase().str.replace_all(r"\s", "")
    hn = frame.get_column("house_number").cast(pl.String).str.to_uppercase().str.strip_chars()
    parts = pl.DataFrame({"pc": pc, "hn": hn}).select(
        pc_digits=pl.when(pl.col("pc").str.contains(r"^[1-9][0-9]{3}[A-Z]{2}$"))
        .then(pl.col("pc").str.slice(0, 4).cast(pl.UInt16, strict=False)),
        pc_letters=pl.when(pl.col("pc").str.contains(r"^[1-9][0-9]{3}[A-Z]{2}$")).then(pl.col("pc").str.slice(4, 2)),
        # The number ends where the first non-digit is ('12-2' is 12 + '2', not 122).
        hn_number=pl.col("hn").str.extract(r"^0*([1-9][0-9]{0,5})", 1).cast(pl.UInt32, strict=False),
        hn_suffix=pl.col("hn").str.extract(r"^0*[1-9][0-9]{0,5}(.*)$", 1).str.replace_all(r"[\s\-/.]", ""),
    ).with_columns(
        hn_suffix=pl.when(pl.col("hn_suffix").str.contains(r"^[A-Z0-9]{0,6}$")).then(pl.col("hn_suffix")),
    )
    values = frame.select(
        insurer=_digits(pl.col("insurer"), 4).cast(pl.UInt16, strict=False),
        number=_digits(pl.col("insurance_number"), 15),
        number_len=pl.col("insurance_number").cast(pl.String).str.replace_all(r"[\s.\-]", "").str.len_bytes()
        .cast(pl.UInt8, strict=False),
        days=pl.col("birth_date").cast(pl.Int32),
        sex=pl.col("sex").cast(pl.String).replace_strict({"M": 1, "F": 2, "X": 3}, default=None,
                                                           return_dtype=pl.UInt8),
    ).hstack(parts)
    n = frame.height
    blocks = {f: np.zeros((n, 16), dtype=np.uint8) for f in TOKEN_FIELDS}
    for f, tag in _TAGS.items():
        blocks[f][:, 0] = tag

    def col(name: str, dtype: str) -> np.ndarray:
        return values.get_column(name).fill_null(0).to_numpy().astype(dtype)

    blocks["t_insurance"][:, 1] = col("number_len", "u1")
    blocks["t_insurance"][:, 2:4] = col("insurer", ">u2").view(np.uint8).reshape(n, 2)
    blocks["t_insurance"][:, 8:16] = col("number", ">u8").view(np.uint8).reshape(n, 8)
    blocks["t_birth"][:, 4:8] = col("days", ">i4").view(np.uint8).reshape(n, 4)
    blocks["t_birth"][:, 8] = col("sex", "u1")
    blocks["t_address"][:, 2:4] = col("pc_digits", ">u2").view(np.uint8).reshape(n, 2)
    blocks["t_address"][:, 4:6] = _ascii(values.get_column("pc_letters"), 2)
    blocks["t_address"][:, 6:10] = col("hn_number", ">u4").view(np.uint8).reshape(n, 4)
    blocks["t_address"][:, 10:16] = _ascii(values.get_column("hn_suffix"), 6)
    present = {
        "t_insurance": values.select(pl.col("insurer").is_not_null() & pl.col("number").is_not_null()),
        "t_birth": values.select(pl.col("days").is_not_null() & pl.col("sex").is_not_null()),
        "t_address": values.select(pl.col("pc_digits").is_not_null() & pl.col("hn_number").is_not_null()
                                   & pl.col("hn_suffix").is_not_null()),
    }
    return {f: (blocks[f], present[f].to_series().to_numpy()) for f in TOKEN_FIELDS}


def _ascii(series: pl.Series, width: int) -> np.ndarray:
    """Fixed-width ASCII bytes of short strings (null and shorter values padded with zero bytes)."""
    text = series.fill_null("").str.slice(0, width).str.pad_end(width, "\x00")
    joined = text.str.join("").item() if len(text) else ""
    return np.frombuffer(joined.encode("ascii", "replace"), dtype=np.uint8).reshape(len(series), width)


def _tokens(key: Key, blocks: np.ndarray, present: np.ndarray) -> pl.Series:
    raw = aes_ecb(key, blocks) if len(blocks) else np.zeros((0, 16), np.uint8)
    value = np.ascontiguousarray(raw[:, :8]).view(">i8").ravel().astype(np.int64)
    return pl.Series(value).set(pl.Series(~present), None) if len(value) else pl.Series([], dtype=pl.Int64)


# --- Bloom filters --------------------------------------------------------------------------

def _bigram_masks(key: Key, spec: BloomSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(set-half masks, complement-half masks, complement base) per bigram, after the permutation.

    A balanced filter is P([f, ~f]) for a keyed bit permutation P. Since f is the OR of its
    bigrams' masks m_b: P([f, 0]) = OR_b P([m_b, 0]) and P([0, ~f]) = P([0, 1]) & ~OR_b P([0, m_b]).
    """
    width = 2 * spec.base
    perm_seed = hmac.new(key.material, b"permutation", hashlib.sha256).digest()
    perm = np.random.Generator(np.random.PCG64(int.from_bytes(perm_seed, "big"))).permutation(width)
    plain = np.zeros((_ALPHABET * _ALPHABET, spec.base), dtype=bool)
    for b in range(_ALPHABET * _ALPHABET):
        digest = hmac.new(key.material, b"bigram" + b.to_bytes(2, "big"), hashlib.sha256).digest()
        positions = np.frombuffer(digest, dtype=">u2")[: spec.k].astype(np.int64) % spec.base
        plain[b, positions] = True
    first = np.zeros((len(plain), width), dtype=bool)
    second = np.zeros((len(plain), width), dtype=bool)
    first[:, perm[: spec.base]] = plain
    second[:, perm[spec.base:]] = plain
    ones = np.zeros(width, dtype=bool)
    ones[perm[spec.base:]] = True

    def pack(bits: np.ndarray) -> np.ndarray:
        return np.packbits(bits, axis=-1, bitorder="little").view(np.uint64)

    return pack(first), pack(second), pack(ones)


def bloom_filters(key: Key, spec: BloomSpec, names: pl.Series) -> np.ndarray:
    """Balanced, permuted Bloom filters (n, words) uint64 of *standardised* names; zeros where null.

    In chunks of ``_CHUNK`` names, so that memory follows the output, not a register's names.
    """
    n = len(names)
    out = np.zeros((n, spec.words), dtype=np.uint64)
    present = np.flatnonzero(names.is_not_null().to_numpy())
    if not len(present):
        return out
    first, second, ones = _bigram_masks(key, spec)
    # Bigrams with padding filler '~' point at an appended all-zero mask: a gather, no branch.
    first = np.vstack([first, np.zeros((1, spec.words), np.uint64)])
    second = np.vstack([second, np.zeros((1, spec.words), np.uint64)])
    for lo in range(0, len(present), _CHUNK):
        rows = present[lo: lo + _CHUNK]
        out[rows] = _filters_chunk(names.gather(rows), first, second, ones, spec.words)
    return out


def _filters_chunk(names: pl.Series, first: np.ndarray, second: np.ndarray, ones: np.ndarray,
                   words: int) -> np.ndarray:
    width = int(names.str.len_bytes().max() or 0) + 2  # the longest name, padded
    padded = ("_" + names + "_").str.pad_end(width, "~")
    raw = np.frombuffer(padded.str.join("").item().encode("ascii"), dtype=np.uint8).reshape(-1, width)
    codes = np.where(raw == ord("_"), 0, raw.astype(np.int16) - (ord("a") - 1))
    valid = (codes >= 0) & (codes < _ALPHABET)
    set_half = np.zeros((len(codes), words), dtype=np.uint64)
    comp_half = np.zeros((len(codes), words), dtype=np.uint64)
    none = np.int16(_ALPHABET * _ALPHABET)
    for i in range(width - 1):
        ids = np.where(valid[:, i] & valid[:, i + 1], codes[:, i] * _ALPHABET + codes[:, i + 1], none)
        set_half |= first[ids]
        comp_half |= second[ids]
    return set_half | (ones & ~comp_half)


def encode_identifiers(keys: FallbackKeys, frame: pl.DataFrame) -> dict[str, object]:
    """Keyed encodings of ``frame`` (raw identifier columns, birth_date, sex), row by row.

    The name columns are optional: one that ``frame`` lacks is missing on every row.

    Returns the token columns (``pl.Series`` of Int64, null where the parts are missing) and the
    Bloom filters (``np.ndarray`` (n, words) uint64, with a presence mask under ``<field>_present``).
    """
    out: dict[str, object] = {}
    for field, (blocks, present) in _token_blocks(frame).items():
        out[field] = _tokens(keys.tokens[field], blocks, present).alias(field)
    # A name column the frame lacks (optional in contract v2) is missing on every row.
    frame = frame.with_columns(pl.lit(None, pl.String).alias(c) for c in _SOURCES.values() if c not in frame.columns)
    standardise = {"bf_family_name": normalise_surname, "bf_initials": normalise_initials}
    for field, spec in BLOOM_FIELDS.items():
        # A filter is a function of the name alone: each distinct name is standardised and encoded
        # once, then given to its rows (a register repeats its names, streets and cities).
        distinct, index = _distinct(frame.get_column(_SOURCES[field]))
        name = pl.DataFrame({"v": distinct}).select(standardise.get(field, normalise_letters)(pl.col("v"))).to_series()
        out[field] = bloom_filters(keys.blooms[field], spec, name)[index]
        out[f"{field}_present"] = name.is_not_null().to_numpy()[index]
    return out


def _distinct(column: pl.Series) -> tuple[pl.Series, np.ndarray]:
    """The distinct values of ``column`` (null among them) and, per row, the position of its value."""
    distinct = column.unique().rename("v")
    rows = pl.DataFrame({"v": column}).join(pl.DataFrame({"v": distinct, "i": np.arange(len(distinct))}), on="v",
                                            how="left", nulls_equal=True, maintain_order="left")
    return distinct, rows.get_column("i").to_numpy()
