"""The generator: deterministic, contract-conforming, and its ground truth tells the truth."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest

from conftest import TINY
from extracts.bsn import BsnStatus, bsn_status, normalise_bsn
from extracts.contract import CLAIMS, EHR
from extracts.errors import ConfigError, EngineError
from extracts.generator.config import DefectRates, config_from_mapping
from extracts.generator.run import GenerationResult, generate
from extracts.validation import validate_extract


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(f.relative_to(folder)): hashlib.sha256(f.read_bytes()).hexdigest()
        for f in sorted(folder.rglob("*.parquet"))
    }


def test_generator_same_seed_gives_byte_identical_extracts(tiny_extracts: GenerationResult, tmp_path: Path) -> None:
    again = generate(TINY, tmp_path / "again")
    assert _digest(again.out) == _digest(tiny_extracts.out)


def test_generator_other_seed_gives_other_extracts(tiny_extracts: GenerationResult, tmp_path: Path) -> None:
    other = generate(replace(TINY, seed=8), tmp_path / "other")
    assert _digest(other.out)["ehr/patients.parquet"] != _digest(tiny_extracts.out)["ehr/patients.parquet"]


def test_generator_chunking_keeps_every_id_unique(tmp_path: Path) -> None:
    small_chunks = generate(replace(TINY, chunk_persons=1_000), tmp_path / "chunks")
    patients = pl.read_parquet(small_chunks.out / "ehr" / "patients.parquet")
    claims = pl.read_parquet(small_chunks.out / "claims" / "claims.parquet", columns=["claim_id"])
    persons = pl.read_parquet(small_chunks.out / "truth" / "persons.parquet")
    assert patients["patient_id"].n_unique() == patients.height
    assert claims["claim_id"].n_unique() == claims.height
    assert persons["bsn"].n_unique() == persons.height  # true BSNs are distinct persons


def test_generated_extracts_match_the_contract_schema(tiny_extracts: GenerationResult) -> None:
    for supplier in (EHR, CLAIMS):
        for table in supplier.tables:
            schema = pl.read_parquet_schema(tiny_extracts.out / supplier.name / f"{table.name}.parquet")
            # v2: every identifier, the optional given name, street and city included.
            assert dict(schema) == dict(table.schema), (supplier.name, table.name)


def test_generated_extracts_pass_validation_with_quarantine_within_tolerance(
    tiny_extracts: GenerationResult,
) -> None:
    for supplier in ("ehr", "claims"):
        result = validate_extract(tiny_extracts.out / supplier, supplier)
        for table, rows_in in result.row_counts.items():
            assert result.clean_rows(table) + result.quarantined(table) == rows_in


def test_truth_maps_every_record_to_a_person(tiny_extracts: GenerationResult) -> None:
    out = tiny_extracts.out
    patients = pl.read_parquet(out / "ehr" / "patients.parquet", columns=["patient_id"])
    truth = pl.read_parquet(out / "truth" / "patients.parquet")
    assert patients.join(truth, on="patient_id", how="anti").height == 0
    claims = pl.read_parquet(out / "claims" / "claims.parquet", columns=["claim_id"])
    truth_claims = pl.read_parquet(out / "truth" / "claims.parquet")
    assert claims.join(truth_claims, on="claim_id", how="anti").height == 0
    insured = pl.read_parquet(out / "claims" / "insured.parquet")
    assert insured.height == pl.read_parquet(out / "truth" / "insured.parquet").height


def test_truth_states_exactly_the_injected_bsn_defects(tiny_extracts: GenerationResult) -> None:
    out = tiny_extracts.out
    patients = pl.read_parquet(out / "ehr" / "patients.parquet").join(
        pl.read_parquet(out / "truth" / "patients.parquet"), on="patient_id"
    )
    status = patients.with_columns(status=bsn_status(normalise_bsn(pl.col("bsn"))))
    # Every record the truth calls clean, shared or odd-format carries a valid BSN; the others don't.
    valid = status.filter(pl.col("status") == BsnStatus.VALID.value)
    assert set(valid["bsn_defect"].unique()) <= {"none", "shared", "odd_format"}
    assert status.filter(pl.col("bsn_defect") == "missing")["status"].unique().to_list() == [BsnStatus.MISSING.value]
    assert status.filter(pl.col("bsn_defect") == "check_digit")["status"].unique().to_list() == [
        BsnStatus.CHECK_DIGIT.value
    ]
    # Clean records carry the person's own BSN.
    persons = pl.read_parquet(out / "truth" / "persons.parquet", columns=["person", "bsn"])
    clean = status.filter(pl.col("bsn_defect") == "none").join(persons, on="person", suffix="_true")
    assert (clean["bsn"] == clean["bsn_true"]).all()


def test_defect_counts_follow_configured_rates(tmp_path: Path) -> None:
    rates = DefectRates(bsn_missing=0.05, bsn_check_digit=0.0, bsn_malformed=0.0, bsn_shared=0.0,
                        bsn_odd_format=0.0, double_record=0.0)
    result = generate(replace(TINY, defects=rates), tmp_path / "rates")
    patients = pl.read_parquet(result.out / "ehr" / "patients.parquet")
    share = patients["bsn"].null_count() / patients.height
    assert 0.04 < share < 0.06
    assert result.defects["ehr_bsn_missing"] == patients["bsn"].null_count()
    assert result.defects.get("ehr_bsn_check_digit", 0) == 0


def test_defects_off_gives_clean_bsns(tmp_path: Path) -> None:
    zero = {name: 0.0 for name in DefectRates.__dataclass_fields__ if name != "incomplete_insurer_years"}
    result = generate(replace(TINY, defects=DefectRates(**zero)), tmp_path / "clean")
    patients = pl.read_parquet(result.out / "ehr" / "patients.parquet")
    status = patients.select(bsn_status(normalise_bsn(pl.col("bsn")))).to_series()
    assert (status == BsnStatus.VALID.value).all()
    assert patients["bsn"].n_unique() == patients.height


def test_csv_output_reads_back_through_the_validator(tmp_path: Path) -> None:
    result = generate(replace(TINY, output_format="csv", registered_patients=500, practices=2), tmp_path / "csv")
    assert (result.out / "ehr" / "patients.csv").is_file()
    validated = validate_extract(result.out / "ehr", "ehr")
    assert validated.row_counts["patients"] == result.rows["ehr/patients"]


def test_existing_output_is_not_overwritten_unless_asked(tiny_extracts: GenerationResult) -> None:
    with pytest.raises(EngineError, match="exists"):
        generate(TINY, tiny_extracts.out)


def test_failed_generation_leaves_no_output_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import extracts.generator.blocks as blocks

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk gone")

    monkeypatch.setattr(blocks, "draw_block", boom)
    with pytest.raises(RuntimeError):
        generate(TINY, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not any("out" in p.name for p in tmp_path.iterdir())  # nor staging, nor block parts


def test_manifest_records_preset_seed_and_rows(tiny_extracts: GenerationResult) -> None:
    manifest = json.loads((tiny_extracts.out / "manifest.json").read_text())
    assert manifest["preset"] == "tiny"
    assert manifest["seed"] == TINY.seed
    assert manifest["rows"]["ehr/patients"] == pl.read_parquet(tiny_extracts.out / "ehr" / "patients.parquet").height


def test_truth_is_kept_beside_the_extracts_not_inside(tiny_extracts: GenerationResult) -> None:
    truth_columns = {"person", "bsn_defect", "record", "kind"}
    for supplier in (EHR, CLAIMS):
        for table in supplier.tables:
            columns = set(pl.read_parquet_schema(tiny_extracts.out / supplier.name / f"{table.name}.parquet"))
            assert not columns & truth_columns


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"preset": "x", "registered_patients": 10, "practices": 1}, "registered_patients"),
        ({"preset": "x", "registered_patients": 1000, "practices": 500}, "practices"),
        ({"preset": "x", "registered_patients": 1000, "practices": 2, "output_format": "xlsx"}, "output_format"),
        ({"preset": "x", "registered_patients": 1000, "practices": 2, "defects": {"bsn_missing": 2}}, "bsn_missing"),
        ({"preset": "x", "registered_patients": 1000, "practices": 2, "defects": {"typo": 0.1}}, "typo"),
        ({"preset": "x", "registered_patients": 1000, "practices": 2, "colour": "red"}, "colour"),
    ],
)
def test_invalid_generator_config_names_the_key(raw: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        config_from_mapping(raw)
