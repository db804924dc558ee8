"""Shared fixtures: generated extracts (once per session) and Hypothesis profiles.

Hypothesis profiles follow polars' practice: ``ci`` (small, derandomised) when CI is set,
``dev`` by default, ``large`` on request (HYPOTHESIS_PROFILE=large).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from executor_cases import _executors, executor_case, name_cluster_groups  # noqa: F401  (fixtures: issue 14's identity tests)

from extracts.generator.config import GeneratorConfig
from extracts.generator.run import GenerationResult, generate
from linkage.link import link
from pseudonymisation.keys import generate_key
from pseudonymisation.supplier import run_supplier_step
from pseudonymisation.ttp import run_ttp_step

settings.register_profile("ci", max_examples=60, derandomize=True, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=100, deadline=None)
settings.register_profile("large", max_examples=2000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

TINY = GeneratorConfig(preset="tiny", registered_patients=3000, practices=4, seed=7)
DEMO = GeneratorConfig(preset="demo", registered_patients=50_000, practices=12, seed=20230101)


@pytest.fixture(scope="session")
def tiny_extracts(tmp_path_factory: pytest.TempPathFactory) -> GenerationResult:
    return generate(TINY, tmp_path_factory.mktemp("tiny") / "extracts")


@pytest.fixture(scope="session")
def demo_extracts(tmp_path_factory: pytest.TempPathFactory) -> GenerationResult:
    return generate(DEMO, tmp_path_factory.mktemp("demo") / "extracts")


@pytest.fixture(scope="session")
def tiny_linked(tiny_extracts: GenerationResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny extracts after the supplier, TTP and linkage steps (the research layout)."""
    work = tmp_path_factory.mktemp("study_differential")
    network_key = generate_key(work / "keys" / "network.key", "network")
    ttp_key = generate_key(work / "keys" / "ttp.key", "ttp")
    for supplier in ("ehr", "claims"):
        run_supplier_step(tiny_extracts.out / supplier, supplier, network_key, work / supplier)
    run_ttp_step({s: work / s / "for_ttp" for s in ("ehr", "claims")}, ttp_key, "differential", work / "ttp",
                 expected_network_key_id=network_key.id)
    result = link({s: work / s / "for_research" for s in ("ehr", "claims")}, {s: work / "ttp" / s for s in ("ehr", "claims")},
                  work / "linked", project="differential")
    return result.out


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Generated data are made once per session; keep the expensive tests together.
    items.sort(key=lambda item: "demo_extracts" in getattr(item, "fixturenames", ()))
    name_cluster_groups(config, items)  # the Dask and Spark cases on one test worker


__all__ = ["DEMO", "TINY", "Path"]
