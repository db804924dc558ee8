"""The auditor's side-channel check (``audit.channels``, issue 11.1).

A release made by the code before the fix (``tests/fixtures/releases/input-hashes``) published
the SHA-256 of every study table: the audit fails it. A release of today's engine passes. Each
other channel is made by editing a good release (checksums redone, so only the channel is wrong).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
from study_builder import write_study

from audit import audit_release
from disclosure import Policy
from release.ledger import create_ledger
from release.make import make_release
from release.public_ids import checksum

FIXTURES = Path(__file__).parents[1] / "fixtures" / "releases"


def blocking(folder: Path, check: str) -> list:
    return [f for f in audit_release(folder).findings if f.check == check and not f.advisory]


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("channels")
    study = write_study(root / "study", [3, 40], strata={"sex": ["F", "M"]}, referred=4)
    make_release(study, root / "release", ledger=create_ledger(root / "ledger", Policy()).path)
    return root / "release"


def edited(good: Path, target: Path, **manifest_fields: object) -> Path:
    shutil.copytree(good, target)
    manifest = json.loads((target / "manifest.json").read_text())
    manifest |= manifest_fields
    (target / "manifest.json").write_text(json.dumps(manifest))
    return target


def resign(folder: Path, names: list[str]) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"] |= {name: checksum(folder / name) for name in names}
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_a_release_made_before_the_fix_fails_for_the_study_tables_hashes() -> None:
    findings = blocking(FIXTURES / "input-hashes", "channel")
    cells = {c for f in findings for c in f.cells}
    assert "inputs.study_manifest_sha256" in cells
    assert {f"inputs.files.{t}.parquet" for t in ("prevalence", "care_use", "referrals")} <= cells
    assert not audit_release(FIXTURES / "input-hashes").passed
    advisory = [f for f in audit_release(FIXTURES / "input-hashes").findings if f.check == "checksum-format"]
    assert advisory and all(f.advisory for f in advisory)


def test_a_release_of_the_fixed_engine_has_no_channel_and_passes(good: Path) -> None:
    report = audit_release(good)
    assert report.passed, [f for f in report.findings if not f.advisory]
    assert not [f for f in report.findings if f.check in ("channel", "checksum-format", "parquet-statistics",
                                                           "parquet-metadata")]


@pytest.mark.parametrize("field", [
    {"inputs": {"files": {"x.parquet": hashlib.sha256(b"x").hexdigest()}}},
    {"provenance": "sha256:" + "-".join(["0a1b"] * 16)},
    {"note": "made from study 3f9c2a1b77e0d4c5"},
    {"sizes": {"prevalence.parquet": 2043}},
    {"study_bytes": 12},
], ids=["bare-hex-of-another-file", "grouped-checksum-elsewhere", "hex-run-in-text", "size-field", "bytes-field"])
def test_a_manifest_field_with_a_digest_or_size_of_something_else_fails(good: Path, tmp_path: Path,
                                                                        field: dict) -> None:
    assert blocking(edited(good, tmp_path / "r", **field), "channel")


def test_a_withheld_tables_entry_with_a_count_fails(good: Path, tmp_path: Path) -> None:
    manifest = json.loads((good / "manifest.json").read_text())
    tables = {**manifest["tables"], "acsc": {"status": "withheld", "reason": "no safe pattern", "rows": 7}}
    folder = edited(good, tmp_path / "r", tables=tables)
    (folder / "acsc.csv").unlink()
    (folder / "acsc.parquet").unlink()
    listed = json.loads((folder / "manifest.json").read_text())
    listed["files"] = {n: d for n, d in listed["files"].items() if not n.startswith("acsc.")}
    (folder / "manifest.json").write_text(json.dumps(listed))
    assert [f.cells for f in blocking(folder, "channel")] == [("acsc",)]


def test_a_digest_in_the_summary_that_is_not_of_the_release_fails(good: Path, tmp_path: Path) -> None:
    folder = edited(good, tmp_path / "r")
    with (folder / "summary.md").open("a") as summary:
        summary.write(f"\n- study folder: {hashlib.sha256(b'study').hexdigest()[:20]}\n")
    resign(folder, ["summary.md"])
    assert [f.cells for f in blocking(folder, "channel")] == [("summary.md",)]


def test_the_config_hash_ledger_id_and_release_id_are_not_channels(good: Path, tmp_path: Path) -> None:
    manifest = json.loads((good / "manifest.json").read_text())
    assert manifest["study"]["config_sha256"] and manifest["ledger"]["ledger_id"]
    # The checksum of a released file, repeated elsewhere, tells nothing the file does not.
    again = edited(good, tmp_path / "r", copy=manifest["files"]["prevalence.csv"])
    assert not blocking(again, "channel")


def test_parquet_statistics_of_a_column_with_hidden_cells_fail(good: Path, tmp_path: Path) -> None:
    folder = edited(good, tmp_path / "r")
    for table in ("prevalence", "attrition"):  # prevalence hides numerators; attrition hides nothing
        pl.read_parquet(folder / f"{table}.parquet").write_parquet(folder / f"{table}.parquet", statistics=True)
    resign(folder, ["prevalence.parquet", "attrition.parquet"])
    findings = blocking(folder, "parquet-statistics")
    assert [f.table for f in findings] == ["prevalence"]
    assert "numerator" in findings[0].cells and "denominator" not in findings[0].cells


def test_parquet_footer_metadata_the_format_does_not_define_fails(good: Path, tmp_path: Path) -> None:
    folder = edited(good, tmp_path / "r")
    table = pq.read_table(folder / "referrals.parquet")
    pq.write_table(table.replace_schema_metadata({**(table.schema.metadata or {}), b"source_sha256": b"0" * 64}),
                   folder / "referrals.parquet", write_statistics=False)
    resign(folder, ["referrals.parquet"])
    assert [f.table for f in blocking(folder, "parquet-metadata")] == ["referrals"]


def test_bare_hex_checksums_are_read_and_noted_but_do_not_fail(good: Path, tmp_path: Path) -> None:
    folder = edited(good, tmp_path / "r")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"] = {n: hashlib.sha256((folder / n).read_bytes()).hexdigest() for n in manifest["files"]}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    report = audit_release(folder)
    assert report.passed
    assert [f.advisory for f in report.findings if f.check == "checksum-format"] == [True]
    assert not [f for f in report.findings if f.check == "checksum"]


def test_a_changed_file_still_fails_its_grouped_checksum(good: Path, tmp_path: Path) -> None:
    folder = edited(good, tmp_path / "r")
    (folder / "referrals.csv").write_text((folder / "referrals.csv").read_text() + "\n")
    assert blocking(folder, "checksum")
