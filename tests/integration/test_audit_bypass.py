"""The audit cannot be bypassed through the manifest (issue 10, item 3).

A real release (the engine's, of the spec's region x sex study) is tampered with in each way a
manifest can hide a table from the auditor; the checksums are recomputed every time, so only the
rule that every file of the folder is a file of an audited table, read by content, can catch it.
Each must fail ``pfl-audit`` (exit 1) with a reason that names the rule.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import polars as pl
import pytest
from study_builder import write_study

from audit.__main__ import main as audit_main
from audit.release import _sha256
from disclosure import Policy
from release.ledger import create_ledger
from release.make import make_release

REGION_SEX = {("A", "M"): 18, ("A", "F"): 2, ("B", "M"): 14, ("B", "F"): 19,
              ("C", "M"): 12, ("C", "F"): 10, ("D", "M"): 11, ("D", "F"): 14}  # fmt: skip
STRATA = {"region": list("ABCD"), "sex": ["M", "F"]}


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bypass")
    study = write_study(root / "study", REGION_SEX, strata=STRATA)
    make_release(study, root / "release", ledger=create_ledger(root / "ledger", Policy()).path)
    return root / "release"


def audit(folder: Path, report: Path) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            audit_main([f"release={folder}", f"report={report}"])
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, out.getvalue()


def manifest_of(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())


def save(folder: Path, manifest: dict) -> None:
    """Write the manifest back with every file's checksum recomputed (consistent, as an insider would)."""
    names = [p.name for p in folder.iterdir() if p.name != "manifest.json"]
    manifest["files"] = {n: _sha256(folder / n) for n in sorted(set(manifest["files"]) & set(names))} | {
        n: _sha256(folder / n) for n in manifest.get("_list", [])}
    manifest.pop("_list", None)
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))


def unprotect(folder: Path, table: str = "prevalence") -> None:
    """Show every hidden count of ``table`` (1..9 included) in both its files."""
    frame = pl.read_parquet(folder / f"{table}.parquet")
    status = [c for c in frame.columns if c.endswith("_status")]
    frame = frame.with_columns(*(pl.col(c).fill_null(2) for c in ("numerator", "denominator")),
                               *(pl.lit("").alias(c) for c in status if c != "percentage_status"))
    frame.write_parquet(folder / f"{table}.parquet")
    frame.write_csv(folder / f"{table}.csv")


def drop_table(folder: Path) -> None:
    unprotect(folder)
    m = manifest_of(folder)
    del m["tables"]["prevalence"]
    save(folder, m)


def withhold_table(folder: Path) -> None:
    unprotect(folder)
    m = manifest_of(folder)
    m["tables"]["prevalence"] |= {"status": "withheld", "reason": "no safe pattern"}
    save(folder, m)


def listed_copy(folder: Path) -> None:
    raw = folder.parent / "raw"
    shutil.copytree(folder, raw)
    unprotect(raw)
    shutil.copy(raw / "prevalence.parquet", folder / "prevalence_raw.parquet")
    m = manifest_of(folder)
    m["_list"] = ["prevalence_raw.parquet"]
    save(folder, m)


def renamed_data(folder: Path) -> None:
    shutil.copy(folder / "acsc.csv", folder / "notes.txt")
    m = manifest_of(folder)
    m["_list"] = ["notes.txt"]
    save(folder, m)


def named_twice(folder: Path) -> None:
    m = manifest_of(folder)
    m["tables"]["prevalence_again"] = m["tables"]["prevalence"]
    save(folder, m)


def key_twice(folder: Path) -> None:
    unprotect(folder)
    m = manifest_of(folder)
    save(folder, m)
    text = (folder / "manifest.json").read_text()
    entry = json.dumps(m["tables"]["prevalence"])
    # The first entry (audited by a reader that keeps the first) is the unprotected table; JSON
    # keeps the last, a withheld one: the table would be skipped.
    text = text.replace('"tables": {', '"tables": {"prevalence": ' + entry + ', ', 1)
    m2 = json.loads(text)
    assert m2["tables"]["prevalence"] == m["tables"]["prevalence"]
    text = text.replace('"relations"', '"tables": ' + json.dumps(
        {**m["tables"], "prevalence": {"status": "withheld", "reason": "x"}}) + ', "relations"', 1)
    (folder / "manifest.json").write_text(text)


def parquet_differs(folder: Path) -> None:
    frame = pl.read_parquet(folder / "referrals.parquet")
    frame.with_columns(pl.col("N") + 1).write_parquet(folder / "referrals.parquet")
    save(folder, manifest_of(folder))


