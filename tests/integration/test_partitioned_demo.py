"""Issue 14, done when: the demo on Dask and on Spark, in partitions, releases what the default
demo releases (every released table equal, cell by cell; the audit passes)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from conftest import TINY
from executor_cases import _executor
from omegaconf import OmegaConf

from cohort.config import parse_study
from extracts.codelists import load_catalogue
from extracts.generator.run import DEFAULT_CATALOGUE
from pipeline.demo import run_demo

ROOT = Path(__file__).resolve().parents[2]


def _study():  # noqa: ANN202
    raw = OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "study" / "seed_study.yaml"))
    return parse_study(raw, load_catalogue(ROOT / "conf" / "conditions" / "seed_study.yaml"))  # type: ignore[arg-type]


def _audited(result) -> str:  # noqa: ANN001
    (audit,) = [s for s in result.stages if s.name.startswith("audit")]
    return audit.summary


def _released(work: Path) -> dict[str, pl.DataFrame]:
    return {p.name: pl.read_parquet(p) for p in sorted((work / "release").glob("*.parquet"))}


@pytest.fixture(scope="module")
def default_release(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pl.DataFrame]:
    work = tmp_path_factory.mktemp("demo-default") / "work"
    result = run_demo(TINY, load_catalogue(DEFAULT_CATALOGUE), work, max_quarantine_share=0.01, study=_study())
    assert "PASS" in _audited(result), _audited(result)
    return _released(work)


@pytest.mark.parametrize("name", [pytest.param("dask", marks=pytest.mark.xdist_group("clusters")),
                                  pytest.param("spark", marks=pytest.mark.xdist_group("clusters"))])
def test_the_demo_in_partitions_on_a_cluster_releases_what_the_default_demo_releases(
        name: str, default_release: dict[str, pl.DataFrame], tmp_path: Path, _executors: None) -> None:
    work = tmp_path / "work"
    result = run_demo(TINY, load_catalogue(DEFAULT_CATALOGUE), work, max_quarantine_share=0.01, study=_study(),
                      executor=_executor(name), partitions=4)
    assert "PASS" in _audited(result), _audited(result)
    got = _released(work)
    assert sorted(got) == sorted(default_release) and len(got) >= 7
    for table, frame in default_release.items():
        assert got[table].equals(frame, null_equal=True), f"{table} differs on {name} with K = 4"
