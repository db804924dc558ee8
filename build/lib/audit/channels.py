"""Side channels of a release: what its manifest and files carry besides the tables (issue 11.1).

A release may publish nothing that is a function of unprotected data. A hash of a study table,
for one, confirms guesses of its hidden cells (fill them in, write the table as the study did,
compare), and so do its size and the min/max statistics of a column with hidden cells. Checks:

- ``channel``: the manifest carries a digest (a checksum in any of the format's spellings, or any
  run of 16 or more hex digits, grouped or not) that is not the checksum of a file of the release
  — the study's config hash, the ledger id and the release id excepted, which are not of data —
  or a field whose name says it holds a hash, digest, fingerprint or size, or a number in the
  entry of a withheld table (a row or cell count of what was not released); ``summary.md``
  holds a run of 16 or more hex digits that does not begin one of those.
- ``parquet-statistics``: a released Parquet file carries statistics (min/max, null or distinct
  counts, a page index) for a value column that has hidden cells.
- ``parquet-metadata``: a released Parquet file's footer holds key-value metadata other than the
  Arrow schema, or the Arrow schema holds metadata of its own.
- ``checksum-format`` (advisory): a checksum printed as 64 bare hex digits, which hold runs of
  nine digits that a leak scanner reads as BSNs; the format groups them in fours.

Findings name the field or column, never a value.
"""

from __future__ import annotations

import re

import pyarrow.parquet as pq

from audit.checks import Finding
from audit.release import Release, _sha256, parse_checksum

__all__ = ["scan_channels"]

# Fields whose digests are not of data: the study's configuration, the ledger's and release's ids.
_NOT_OF_DATA = {("study", "config_sha256"), ("ledger", "ledger_id"), ("release_id",)}
_HEX_RUN = re.compile(r"(?<![0-9a-z])[0-9a-f]+(?:-[0-9a-f]+)*(?![0-9a-z])")
_NAMED = re.compile(r"(?:^|_)(?:sha[0-9]*|hash(?:es)?|digests?|checksums?|fingerprints?|md5|crc[0-9]*|sizes?|bytes)"
                    r"(?:$|_)", re.IGNORECASE)
_VALUE_GROUPS = ("counts", "percentages", "changes")


def _digest_like(text: str) -> bool:
    if parse_checksum(text) is not None:
        return True
    return any(len(run.replace("-", "")) >= 16 for run in _HEX_RUN.findall(text.lower()))


def _walk(value: object, path: tuple[str, ...]) -> list[tuple[tuple[str, ...], object]]:
    if isinstance(value, dict):
        out = []
        for k, v in value.items():
            out += [((*path, str(k)), k), *_walk(v, (*path, str(k)))]
        return out
    if isinstance(value, list):
        return [item for v in value for item in _walk(v, path)]
    return [(path, value)]


def _manifest(release: Release) -> list[Finding]:
    files = release.manifest.get("files", {})
    ours = {digest for name in files if (release.path / name).is_file()
            for digest in [_sha256(release.path / name)]}
    named, digests = set(), set()
    for path, value in _walk({k: v for k, v in release.manifest.items() if k != "files"}, ()):
        if path in _NOT_OF_DATA:
            continue
        if isinstance(value, str) and value == path[-1] and _NAMED.search(value):
            named.add(".".join(path))
        elif isinstance(value, str) and _digest_like(value) and parse_checksum(value) not in ours:
            digests.add(".".join(path))
    findings = []
    if digests:
        findings.append(Finding("release", "channel", tuple(sorted(digests)),
                                "the manifest carries a digest that is not the checksum of a file of the "
                                "release (a hash of unprotected data confirms guesses of hidden cells)"))
    if named:
        findings.append(Finding("release", "channel", tuple(sorted(named)),
                                "the manifest has a field for a hash, digest or size that the format does "
                                "not define (of what is not released, it confirms guesses of hidden cells)"))
    counted = sorted(name for name, spec in release.manifest.get("tables", {}).items()
                     if isinstance(spec, dict) and spec.get("status") == "withheld"
                     and any(isinstance(v, int | float) and not isinstance(v, bool) for _, v in _walk(spec, ())))
    if counted:
        findings.append(Finding("release", "channel", tuple(counted),
                                "the entry of a withheld table carries a number (a count of what was not "
                                "released)"))
    legacy = sorted(n for n, d in files.items() if isinstance(d, str) and parse_checksum(d) == d)
    if legacy:
        findings.append(Finding("release", "checksum-format", (f"{len(legacy)} file(s)",),
                                "checksums printed as bare hex hold digit runs a leak scanner reads as "
                                "BSNs; the format prints sha256: and groups of four", advisory=True))
    return findings


def _summary(release: Release) -> list[Finding]:
    path = release.path / "summary.md"
    if not path.is_file():
        return []
    manifest = release.manifest
    ids = [value for path, value in _walk(manifest, ()) if path in _NOT_OF_DATA and isinstance(value, str)]
    known = [k.lower().replace("-", "").removeprefix("sha256:") for k in ids]
    known += [d for d in (parse_checksum(v) for v in manifest["files"].values()) if d]
    text = path.read_text(encoding="utf-8", errors="replace").lower()
    runs = [run.replace("-", "") for run in _HEX_RUN.findall(text)]
    odd = [run for run in runs if len(run) >= 16 and not any(k.startswith(run) for k in known if k)]
    if not odd:
        return []
    return [Finding("release", "channel", ("summary.md",),
                    f"{len(odd)} digest(s) in the summary that are not of the release, its config or its ids")]


def _hidden_value_columns(spec: dict, frame) -> set[str]:  # noqa: ANN001 - a polars DataFrame
    out = set()
    for group in _VALUE_GROUPS:
        for name, entry in spec.get(group, {}).items():
            status = entry.get("status", f"{name}_status") if isinstance(entry, dict) else f"{name}_status"
            if status in frame.columns and name in frame.columns and bool((frame[status] != "").any()):
                out.add(name)
    return out


def _parquet(release: Release) -> list[Finding]:
    findings = []
    for name, table in release.tables.items():
        path = release.path / table.spec["files"]["parquet"]
        hidden = _hidden_value_columns(table.spec, table.frame)
        try:
            handle = pq.ParquetFile(path)
            meta, schema = handle.metadata, handle.schema_arrow
        except Exception:  # noqa: BLE001 - read once already by polars; fail closed on pyarrow's view
            findings.append(Finding(name, "parquet-metadata", (path.name,), "the Parquet footer cannot be read"))
            continue
        with_stats = set()
        for g in range(meta.num_row_groups):
            group = meta.row_group(g)
            for c in range(group.num_columns):
                chunk = group.column(c)
                if chunk.path_in_schema in hidden and (chunk.is_stats_set or chunk.has_column_index):
                    with_stats.add(chunk.path_in_schema)
        if with_stats:
            findings.append(Finding(name, "parquet-statistics", tuple(sorted(with_stats)),
                                    "statistics of a column with hidden cells (min/max or counts over the "
                                    "values written) in the Parquet file"))
        extra = sorted(k.decode("utf-8", "replace") for k in (meta.metadata or {}) if k != b"ARROW:schema")
        if schema.metadata or any(f.metadata for f in schema):
            extra.append("ARROW:schema metadata")
        if extra:
            findings.append(Finding(name, "parquet-metadata", tuple(extra),
                                    "key-value metadata in the Parquet footer that the format does not define"))
    return findings


def scan_channels(release: Release) -> list[Finding]:
    """Side channels of a release: digests and sizes in its manifest, Parquet statistics and metadata."""
    return _manifest(release) + _summary(release) + _parquet(release)
