"""Reading a release folder as the auditor: checksums, tables, and the cells they show.

Only the folder is read (``docs/release-format.md``): ``manifest.json``, and the files it lists.
Problems a release can have are *findings* (a checksum that does not match, a file no checksum
covers, a column the manifest does not describe, a value whose status says otherwise, one key
with two values); a folder that is not a release at all, or that cannot be read, raises.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from audit.cells import label, quantity_key
from audit.checks import Finding
from audit.errors import ReleaseFormatError, ReleaseNotFoundError
from audit.files import (
    coordinate_problems,
    csv_difference,
    load_manifest,
    placement_findings,
    structure_problems,
)

__all__ = ["FORMAT", "Cells", "Release", "ReleasedTable", "parse_checksum", "read_release", "release_cells"]

FORMAT = "pfl-release/1"
COUNT_STATUSES = frozenset({"", "suppressed"})
RATIO_STATUSES = frozenset({"", "suppressed", "below-threshold"})
Key = tuple[str, tuple[tuple[str, str], ...]]


@dataclass(frozen=True)
class ReleasedTable:
    """One released table: its manifest entry and its rows (from the Parquet file)."""

    name: str
    spec: dict
    frame: pl.DataFrame

    @property
    def totals(self) -> dict[str, str]:
        return {d: str(v.get("total", "Total")) for d, v in self.spec.get("dimensions", {}).items()}


@dataclass
class Release:
    """A release folder as read: the manifest, the released tables, what reading found."""

    path: Path
    manifest: dict
    tables: dict[str, ReleasedTable]
    withheld: dict[str, str]
    findings: list[Finding] = field(default_factory=list)

    @property
    def release_id(self) -> str:
        return str(self.manifest.get("release_id", ""))

    @property
    def relations(self) -> list[dict]:
        return list(self.manifest.get("relations", []))


_CHECKSUM = re.compile(r"sha256:((?:[0-9a-f]{4}-){15}[0-9a-f]{4})")
_LEGACY_CHECKSUM = re.compile(r"[0-9a-f]{64}")


def parse_checksum(text: object) -> str | None:
    """The SHA-256 (64 lower-case hex) a manifest's checksum stands for; None if it is not one.

    The format prints ``sha256:`` and the hex in 16 groups of 4 joined by ``-`` (no run of nine
    digits, which a leak scanner would read as a BSN); releases made before that print the bare
    64 hex digits, still read (``audit.channels`` notes them). The one place checksums are parsed.
    """
    if not isinstance(text, str):
        return None
    if match := _CHECKSUM.fullmatch(text):
        return match.group(1).replace("-", "")
    return text if _LEGACY_CHECKSUM.fullmatch(text) else None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _manifest(folder: Path) -> tuple[dict, list[str]]:
    path = folder / "manifest.json"
    if not folder.is_dir() or not path.is_file():
        msg = f"{folder}: not a release (no manifest.json)"
        raise ReleaseNotFoundError(msg)
    try:
        manifest, repeated = load_manifest(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        msg = f"{path}: not a readable JSON manifest"
        raise ReleaseFormatError(msg) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        msg = f"{path}: not a release manifest of format {FORMAT}"
        raise ReleaseFormatError(msg)
    shapes = {"files": dict, "tables": dict, "relations": list, "policy": dict}
    wrong = [k for k, kind in shapes.items() if not isinstance(manifest.get(k), kind)]
    if wrong:
        msg = f"{path}: the manifest lacks {wrong} (or they are not of the right kind)"
        raise ReleaseFormatError(msg)
    return manifest, repeated


def _columns(spec: dict) -> list[str]:
    """Every column the manifest describes for a table, statuses included."""
    out = list(spec.get("coordinates", []))
    for group in ("counts", "percentages", "changes"):
        for name, entry in spec.get(group, {}).items():
            out += [name, entry.get("status", f"{name}_status")]
    return out


def read_release(folder: Path) -> Release:
    """Read a release folder and check its files against the manifest.

    Raises:
        ReleaseNotFoundError: no manifest, or a listed file is missing.
        ReleaseFormatError: the manifest or a table cannot be read or lacks what the format needs.
    """
    folder = Path(folder)
    manifest, repeated = _manifest(folder)
    findings: list[Finding] = []
    if repeated:
        findings.append(Finding("release", "listed-twice", tuple(sorted(set(repeated))),
                                "the manifest holds a key twice (a table listed twice?); a reader keeps one"))
    files = manifest["files"]
    for name, digest in sorted(files.items()):
        path = folder / name
        if "/" in name or name.startswith(".") or not path.is_file():
            msg = f"{folder}: the manifest lists {name!r}, which is not a file of the release"
            raise ReleaseNotFoundError(msg)
        if _sha256(path) != parse_checksum(digest):
            findings.append(Finding(name.rsplit(".", 1)[0], "checksum", (name,),
                                    "the file's SHA-256 differs from the manifest's (changed after release)"))
    for path in sorted(folder.iterdir()):
        if path.name != "manifest.json" and path.name not in files:
            findings.append(Finding("release", "unlisted-file", (path.name,),
                                    "a file no checksum of the manifest covers"))
    tables, withheld, unfit = {}, {}, []
    for name, spec in manifest["tables"].items():
        if not isinstance(spec, dict):
            msg = f"{folder / 'manifest.json'}: table {name!r} is not described"
            raise ReleaseFormatError(msg)
        if spec.get("status") == "withheld":
            withheld[name] = str(spec.get("reason", ""))
            continue
        problems = structure_problems(name, spec)
        if problems:  # its cells cannot be rebuilt: not audited, so its files fail below
            findings.append(Finding(name, "structure", (name,), "the manifest does not give the table's "
                                    f"structure: {'; '.join(problems)}"))
            unfit.append(name)
            continue
        tables[name] = _table(folder, name, spec, files, findings)
    findings += placement_findings(folder, manifest["tables"], {n: t.spec for n, t in tables.items()}, unfit)
    return Release(folder, manifest, tables, withheld, findings)


def _table(folder: Path, name: str, spec: dict, files: dict, findings: list[Finding]) -> ReleasedTable:
    parquet, csv = spec.get("files", {}).get("parquet"), spec.get("files", {}).get("csv")
    if not parquet or parquet not in files or not csv or csv not in files:
        msg = f"{folder / 'manifest.json'}: table {name!r} has no CSV and Parquet file with a checksum"
        raise ReleaseFormatError(msg)
    try:
        frame = pl.read_parquet(folder / parquet)
    except (pl.exceptions.PolarsError, OSError, ValueError):
        msg = f"{folder / name}: the table's CSV or Parquet file cannot be read"
        raise ReleaseFormatError(msg) from None
    described = _columns(spec)
    missing = [c for c in described if c not in frame.columns]
    if missing:
        msg = f"{folder / parquet}: columns {missing} described by the manifest are missing"
        raise ReleaseFormatError(msg)
    extra = [c for c in frame.columns if c not in described]
    if extra:
        findings.append(Finding(name, "undescribed-column", tuple(extra),
                                "a column the manifest does not describe (nothing may be released unchecked)"))
    numeric = coordinate_problems(spec, frame)
    if numeric:
        findings.append(Finding(name, "structure", tuple(numeric), "a coordinate holds numbers; the format's "
                                "coordinates are text but for year, year_from, year_to and rank"))
    differs = csv_difference(folder / csv, frame)
    if differs:
        findings.append(Finding(name, "csv-parquet", (csv, parquet), differs))
    return ReleasedTable(name, spec, frame)


@dataclass
class Cells:
    """The count cells a release shows: published values, hidden keys, and where each is."""

    published: dict[Key, int] = field(default_factory=dict)
    hidden: set[Key] = field(default_factory=set)
    tables_of: dict[Key, set[str]] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)


def _key(quantity: str, by: list[str] | dict[str, str], row: dict, totals: dict[str, str]) -> Key:
    mapping = {c: c for c in by} if isinstance(by, list) else by
    return quantity_key(quantity, {coord: row[column] for coord, column in mapping.items()}, totals)


def release_cells(release: Release, *, prefix: str = "") -> Cells:
    """The count cells of every released table, checked for one value and one status per key.

    Args:
        release: the release.
        prefix: put before table names (``earlier <id>/``) when several releases are combined.
    """
    cells = Cells()
    values: dict[Key, set] = {}
    for table in release.tables.values():
        name = f"{prefix}{table.name}"
        for column, entry in table.spec.get("counts", {}).items():
            status_col = entry.get("status", f"{column}_status")
            bad_status = bad_null = 0
            for row in table.frame.iter_rows(named=True):
                status, value = row[status_col], row[column]
                if status not in COUNT_STATUSES:
                    bad_status += 1
                    continue
                if (value is None) != (status != ""):
                    bad_null += 1
                key = _key(entry["quantity"], entry["by"], row, table.totals)
                cells.tables_of.setdefault(key, set()).add(name)
                values.setdefault(key, set()).add("hidden" if status or value is None else int(value))
            if bad_status:
                cells.findings.append(Finding(name, "status", (status_col,),
                                              f"{bad_status} rows with a status outside {sorted(COUNT_STATUSES)}"))
            if bad_null:
                cells.findings.append(Finding(name, "status", (column,),
                                              f"{bad_null} rows show a value with a hidden status, or hide it "
                                              "without one"))
    for key, seen in values.items():
        if len(seen) > 1:
            kind = "hidden in one place and shown in another" if "hidden" in seen else "shown with two values"
            cells.findings.append(Finding(min(cells.tables_of[key]), "consistency", (label(key),),
                                          f"one quantity {kind}"))
        numbers = [v for v in seen if v != "hidden"]
        if "hidden" in seen and not numbers:
            cells.hidden.add(key)
        elif numbers:
            cells.published[key] = min(numbers)
    return cells
