"""Study schema 2 on the tiny generated population: the seed study is one instance of it.

``conf/study/seed_study_v2.yaml`` (schema 2) and ``conf/study/seed_study.yaml`` (schema 1, run by
today's engine ``cohort.study.run_study``) give the same tables, byte for byte as Parquet; so do the
other schema 1 studies converted on load. The converter's output of the seed file is the schema 2
seed study, and ``python -m cohort.convert`` prints it.
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml
from omegaconf import OmegaConf

from cohort.compile import run_compiled
from cohort.config import parse_study
from cohort.convert import load_study, to_schema2
from cohort.schema import parse_study_v2
from cohort.study import run_study
from extracts.codelists import load_catalogue

CONF = Path(__file__).resolve().parents[2] / "conf"
CATALOGUE = load_catalogue(CONF / "conditions" / "seed_study.yaml")


def _raw(name: str) -> dict[str, Any]:
    return OmegaConf.to_container(OmegaConf.load(CONF / "study" / f"{name}.yaml"), resolve=True)  # type: ignore[return-value]


def _bytes(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(("schema1", "schema2"), [("seed_study", "seed_study_v2"), ("seed_study", "seed_study"),
                                                  ("respiratory_cardio_by_age_sex", "respiratory_cardio_by_age_sex")])
def test_schema2_study_gives_todays_tables_byte_for_byte(tiny_linked: Path, schema1: str, schema2: str) -> None:
    today = run_study(tiny_linked, parse_study(_raw(schema1), CATALOGUE))
    compiled = run_compiled(tiny_linked, load_study(_raw(schema2), CATALOGUE))
    assert list(compiled) == list(today)
    for name, frame in today.items():
        assert _bytes(compiled[name]) == _bytes(frame), name
    assert today["prevalence"]["numerator"].sum() > 0  # the comparison is not between empty tables


def test_converted_seed_study_is_the_schema2_seed_study() -> None:
    assert parse_study_v2(to_schema2(_raw("seed_study")), CATALOGUE) == parse_study_v2(_raw("seed_study_v2"), CATALOGUE)


def test_convert_command_prints_schema2(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "cohort.convert", str(CONF / "study" / "seed_study.yaml")],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert parse_study_v2(yaml.safe_load(proc.stdout), CATALOGUE) == parse_study_v2(_raw("seed_study_v2"), CATALOGUE)
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nreference_years: [2019]\ndisciplines: {diabetes: [HA]}\nstrata: [shoe_size]\n")
    proc = subprocess.run([sys.executable, "-m", "cohort.convert", str(bad)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0  # conversion only rewrites; the checks run when the study is loaded
    with pytest.raises(Exception, match="strata"):
        load_study(yaml.safe_load(bad.read_text()), CATALOGUE)
    missing = subprocess.run([sys.executable, "-m", "cohort.convert", str(tmp_path / "nosuch.yaml")],
                             capture_output=True, text=True, check=False)
    assert missing.returncode == 2 and "not found" in missing.stderr and "Traceback" not in missing.stderr
