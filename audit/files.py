"""Every file of a release folder is accounted for by a table the audit checked, by content.

The manifest says which tables a release holds, but whoever made the release wrote the manifest:
a table taken out of ``tables`` (or marked withheld) while its files stay listed with correct
checksums would never be audited, and a release carrying an unprotected table would pass. So
the auditor starts from the folder, not from the manifest (issue 10, item 3):

- every file but ``manifest.json`` and ``summary.md`` must be the CSV or the Parquet file of
  exactly one table the audit read and checked; any other file fails the audit (``unaudited-file``),
  whatever the manifest claims about it (listed with a checksum or not, its table withheld, its
  table's structure not given);
- a file named by two table entries, or a table named twice in the manifest, fails
  (``listed-twice``);
- a table's CSV must hold, cell for cell, the Parquet file's content, columns included
  (``csv-parquet``): the Parquet file is what the checks read;
- a released table's entry must give its structure (``structure``): coordinates, and per count
  column its quantity, ``by`` columns and status column. A table without it cannot be audited and
  its files are then unaccounted for.

Findings name files, tables and columns, never a value.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import polars as pl

from audit.checks import Finding

__all__ = ["NOT_DATA", "VALUES", "coordinate_problems", "csv_difference", "load_manifest", "placement_findings",
           "structure_problems"]

# The only files of a release that are not tables (docs/release-format.md).
NOT_DATA = frozenset({"manifest.json", "summary.md"})
# The format's tables and the value columns each must declare as such (docs/release-format.md,
# "Tables"): a value declared a coordinate would escape every check of values.
VALUES = {
    "attrition": {"counts": ("before", "excluded", "after")},
    "prevalence": {"counts": ("numerator", "denominator"), "percentages": ("percentage",)},
    "incidence": {"counts": ("numerator", "denominator"), "percentages": ("percentage",)},
    "index_cohort": {"counts": ("numerator", "denominator"), "percentages": ("percentage",)},
    "care_use": {"counts": ("n", "N"), "percentages": ("percentage",)},
    "care_use_change": {"percentages": ("share_from", "share_to"), "changes": ("change_pp",)},
    "referrals": {"counts": ("n", "N"), "percentages": ("percentage",)},
    "top": {"counts": ("contacts", "persons", "total_contacts"), "percentages": ("share",)},
    "acsc": {"counts": ("admissions", "persons")},
    "costs": {"counts": ("persons",), "magnitudes": ("total",), "means": ("mean",)},
    "contact_bands": {"counts": ("persons",)},
    "fallback_links": {"counts": ("persons",)},
}
# Coordinates name rows: text, except these (Int64).
NUMBER_COORDINATES = frozenset({"year", "year_from", "year_to", "rank"})


def load_manifest(text: str) -> tuple[object, list[str]]:
    """Parse the manifest's JSON, noting every key an object holds twice (JSON keeps the last).

    Returns:
        The parsed value and the repeated keys, as ``tables.prevalence``-like paths where known.
    """
    repeated: list[str] = []

    def pairs(items: list[tuple[str, object]]) -> dict:
        seen: dict[str, object] = {}
        for key, value in items:
            if key in seen:
                repeated.append(key)
            seen[key] = value
        return seen

    return json.loads(text, object_pairs_hook=pairs), repeated


def _names(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def structure_problems(name: str, spec: dict) -> list[str]:
    """What a released table's entry lacks for the audit to rebuild its cells (empty: nothing)."""
    problems = []
    if not _names(spec.get("coordinates")):
        problems.append("no list of coordinates")
    counts = spec.get("counts")
    if not isinstance(counts, dict):
        problems.append("no mapping of count columns")
        counts = {}
    for group, columns in VALUES.get(name, {}).items():
        declared = spec.get(group) if isinstance(spec.get(group), dict) else {}
        lacking = [c for c in columns if c not in declared]
        if lacking:
            problems.append(f"{group} lacks {lacking}, which the format gives table {name!r}")
    for column, entry in counts.items():
        by = entry.get("by") if isinstance(entry, dict) else None
        if (not isinstance(entry, dict) or not isinstance(entry.get("quantity"), str)
                or not (_names(by) or (isinstance(by, dict) and all(isinstance(v, str) for v in by.values())))):
            problems.append(f"count {column!r} without its quantity and 'by' columns")
    for group in ("percentages", "changes", "magnitudes", "means"):
        if not isinstance(spec.get(group, {}), dict):
            problems.append(f"{group} is not a mapping")
    for column, entry in spec.get("percentages", {}).items() if isinstance(spec.get("percentages"), dict) else ():
        refs = [entry.get(r) if isinstance(entry, dict) else None for r in ("numerator", "denominator")]
        if not all(isinstance(r, dict) and isinstance(r.get("quantity"), str) and isinstance(r.get("by"), dict)
                   for r in refs):
            problems.append(f"percentage {column!r} without its numerator and denominator")
    return problems


