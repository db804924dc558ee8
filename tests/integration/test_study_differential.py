"""Differential test: the engine's study (polars) against an independent DuckDB SQL reference.

The tiny generated extracts go through the real supplier, TTP and linkage steps; then
``cohort.study.run_study`` and ``tests/reference/duckdb_study.run_reference`` compute the six study
tables from the same linked layout and configuration, and every table must be identical (integers
exactly, shares to 1e-12). Two configurations are compared: the seed study, and a variant with
stricter practice-sufficiency thresholds (so that X6 excludes practices), condition-specific
dietetics, a shorter top list and an extra reference year.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from omegaconf import OmegaConf
from polars.testing import assert_frame_equal

from cohort.config import StudyConfig, parse_study
from extracts.codelists import load_catalogue
from reference.duckdb_study import KEYS, SCHEMAS, run_reference

CONF = Path(__file__).resolve().parents[2] / "conf"


def _seed_raw() -> dict[str, Any]:
    return OmegaConf.to_container(OmegaConf.load(CONF / "study" / "seed_study.yaml"))  # type: ignore[return-value]


def _variant_raw() -> dict[str, Any]:
    raw = _seed_raw()
    raw.update(
        name="differential_variant",
        reference_years=[2019, 2021, 2023],
        dietetics_all_cause=False,
        # On the tiny data these exclude some practices by size and by ICPC share, never all.
        practice_sufficiency={"min_patients": 520, "min_weeks": 52, "min_icpc_share": 0.90},
        top_n=5,
        acsc={"years": [2021], "codes": raw["acsc"]["codes"]},
    )
    return raw


CONFIGS = {"seed": _seed_raw, "variant": _variant_raw}


def _config(name: str) -> StudyConfig:
    return parse_study(CONFIGS[name](), load_catalogue(CONF / "conditions" / "seed_study.yaml"))


@pytest.fixture(scope="session")
def reference_tables(tiny_linked: Path) -> dict[str, dict[str, pl.DataFrame]]:
    return {name: run_reference(tiny_linked, _config(name)) for name in CONFIGS}


@pytest.fixture(scope="session")
def engine_tables(tiny_linked: Path) -> dict[str, dict[str, pl.DataFrame]]:
    if importlib.util.find_spec("cohort.study") is None:
        pytest.skip("cohort.study is not implemented yet: nothing to compare the DuckDB reference with")
    run_study = importlib.import_module("cohort.study").run_study  # import errors inside the module fail loudly
    return {name: run_study(tiny_linked, _config(name)) for name in CONFIGS}


def _sorted(frame: pl.DataFrame, table: str) -> pl.DataFrame:
    return frame.sort(list(KEYS[table]))


def test_reference_is_internally_consistent(reference_tables: dict[str, dict[str, pl.DataFrame]]) -> None:
    """The reference's own invariants (so a failing comparison is not the reference's fault)."""
    assert (reference_tables["seed"]["prevalence"]["denominator"] > 1000).all()
    for tables in reference_tables.values():
        for table, frame in tables.items():
            assert frame.schema == pl.Schema(SCHEMAS[table]), table
        attrition, prevalence = tables["attrition"], tables["prevalence"]
        final = attrition.filter(pl.col("step") == "X7").select("year", "condition", "after")
        merged = prevalence.join(final, on=["year", "condition"], how="left")
        assert (merged["numerator"] == merged["after"]).all(), "attrition chain must end at the numerator"
        everyone = final.filter(pl.col("condition") == "all").join(prevalence, on="year")
        assert (everyone["after"] == everyone["denominator"]).all(), "'all' chain must end at the denominator"
        chain = attrition.filter(pl.col("step") != "base")
        assert (chain["after"] == chain["before"] - chain["excluded"]).all()
        assert (prevalence["denominator"] > 0).all(), "every reference year keeps a study population"
        top = tables["top"]
        assert (top["share"] <= 1).all() and (top["contacts"] <= top["total_contacts"]).all()


@pytest.mark.parametrize("config_name", list(CONFIGS))
@pytest.mark.parametrize("table", list(SCHEMAS))
def test_engine_matches_reference(table: str, config_name: str,
                                  reference_tables: dict[str, dict[str, pl.DataFrame]],
                                  engine_tables: dict[str, dict[str, pl.DataFrame]]) -> None:
    expected = reference_tables[config_name][table]
    got = engine_tables[config_name]
    assert table in got, f"run_study returned no {table!r} table (got {sorted(got)})"
    actual = got[table]
    assert actual.columns == expected.columns, f"{table}: columns {actual.columns} != {expected.columns}"
    # Integers are compared exactly (tolerances apply to float columns only): only `share` is float.
    assert_frame_equal(_sorted(actual, table), _sorted(expected, table), check_dtypes=False,
                       check_exact=False, rel_tol=0, abs_tol=1e-12)
