"""Needles for the contract-v2 identifiers in a leak scan (issue 13, item 8): whole words of readable text.

How identifier needles match (:class:`WordNeedles`): as whole words of the *readable* text of a
file (JSON, YAML and logs as text; for Parquet its column names, key-value metadata and every cell),
never inside compressed bytes, where a short run of letters turns up by chance. A word is
normalised before it is looked up (lower case for names, no space in a postcode), so ``DE BOER``
and ``de Boer`` are found alike.

- family names: every word of five or more letters of a name as the extract spelled it, without its
  prefixes (``van der``): shorter words are too often ordinary words of a report (``Post``, ``Span``,
  ``Bos``);
- given names, streets and places of residence (contract v2's optional ``given_name``, ``street``
  and ``city``, where a supplier delivers them): the same rule, each its own kind (``Johannes``,
  ``Anne-Sophie`` as ``sophie``, ``Kerkstraat``, ``Burgemeester``, ``Amsterdam``, ``Broek in
  Waterland`` as ``broek`` and ``waterland``); shorter ones (``Jan``, ``Ede``, ``Oss``, ``Laan``)
  are ordinary words and abbreviations of a report too often;
- initials: in their dotted form, two or more capitals (``P.A.``, ``J.P.S.``; ``e.g.`` is no name): undotted initials are
  a few capitals, as every abbreviation of a report is (``SHA``, ``CSV``);
- postcodes (PC6): ``1234AB`` and ``1234 ab`` alike;
- house numbers: a bare house number is a small integer that every count and age can equal; it
  identifies with its postcode (found as PC6) or in a suffixed form (``5-BIS``, ``4 hs``): those
  are the needle (and the leak scans refuse columns named like an identifier outright); times
  (``2026-12-05T12-58-54Z`` in a release id) are masked first, or second 54 would be house ``54Z``;
- insurance numbers: whole runs of digits, 8-digit runs zero-padded, the 32-hex bodies of labelled
  pseudonyms masked first (as for BSNs in ``tests/integration/test_leak_scan.py``: 9-digit runs
  inside claim ids and random hex would give chance hits otherwise). Binary cells (pseudonyms, Bloom
  filters) are read as ``0x``-prefixed hex, one word that no other needle can match inside, and masked
  whole for the same reason (their bytes read as text give chance short words such as ``5A``).

Findings name the file and the kind of needle, never the value.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from pseudonymisation.encodings import IDENTIFIER_COLUMNS

__all__ = ["WordNeedles", "identifier_needles", "readable_texts", "scan_readable"]

_LABELLED_BODY = r"([A-Za-z0-9]{4}\.[0-9a-f]{8}\.)[0-9a-f]{32}"
# Times as the engine writes them (ISO, and release ids' ``2026-12-05T12-58-54Z``): ``54Z`` is a second.
_TIMESTAMP = r"()[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}[-:][0-9]{2}[-:][0-9]{2}(?:\.[0-9]+)?Z?"
_RANDOM = _LABELLED_BODY + r"|\b0x[0-9a-f]+\b"  # labelled bodies and binary cells: PRF, AES or Bloom bits
_PREFIX_WORDS = frozenset("van von de der den het t ten ter te in op aan bij uit la le du da di del des d l s".split())


@dataclass(frozen=True)
class WordNeedles:
    """Identifier values found as whole words of a text: ``extract`` finds candidate words,
    ``normalise`` brings them to the form of ``values``."""

    kind: str
    values: frozenset[str]
    extract: str
    normalise: str  # "lower", "upper", "upper_compact" (no spaces, hyphens), "digits"
    mask: str | None = None  # a regex whose matches are cut to their first group before extracting

    def matches(self, texts: pl.Series) -> pl.Series:
        word = pl.col("word")
        norm = {"lower": word.str.to_lowercase(), "upper": word.str.to_uppercase(),
                "upper_compact": word.str.to_uppercase().str.replace_all(r"[\s\-]", ""),
                "digits": pl.when(word.str.len_bytes() == 8).then(pl.lit("0") + word).otherwise(word)}[self.normalise]
        text = pl.col("text") if self.mask is None else pl.col("text").str.replace_all(self.mask, "${1}")
        words = (
            pl.DataFrame({"text": texts}).with_row_index("row")
            .select("row", text.str.extract_all(self.extract).alias("word"))
            .explode("word").drop_nulls("word")
            .with_columns(norm)
        )
        hits = words.filter(pl.col("word").is_in(sorted(self.values)))["row"]
        return pl.int_range(len(texts), eager=True).is_in(hits.implode())

    def found_in(self, texts: pl.Series) -> bool:
        return bool(self.matches(texts).any())


def readable_texts(path: Path) -> pl.Series:
    """What a reader of a file sees: text files as text; Parquet names, metadata and cells."""
    if path.suffix != ".parquet":
        return pl.Series([path.read_bytes().decode("utf-8", "replace")], dtype=pl.String)
    frame = pl.read_parquet(path)
    meta = pq.read_metadata(path).metadata or {}
    parts = [pl.Series(frame.columns, dtype=pl.String),
             pl.Series([v.decode("utf-8", "replace") for k, v in meta.items() if k != b"ARROW:schema"],
                       dtype=pl.String)]
    parts += [_cells(frame[name]) for name in frame.columns]
    return pl.concat(parts)


def _cells(column: pl.Series) -> pl.Series:
    if column.dtype == pl.Binary:  # as 0x-prefixed hex: one word, which digit-run needles mask
        return ("0x" + column.bin.encode("hex")).drop_nulls().unique()
    try:
        return column.cast(pl.String).drop_nulls().unique()
    except pl.exceptions.PolarsError:  # nested columns: render each value
        return pl.Series([str(v) for v in column.drop_nulls().to_list()], dtype=pl.String).unique()


def scan_readable(paths: list[Path], needles: list[WordNeedles]) -> list[tuple[str, str]]:
    """(file, needle kind) for every kind found in a file's readable text; never the value."""
    found = set()
    for path in paths:
        texts = readable_texts(path)
        found |= {(str(path), n.kind) for n in needles if n.found_in(texts)}
    return sorted(found)


