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


SPREAD = {"tests/adversarial/test_cli_hardening.py"}  # 287 commands (in process); its fixtures: a key, a folder of YAML


def group_shared_fixtures(items: list[pytest.Item]) -> None:
    """Tests that share an expensive fixture run on one test worker, which builds it once.

    ``./run tests`` runs two pytest-xdist workers, and each builds every module- or session-scoped
    fixture its tests use: spread over both, the tests of a module would build its module
    fixtures twice (``test_commands.py`` runs every command's user errors in one: tens of
    seconds). With ``--dist loadgroup`` the tests of one ``xdist_group`` go to one worker, so each
    module whose tests use a module- or session-scoped fixture of its own is made a group (tests
    already in a group, the Dask and Spark cases, keep theirs), and so are the tests of the demo
    preset's extracts. A module with tests in a group already (the cluster cases of the partitioned
    studies and stages) puts its other tests of those fixtures into that group: one worker builds
    the reference run the cluster cases compare with. ``SPREAD``: modules whose own fixtures are a few small files and whose tests
    are many commands, better spread over both workers.
    """
    groups = {item.nodeid.split("::")[0]: str(m.args[0]) for item in items for m in item.iter_markers("xdist_group")}
    for item in items:
        if item.get_closest_marker("xdist_group"):
            continue
        info = getattr(item, "_fixtureinfo", None)
        if info is None:
            continue
        module = item.nodeid.split("::")[0]
        if "demo_extracts" in info.names_closure:
            item.add_marker(pytest.mark.xdist_group("demo_extracts"))
        elif module not in SPREAD and any(d.scope in ("module", "session") and d.baseid == module
                                          for defs in info.name2fixturedefs.values() for d in defs):
            item.add_marker(pytest.mark.xdist_group(groups.get(module, module)))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # The longest tests first, so that no test worker ends the run alone on one of them (under
    # --dist loadgroup the groups go first, the largest first, then single tests in this order).
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
    group_shared_fixtures(items)
    name_cluster_groups(config, items)  # the groups (the Dask and Spark cases on one worker) in the node ids


__all__ = ["DEMO", "TINY", "Path"]
