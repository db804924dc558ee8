"""Reading a release folder for the report: checksums first, then the tables the manifest describes.

Only the folder is read (``docs/release-format.md``): ``manifest.json`` and the files it lists.
Every listed file is read once, its SHA-256 compared with the manifest's, and the tables are then
parsed from those same bytes, so what is rendered is exactly what was checked. A release the
report cannot trust is refused whole (:mod:`report.errors`): a checksum that differs, a listed
file that is missing, a table file no checksum covers, a column the manifest does not describe,
a status the format does not know, or a value present under a hidden status.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from report.errors import ReleaseFormatError, ReleaseNotFoundError, ReleaseTamperedError

__all__ = ["FORMAT", "HIDDEN_STATUSES", "KNOWN_TABLES", "Release", "Table", "read_release"]

FORMAT = "pfl-release/1"
# docs/release-format.md, "Status values": "" is shown; the others hide the value.
HIDDEN_STATUSES = ("suppressed", "below-threshold")
_STATUSES = frozenset(("", *HIDDEN_STATUSES))
_VALUE_GROUPS = ("counts", "percentages", "changes", "magnitudes", "means")
# The tables the report has a section for: their coordinates and value columns (the format's
# "Tables"). A release may hold others; these must have what the sections read.
KNOWN_TABLES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "attrition": (("year", "condition", "step"), ("before", "excluded", "after")),
    "fallback_links": (("year",), ("persons",)),  # shown under the attrition of its year
    "prevalence": (("year", "condition"), ("numerator", "denominator", "percentage")),
    "care_use": (("year", "condition", "discipline"), ("n", "N", "percentage")),
    "care_use_change": (("condition", "discipline", "year_from", "year_to"),
                        ("share_from", "share_to", "change_pp")),
    "referrals": (("year", "condition"), ("n", "N", "percentage")),
    "top": (("year", "discipline", "rank", "group"), ("contacts", "share", "persons", "total_contacts")),
    "acsc": (("year",), ("admissions", "persons")),
}
_INTEGER_COORDINATES = frozenset({"year", "year_from", "year_to", "rank"})


@dataclass(frozen=True)
class Table:
    """One released table: its manifest entry and its rows (from the checked Parquet file)."""

    name: str
    spec: dict
    frame: pl.DataFrame

    @property
    def coordinates(self) -> list[str]:
        return [str(c) for c in self.spec.get("coordinates", [])]

    @property
    def strata(self) -> dict[str, str]:
        """Stratum column -> its total label (``dimensions`` of the manifest)."""
        return {str(d): str(v.get("total", "Total")) for d, v in self.spec.get("dimensions", {}).items()}

    @property
    def values(self) -> dict[str, str]:
        """Value column -> its status column, in the manifest's order."""
        out: dict[str, str] = {}
        for group in _VALUE_GROUPS:
            for name, entry in self.spec.get(group, {}).items():
                out[str(name)] = str(entry.get("status", f"{name}_status"))
        return out

    def unit(self, column: str) -> str:
        """``persons``/``events`` for a count, ``percent``/``fraction``/``pp`` otherwise."""
        spec = self.spec
        if column in spec.get("counts", {}):
            return str(spec["counts"][column].get("unit", "persons"))
        if column in spec.get("percentages", {}):
            return "percent" if spec["percentages"][column].get("scale", 100) == 100 else "fraction"
        for group in ("magnitudes", "means"):  # claimed costs: a currency, whole units
            if column in spec.get(group, {}):
                return str(spec[group][column].get("unit", "EUR"))
        return "pp"

    def totals(self) -> pl.DataFrame:
        """The rows whose every stratum is its total label (all rows without strata)."""
        frame = self.frame
        for column, total in self.strata.items():
            frame = frame.filter(pl.col(column) == total)
        return frame


@dataclass(frozen=True)
class Release:
    """A release folder as read and checked."""

    path: Path
    manifest: dict
    tables: dict[str, Table]
    withheld: dict[str, str]

    @property
    def study(self) -> dict:
        return dict(self.manifest.get("study", {}))

    @property
    def policy(self) -> dict:
        return dict(self.manifest.get("policy", {}))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_CHECKSUM = re.compile(r"sha256:((?:[0-9a-f]{4}-){15}[0-9a-f]{4})")
_LEGACY_CHECKSUM = re.compile(r"[0-9a-f]{64}")


def _checksum(text: object) -> str | None:
    """The SHA-256 (64 lower-case hex) a manifest's checksum stands for; None if it is not one.

    ``sha256:`` and 16 groups of 4 hex joined by ``-`` (docs/release-format.md); the bare 64 hex
    digits of releases made before that are read too. The one place the report parses checksums.
    """
    if not isinstance(text, str):
        return None
    if match := _CHECKSUM.fullmatch(text):
        return match.group(1).replace("-", "")
    return text.lower() if _LEGACY_CHECKSUM.fullmatch(text.lower()) else None


def _manifest(folder: Path) -> dict:
    path = folder / "manifest.json"
    if not folder.is_dir():
        msg = f"{folder}: not a release folder (it does not exist or is not a folder)"
        raise ReleaseNotFoundError(msg)
    if not path.is_file():
        msg = f"{folder}: not a release (no manifest.json)"
        raise ReleaseNotFoundError(msg)
    try:
        manifest = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        msg = f"{path}: not a readable JSON manifest"
        raise ReleaseFormatError(msg) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        msg = f"{path}: not a release manifest of format {FORMAT}"
        raise ReleaseFormatError(msg)
    shapes = {"files": dict, "tables": dict, "policy": dict, "study": dict}
    wrong = sorted(k for k, kind in shapes.items() if not isinstance(manifest.get(k), kind))
    if wrong:
        msg = f"{path}: the manifest lacks {', '.join(wrong)} (or they are not of the right kind)"
        raise ReleaseFormatError(msg)
    return manifest