def _identifier_frame(extracts: Path) -> pl.DataFrame:
    """The identifier columns the extracts deliver (the optional given name, street and city only
    where a supplier has them; the generator draws them, extracts made before 2026-12-05 lack them)."""
    files = [extracts / "ehr" / "patients.parquet", extracts / "claims" / "insured.parquet"]
    return pl.concat([
        pl.read_parquet(f, columns=[c for c in IDENTIFIER_COLUMNS if c in pl.read_parquet_schema(f)]) for f in files
    ], how="diagonal_relaxed")


# Contract v2's optional identifier columns, where a supplier delivers them: the kind of needle.
_OPTIONAL = {"given name": "given_name", "street": "street", "city": "city"}


def _long_words(values: pl.Series) -> set[str]:
    """Every word of five or more letters of the values, lower case, prefixes (``van der``) left out."""
    return {w for value in values.drop_nulls().unique().to_list()
            for w in value.replace(",", " ").replace("-", " ").replace(".", " ").lower().split()
            if w.isalpha() and len(w) >= 5 and w not in _PREFIX_WORDS}


def identifier_needles(extracts: Path) -> list[WordNeedles]:
    """Needles of every identifier of the extracts' ``patients`` and ``insured`` (see the module doc)."""
    ids = _identifier_frame(extracts)
    names = _long_words(ids["family_name"])
    initials = {"".join(f"{c}." for c in i) for i in ids["initials"].drop_nulls().str.replace_all(r"[^A-Za-z]", "")
                .str.to_uppercase().unique().to_list() if len(i) >= 2}
    pc6 = set(ids["postcode6"].drop_nulls().str.replace_all(r"\s", "").str.to_uppercase().unique().to_list())
    houses = ids["house_number"].drop_nulls().str.to_uppercase().str.replace_all(r"[\s\-]", "")
    suffixed = set(houses.filter(houses.str.contains(r"^[0-9]+[A-Z]+$")).unique().to_list())
    numbers = ids["insurance_number"].drop_nulls().str.replace_all(r"[\s.\-]", "")
    numbers = numbers.filter(numbers.str.contains(r"^[0-9]{1,9}$")).str.zfill(9)
    assert min(len(names), len(initials), len(pc6), len(suffixed), len(numbers)) > 10, "tiny extract has identifiers"
    optional = {kind: _long_words(ids[column]) for kind, column in _OPTIONAL.items() if column in ids.columns}
    assert all(len(words) > 10 for words in optional.values()), "tiny extract has its optional identifiers"
    return [
        *(WordNeedles(kind, frozenset(words), r"\p{L}+", "lower") for kind, words in optional.items()),
        WordNeedles("family name", frozenset(names), r"\p{L}+", "lower"),
        WordNeedles("initials", frozenset(initials), r"\b(?:[A-Z]\.){2,4}", "upper"),
        WordNeedles("postcode6", frozenset(pc6), r"\b[1-9][0-9]{3} ?[A-Za-z]{2}\b", "upper_compact"),
        WordNeedles("house number with suffix", frozenset(suffixed), r"\b[0-9]{1,5}[ \-]?[A-Za-z]{1,3}\b",
                    "upper_compact", _TIMESTAMP),
        WordNeedles("insurance number", frozenset(numbers.unique().to_list()), r"[0-9]+", "digits", _RANDOM),
    ]
