"""Identifier scan of a released table (disclosure.md, "The auditor": no identifier-like column).

A release holds aggregates only. Flagged:

- a column whose name suggests an identifier: ``bsn``, ``pseudonym``, ``token``, ``patient_id``,
  ``claim_id`` anywhere in the name (separators and case ignored), or ``p1``/``p2`` as a word
  (so ``p1_hash`` and ``P2`` are caught, ``group1`` is not);
- a value (or column name) holding a labelled pseudonym or token, ``P1v1.``, ``P2v1.``, ``TKv1.``
  (any scheme version, any case);
- a value holding a 9-digit number that passes the BSN 11-test (``9·d1 + 8·d2 + ... + 2·d8 − d9 ≡
  0 mod 11``, 000000000 excluded), as a whole run of digits or grouped 3-3-3 with one separator.
  The 11-test is reimplemented here, not imported from ``extracts.bsn``: the auditor is an
  independent code path. The 32-hex body of a labelled value is masked first (it is random or AES
  output, so it holds chance digit runs; the label is flagged anyway).

Findings name the column and the kind of match, never the value.
"""

from __future__ import annotations

import re

import polars as pl

from audit.checks import Finding

__all__ = ["passes_eleven_test", "scan_identifiers"]

_NAME_PARTS = ("bsn", "pseudonym", "token", "patientid", "claimid")
_NAME_WORD = re.compile(r"(?<![a-z0-9])p[12](?![0-9])", re.IGNORECASE)
_LABELLED = r"(?i)\b(?:p1|p2|tk)v[0-9]+\."
_LABELLED_BODY = r"(?i)(\b(?:p1|p2|tk)v[0-9]+\.[0-9a-f]{8}\.)[0-9a-f]{32}"
_GROUPED = r"\b([0-9]{3})[ .\-]([0-9]{3})[ .\-]([0-9]{3})\b"
_WEIGHTS = (9, 8, 7, 6, 5, 4, 3, 2, -1)


def passes_eleven_test(digits: str) -> bool:
    """True for a 9-digit string passing the BSN 11-test; 000000000 does not pass.

    Args:
        digits: The candidate, exactly nine ASCII digits.
    """
    if len(digits) != 9 or not digits.isascii() or not digits.isdigit() or digits == "0" * 9:
        return False
    return sum(w * int(d) for w, d in zip(_WEIGHTS, digits, strict=True)) % 11 == 0


def _name_is_identifier(name: str) -> bool:
    squashed = re.sub(r"[^a-z0-9]", "", name.lower())
    return any(part in squashed for part in _NAME_PARTS) or bool(_NAME_WORD.search(name))


def _as_text(series: pl.Series) -> pl.Series:
    try:
        return series.cast(pl.String)
    except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError):
        # Nested types (lists, structs) have no cast to text; their repr holds every value.
        return pl.Series(series.name, [None if v is None else str(v) for v in series.to_list()],
                         dtype=pl.String)


def _bsn_like(texts: pl.Series) -> pl.Series:
    """Per text: does it hold a 9-digit run passing the 11-test."""
    runs = (
        pl.DataFrame({"text": texts})
        .with_row_index("row")
        .select(
            "row",
            pl.col("text")
            .str.replace_all(_LABELLED_BODY, "${1}")
            .str.replace_all(_GROUPED, "${1}${2}${3}")
            .str.extract_all(r"[0-9]+")
            .alias("run"),
        )
        .explode("run")
        .filter(pl.col("run").str.len_bytes() == 9)
    )
    passing = {run for run in runs["run"].unique().to_list() if passes_eleven_test(run)}
    hit_rows = set(runs.filter(pl.col("run").is_in(sorted(passing)))["row"].to_list())
    return pl.Series([i in hit_rows for i in range(len(texts))], dtype=pl.Boolean)


def scan_identifiers(table: str, frame: pl.DataFrame) -> list[Finding]:
    """Identifier-like columns and values of one released table.

    Args:
        table: Table name for the findings.
        frame: The table as released (every column, whatever its type).

    Returns:
        One finding (check ``identifier``) per column name or column with a problem; the message
        gives the kind and the number of rows, never a value.
    """
    findings = []
    for name in frame.columns:
        texts = _as_text(frame.get_column(name))
        header = pl.Series([name], dtype=pl.String)
        if _name_is_identifier(name):
            findings.append(Finding(table, "identifier", (name,),
                                    "column name suggests an identifier"))
        if header.str.contains(_LABELLED).any() or _bsn_like(header).any():
            findings.append(Finding(table, "identifier", (name,),
                                    "column name holds a pseudonym label or a BSN-like number"))
        labelled = int(texts.str.contains(_LABELLED).fill_null(False).sum())
        if labelled:
            findings.append(Finding(table, "identifier", (name,),
                                    f"{labelled} value(s) hold a labelled pseudonym or token"))
        bsn_like = int(_bsn_like(texts).sum())
        if bsn_like:
            findings.append(Finding(table, "identifier", (name,),
                                    f"{bsn_like} value(s) hold a 9-digit number passing the "
                                    "11-test"))
    return findings