def _checked_files(folder: Path, listed: dict) -> dict[str, bytes]:
    """Every file the manifest lists, read once and compared with its SHA-256."""
    contents: dict[str, bytes] = {}
    differ: list[str] = []
    for name, digest in sorted(listed.items()):
        path = folder / str(name)
        if "/" in name or "\\" in name or name.startswith(".") or not path.is_file():
            msg = f"{folder}: the manifest lists {name!r}, which is not a file of the release"
            raise ReleaseNotFoundError(msg)
        data = path.read_bytes()
        if _sha256(data) != _checksum(digest):
            differ.append(name)
        contents[name] = data
    if differ:
        msg = (f"{folder}: {len(differ)} file(s) differ from the manifest's SHA-256 checksum "
               f"({', '.join(differ)}); the release was changed or damaged after it was made, "
               "so no report is made from it")
        raise ReleaseTamperedError(msg)
    return contents


def _described_columns(spec: dict) -> list[str]:
    out = [str(c) for c in spec.get("coordinates", [])]
    for group in _VALUE_GROUPS:
        for name, entry in spec.get(group, {}).items():
            out += [str(name), str(entry.get("status", f"{name}_status"))]
    return out


def _table(folder: Path, name: str, spec: dict, contents: dict[str, bytes]) -> Table:
    where = f"{folder / 'manifest.json'}, table {name!r}"
    parquet = spec.get("files", {}).get("parquet") if isinstance(spec.get("files"), dict) else None
    if not parquet or parquet not in contents:
        msg = f"{where}: no Parquet file with a checksum in the manifest"
        raise ReleaseFormatError(msg)
    try:
        frame = pl.read_parquet(io.BytesIO(contents[parquet]))
    except Exception:  # noqa: BLE001 - polars raises several types for a damaged file
        msg = f"{folder / parquet}: not a readable Parquet file"
        raise ReleaseFormatError(msg) from None
    described = _described_columns(spec)
    missing = [c for c in described if c not in frame.columns]
    extra = [c for c in frame.columns if c not in described]
    if missing or extra:
        msg = (f"{folder / parquet}: columns differ from the manifest "
               f"(missing: {', '.join(missing) or 'none'}; not described: {', '.join(extra) or 'none'})")
        raise ReleaseFormatError(msg)
    if isinstance(spec.get("rows"), int) and spec["rows"] != frame.height:
        msg = f"{folder / parquet}: {frame.height} rows, the manifest says {spec['rows']}"
        raise ReleaseFormatError(msg)
    table = Table(name, spec, frame)
    coordinates, values = KNOWN_TABLES.get(name, ((), ()))
    lacking = [c for c in coordinates if c not in table.coordinates] + [v for v in values if v not in table.values]
    if lacking:
        msg = f"{where}: lacks {', '.join(lacking)}, which the format gives this table"
        raise ReleaseFormatError(msg)
    wrong = [c for c in table.coordinates if c in _INTEGER_COORDINATES and not frame.schema[c].is_integer()]
    wrong += [v for v in table.values if not frame.schema[v].is_numeric() and frame.schema[v] != pl.Null]
    if wrong:
        msg = f"{folder / parquet}: columns of the wrong type ({', '.join(wrong)}; expected numbers)"
        raise ReleaseFormatError(msg)
    for value, status in table.values.items():
        if frame.schema[status] != pl.String:
            msg = f"{folder / parquet}, column {status!r}: a status column must hold text"
            raise ReleaseFormatError(msg)
        unknown = frame.filter(~pl.col(status).fill_null("").is_in(list(_STATUSES))).height
        if unknown:
            msg = (f"{folder / parquet}, column {status!r}: {unknown} value(s) not a status of the "
                   f"format ({', '.join(repr(s) for s in sorted(_STATUSES))})")
            raise ReleaseFormatError(msg)
        # Fail closed: a value under a hidden status would be shown by anyone reading the file,
        # and the report will not pretend it is hidden while the release carries it.
        leaked = frame.filter(pl.col(status).fill_null("").is_in(HIDDEN_STATUSES)
                              & pl.col(value).is_not_null()).height
        if leaked:
            msg = (f"{folder / parquet}, column {value!r}: {leaked} value(s) present under a hidden "
                   f"status in {status!r}; the release is malformed and no report is made from it")
            raise ReleaseFormatError(msg)
    return table


def read_release(folder: Path) -> Release:
    """Read a release folder, checking every file against the manifest before using any.

    Args:
        folder: The release folder (``docs/release-format.md``).

    Raises:
        ReleaseNotFoundError: no manifest, or a listed file is missing (exit 3).
        ReleaseTamperedError: a file's SHA-256 differs from the manifest's (exit 1).
        ReleaseFormatError: the manifest or a table does not follow the format (exit 4).
    """
    folder = Path(folder)
    manifest = _manifest(folder)
    contents = _checked_files(folder, manifest["files"])
    tables: dict[str, Table] = {}
    withheld: dict[str, str] = {}
    for name, spec in manifest["tables"].items():
        if not isinstance(spec, dict):
            msg = f"{folder / 'manifest.json'}: table {name!r} is not described"
            raise ReleaseFormatError(msg)
        if spec.get("status") == "withheld":
            withheld[str(name)] = str(spec.get("reason", "")) or "no reason given"
        elif spec.get("status") == "released":
            tables[str(name)] = _table(folder, str(name), spec, contents)
        else:
            msg = f"{folder / 'manifest.json'}: table {name!r} is neither released nor withheld"
            raise ReleaseFormatError(msg)
    return Release(folder, manifest, tables, withheld)
