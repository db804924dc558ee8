"""Writing a release folder: tables (CSV and Parquet), ``summary.md`` and ``manifest.json``.

The layout and every field are those of ``docs/release-format.md``. Files are written into a
staging folder; the manifest, holding the SHA-256 of every other file, is written last.

Nothing here is a function of an unprotected value (issue 11.1): the tables are written from
frames whose hidden values are null, Parquet without statistics; no hash, size or row count of a
study table is published (the inputs' fingerprints go to the steward's ledger record); ids and
checksums are printed by :mod:`release.public_ids` (never nine digits in a row).
"""

from __future__ import annotations

import json
from pathlib import Path

from disclosure import Policy
from release.build import ReleaseContent
from release.layout import TableLayout
from release.public_ids import CHECKSUM_PREFIX, checksum, grouped
from release.study_folder import TOTAL, StudyFolder

__all__ = ["FORMAT", "manifest", "summary", "write_tables"]

FORMAT = "pfl-release/1"


def write_tables(content: ReleaseContent, folder: Path) -> dict[str, str]:
    """Write each released table as CSV and Parquet; return file name -> checksum (as printed)."""
    files = {}
    for name, frame in content.frames.items():
        frame.write_csv(folder / f"{name}.csv")
        # No statistics: min/max/null counts of a column are a function of every value written
        # (pfl-audit's check "parquet-statistics" fails a release whose value columns carry them).
        frame.write_parquet(folder / f"{name}.parquet", statistics=False)
        files[f"{name}.csv"] = checksum(folder / f"{name}.csv")
        files[f"{name}.parquet"] = checksum(folder / f"{name}.parquet")
    return files


def _hex(value: str | None) -> str | None:
    """A hex id or digest of the study's manifest (checked by ``read_study``), grouped in fours."""
    return None if value is None else grouped(value)


def _structure(lay: TableLayout, content: ReleaseContent) -> dict:
    if lay.name in content.withheld:
        return {"status": "withheld", "reason": content.withheld[lay.name]}

    def ref(quantity: str, by: dict) -> dict:
        return {"quantity": quantity, "by": dict(by)}

    return {
        "status": "released",
        "files": {"csv": f"{lay.name}.csv", "parquet": f"{lay.name}.parquet"},
        "rows": content.frames[lay.name].height,
        "coordinates": list(lay.coordinates),
        "dimensions": {d: {"levels": list(levels), "total": TOTAL} for d, levels in lay.dimensions.items()},
        "counts": {c.name: {"quantity": c.quantity, "unit": c.unit, "by": list(c.by), "status": f"{c.name}_status"}
                   for c in lay.counts},
        "percentages": {r.name: {"numerator": ref(*r.numerator), "denominator": ref(*r.denominator),
                                 "scale": r.scale, "status": f"{r.name}_status"} for r in lay.ratios},
        "changes": {c.name: {"from": c.first, "to": c.second, "scale": c.scale, "status": f"{c.name}_status"}
                    for c in lay.changes},
        "cells": content.status_counts.get(lay.name, {}),
    }


def manifest(content: ReleaseContent, study: StudyFolder, *, release_id: str, created: str, policy: Policy,
             steward: Policy, overrides: dict, ledger_id: str, files: dict[str, str], version: str) -> dict:
    """The manifest of a release (release-format.md, "Manifest")."""
    m = study.manifest
    return {
        "format": FORMAT,
        "status": "released under disclosure control",
        "release_id": release_id,
        "created": created,
        "engine": {"name": "patientflow-linkage", "version": version},
        "policy": policy.as_dict(),
        "policy_source": {"steward": steward.as_dict(), "study_overrides": dict(overrides)},
        # The config's hash is of the study's definitions, not of data (cohort.output.config_hash).
        "study": {"name": m.get("study"), "config_sha256": CHECKSUM_PREFIX + grouped(m["study_config_sha256"]),
                  "reference_years": m.get("reference_years"), "conditions": m.get("conditions"),
                  "strata": list(study.strata)},
        "keys": {"project": m.get("project"), "project_key_id": _hex(m.get("project_key_id"))},
        "ledger": {"ledger_id": ledger_id, "earlier_releases": content.earlier_releases},
        "files": dict(sorted(files.items())),
        "tables": {name: _structure(lay, content) for name, lay in content.layouts.items()},
        "relations": content.relations,
        # What the counts mean (age bands, each condition's sources and age rule, all-cause or
        # specific care): an outside auditor rebuilds the domain relations from it.
        "definitions": study.manifest.get("definitions"),
    }


def _policy_line(policy: Policy, overrides: dict) -> str:
    zeros = "zeros published" if policy.publish_zeros else "zeros hidden"
    rounding = "no rounding" if policy.rounding is None else f"rounded to base {policy.rounding}"
    source = ("the steward's policy" if not overrides else
              "the steward's policy made stricter by the study (" + ", ".join(f"{k}={v}" for k, v in overrides.items()) + ")")
    return f"T = {policy.threshold}, protection margin {policy.margin:.0%}, {zeros}, {rounding}; {source}"


def summary(content: ReleaseContent, study: StudyFolder, *, release_id: str, created: str, policy: Policy,
            overrides: dict) -> str:
    """``summary.md`` for the output checker: what is shown, hidden and withheld, and why."""
    m = study.manifest
    lines = [
        f"# Release {release_id}",
        "",
        "Aggregates released under disclosure control (shared/spec/disclosure.md). For the output checker.",
        "",
        (f"- study: {m.get('study')} (config SHA-256 {grouped(m['study_config_sha256'])[:19]}...), "
        f"years {m.get('reference_years')}, strata {list(study.strata) or 'none'}"),
        f"- project: {m.get('project')} (key id {_hex(m.get('project_key_id'))})",
        f"- policy: {_policy_line(policy, overrides)}",
        f"- checked against {content.earlier_releases} earlier release(s) in the ledger",
        f"- created: {created}",
        "",
        "| table | rows | values shown | suppressed | below threshold | status |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name in content.layouts:
        if name in content.withheld:
            lines.append(f"| {name} | - | - | - | - | withheld |")
            continue
        counts = content.status_counts.get(name, {})
        lines.append(f"| {name} | {content.frames[name].height} | {counts.get('shown', 0)} | "
                     f"{counts.get('suppressed', 0)} | {counts.get('below-threshold', 0)} | released |")
    lines += ["", "## Withheld", ""]
    if content.withheld:
        lines += [f"- table `{name}`: {why}" for name, why in content.withheld.items()]
    if not content.withheld:
        lines.append("- nothing")
    lines += [
        "",
        "## How to read it",
        "",
        "- `suppressed`: hidden by disclosure control. A hidden count is a primary (1..T-1 persons, a",
        "  complement N - n of 1..T-1, a remainder of 1..T-1) or a secondary (hidden so that no primary",
        "  can be derived); the release does not say which, because either would narrow the hidden",
        "  value. Percentages, shares and changes are hidden with the counts they come from.",
        "- `below-threshold`: a percentage whose counts are shown but one is below T (e.g. 0 of N).",
        "- Events (contacts, admissions) are protected through the persons behind them.",
        "- Top lists show only code groups of at least T persons, ranked among themselves; the contacts",
        "  of the other groups are in the remainder (total contacts less those listed).",
        "- The engine's reason per hidden cell is in the steward's ledger record, not in the release.",
        "- Check this release independently: `pfl-audit release=<this folder>`.",
        "",
    ]
    return "\n".join(lines)


def write_manifest(folder: Path, data: dict) -> None:
    (folder / "manifest.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