def coordinate_problems(spec: dict, frame: pl.DataFrame) -> list[str]:
    """Coordinates that hold numbers where the format has text (a value passed off as a label)."""
    return [c for c in spec.get("coordinates", []) if c in frame.columns and c not in NUMBER_COORDINATES
            and frame.schema[c] != pl.String and frame.schema[c] != pl.Null]


def csv_difference(csv: Path, frame: pl.DataFrame) -> str | None:
    """Why the CSV file does not hold the Parquet file's table, or None when it does."""
    try:
        header = pl.read_csv(csv, n_rows=0, infer_schema=False).columns
    except (pl.exceptions.PolarsError, OSError, ValueError):
        return "the CSV file cannot be read as CSV"
    if header != frame.columns:
        extra = [c for c in header if c not in frame.columns]
        missing = [c for c in frame.columns if c not in header]
        return (f"the CSV's columns differ from the Parquet file's (only in the CSV: {extra or 'none'}; "
                f"only in the Parquet file: {missing or 'none'}; or another order)")
    try:
        text = pl.read_csv(csv, schema=frame.schema, empty_string_is_null=False)
    except (pl.exceptions.PolarsError, OSError, ValueError):
        return "the CSV's values do not parse as the Parquet file's column types"
    return None if text.equals(frame) else "the CSV and Parquet files differ"


def _claims(tables: dict) -> dict[str, list[str]]:
    """File name -> the table entries (``name (kind)``) that name it."""
    claimed: dict[str, list[str]] = {}
    for name, spec in tables.items():
        files = spec.get("files") if isinstance(spec, dict) else None
        for kind, file in files.items() if isinstance(files, dict) else ():
            claimed.setdefault(str(file), []).append(f"{name} ({kind})")
    return claimed


def _why(claims: list[str], tables: dict, unfit: Iterable[str]) -> str:
    if not claims:
        return "no table of the manifest names it"
    table = claims[0].rsplit(" (", 1)[0]
    spec = tables.get(table, {})
    if isinstance(spec, dict) and spec.get("status") == "withheld":
        return f"it belongs to table {table!r}, which the manifest calls withheld"
    if table in unfit:
        return f"it belongs to table {table!r}, whose structure the manifest does not give"
    return f"table {table!r} names it as a file the audit does not read ({claims[0]})"


def placement_findings(folder: Path, manifest_tables: dict, audited: dict[str, dict],
                       unfit: Iterable[str] = ()) -> list[Finding]:
    """Every file of the folder but the manifest and summary is a file of exactly one audited table.

    Args:
        folder: the release folder.
        manifest_tables: the manifest's ``tables``.
        audited: table name -> its entry, for each table whose CSV and Parquet files were read and
            checked (their content is what the checks saw).
        unfit: tables left unaudited because their entry does not give their structure.
    """
    claimed = _claims(manifest_tables)
    placed = {str(spec["files"][kind]) for spec in audited.values() for kind in ("csv", "parquet")}
    findings = []
    for name, claims in sorted(claimed.items()):
        if len(claims) > 1:
            findings.append(Finding("release", "listed-twice", (name,),
                                    f"one file named by {len(claims)} table entries ({', '.join(claims)})"))
    for path in sorted(folder.iterdir()):
        if path.name in NOT_DATA or (path.name in placed and len(claimed.get(path.name, [])) == 1):
            continue
        if len(claimed.get(path.name, [])) > 1:
            continue  # reported above
        why = _why(claimed.get(path.name, []), manifest_tables, unfit)
        findings.append(Finding("release", "unaudited-file", (path.name,),
                                f"a file of the release that no audited table accounts for, so its content was "
                                f"not audited: {why}"))
    return findings