def csv_extra_column(folder: Path) -> None:
    frame = pl.read_parquet(folder / "referrals.parquet").with_columns(pl.lit("x").alias("note"))
    frame.write_csv(folder / "referrals.csv")
    save(folder, manifest_of(folder))


def values_as_coordinates(folder: Path) -> None:
    unprotect(folder)
    m = manifest_of(folder)
    entry = m["tables"]["prevalence"]
    entry["coordinates"] += ["numerator", "numerator_status", "denominator", "denominator_status"]
    entry["counts"] = {}
    save(folder, m)


def count_without_quantity(folder: Path) -> None:
    m = manifest_of(folder)
    del m["tables"]["acsc"]["counts"]["persons"]["quantity"]
    save(folder, m)


def _show_secondaries(folder: Path) -> None:
    """Show the hidden prevalence counts of 10 or more (the secondaries) with their true values."""
    study = folder.parent / "study"  # the study the release was made of (its true values)
    truth = {r["region"] + r["sex"]: r["numerator"]
             for r in pl.read_parquet(study / "prevalence.parquet").iter_rows(named=True)}
    frame = pl.read_parquet(folder / "prevalence.parquet")
    rows = []
    for row in frame.iter_rows(named=True):
        value = truth.get(f"{row['region']}{row['sex']}")
        if row["numerator_status"] and value is not None and value >= 10:
            row = {**row, "numerator": value, "numerator_status": ""}
        rows.append(row)
    frame = pl.DataFrame(rows, schema=frame.schema)
    frame.write_parquet(folder / "prevalence.parquet")
    frame.write_csv(folder / "prevalence.csv")


def margins_dropped(folder: Path) -> None:
    _show_secondaries(folder)  # A-F = A - A-M, once the margin is known
    m = manifest_of(folder)
    m["relations"] = [r for r in m["relations"] if r["type"] != "margin"]
    save(folder, m)


def relations_dropped(folder: Path) -> None:
    _show_secondaries(folder)
    m = manifest_of(folder)
    m["relations"] = []
    save(folder, m)


def part_of_dropped(folder: Path) -> None:
    m = manifest_of(folder)
    m["relations"] = [r for r in m["relations"] if r.get("part") != "prevalent"]
    save(folder, m)


CASES = [
    pytest.param(margins_dropped, "relation", "dimension=sex", id="margin-relations-dropped"),
    pytest.param(relations_dropped, "relation", "type=chain", id="all-relations-dropped"),
    pytest.param(part_of_dropped, "relation", "part=prevalent", id="part-of-dropped"),
    pytest.param(drop_table, "unaudited-file", "no table of the manifest names it", id="table-dropped-from-manifest"),
    pytest.param(withhold_table, "unaudited-file", "calls withheld", id="table-marked-withheld-files-kept"),
    pytest.param(listed_copy, "unaudited-file", "prevalence_raw.parquet", id="listed-file-of-no-table"),
    pytest.param(renamed_data, "unaudited-file", "notes.txt", id="data-file-under-another-name"),
    pytest.param(named_twice, "listed-twice", "prevalence.parquet", id="one-table-named-twice"),
    pytest.param(key_twice, "listed-twice", "tables", id="manifest-key-twice"),
    pytest.param(parquet_differs, "csv-parquet", "differ", id="parquet-differs-from-csv"),
    pytest.param(csv_extra_column, "csv-parquet", "only in the csv: ['note']", id="csv-extra-column"),
    pytest.param(values_as_coordinates, "structure", "counts lacks", id="values-declared-coordinates"),
    pytest.param(count_without_quantity, "structure", "without its quantity", id="count-without-quantity"),
]


@pytest.mark.parametrize(("tamper", "check", "says"), CASES)
def test_a_tampered_release_with_consistent_checksums_fails_the_audit(made, tmp_path, tamper, check, says):
    folder = tmp_path / "release"
    shutil.copytree(made, folder)
    shutil.copytree(made.parent / "study", tmp_path / "study")
    tamper(folder)
    code, text = audit(folder, tmp_path / "audit.json")
    assert code == 1, text
    assert "verdict: FAIL" in text and "Traceback" not in text
    report = json.loads((tmp_path / "audit.json").read_text())
    found = [f for f in report["findings"] if f["check"] == check and not f["advisory"]]
    assert found, text
    assert any(says.lower() in (f["message"] + " " + " ".join(f["cells"])).lower() for f in found), found
    assert "checksum" not in {f["check"] for f in report["findings"]}  # only the new rule catches it


def test_the_untampered_release_passes(made, tmp_path):
    code, text = audit(made, tmp_path / "audit.json")
    assert code == 0, text
