"""The executors the partitioned-execution identity tests run on (issue 14, item 3).

Each case is (executor name, K). A test that takes the ``executor_case`` fixture runs once per
case; the executor is opened once per test session (a process pool or a cluster is started once)
and closed at the end: a Dask ``LocalCluster`` with 2 workers and Spark ``local[2]``.

The cluster cases carry the ``xdist_group("clusters")`` mark: ``./run tests`` runs pytest-xdist
with ``--dist loadgroup``, so every cluster case runs on one test worker and each cluster starts
once per suite, not once per test worker (Spark's start costs tens of seconds on two cores).
pytest-xdist names the group in the test's node id (``...[dask-K4]@clusters``), which it can no
longer do since pytest 9.2 moved the node id: :func:`name_cluster_groups` (called from the
conftest's collection hook) does it where xdist did not.
The engines are installed by ``./run install`` (extras ``dask`` and ``spark``, and Java 17): where
one is missing a case is skipped with the reason, and in CI (CI set) it fails instead.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from execution import Executor, open_executor

CASES = [("local", 1), ("local", 8), ("processes", 4), ("dask", 4), ("spark", 4)]
CLUSTERS = ("dask", "spark")
_OPEN: dict[str, Executor] = {}


def _missing(name: str) -> str | None:
    """Why the engine of ``name`` cannot run here, or None."""
    if name == "dask" and importlib.util.find_spec("distributed") is None:
        return "dask[distributed] is not installed (./run install installs the dask extra)"
    if name == "spark":
        if importlib.util.find_spec("pyspark") is None:
            return "pyspark is not installed (./run install installs the spark extra)"
        java = shutil.which("java", path=os.path.join(os.environ["JAVA_HOME"], "bin")) \
            if os.environ.get("JAVA_HOME") else shutil.which("java")
        if java is None:
            return "Java is not installed (./run install installs openjdk-17-jre-headless)"
        said = subprocess.run([java, "-version"], capture_output=True, text=True, check=False).stderr
        major = re.search(r'version "(\d+)', said)
        if not major or int(major.group(1)) < 17:
            return "Spark needs Java 17 or later (./run install installs openjdk-17-jre-headless)"
    return None


def _executor(name: str) -> Executor:
    if name not in _OPEN:
        why = _missing(name)
        if why is not None:
            if os.environ.get("CI"):
                pytest.fail(f"executor {name}: {why}")
            pytest.skip(f"executor {name}: {why}")
        _OPEN[name] = open_executor(name, workers=2) if name != "local" else open_executor(name)
    return _OPEN[name]


@pytest.fixture(scope="session")
def _executors() -> Iterator[None]:
    yield
    for ex in _OPEN.values():
        ex.close()
    _OPEN.clear()


_PARAMS = [pytest.param((n, k), id=f"{n}-K{k}",
                        marks=[pytest.mark.xdist_group("clusters")] if n in CLUSTERS else [])
           for n, k in CASES]


def case_params(values: list[object], *, on_clusters: set[object]) -> list[object]:
    """``(value, executor case)`` for every value on every executor case, but only the values in
    ``on_clusters`` on the Dask and Spark cases: for ``parametrize(("value", "executor_case"), ...,
    indirect=["executor_case"])``, where a test's full matrix runs on the cheap executors and a
    subset that still covers what the engine does with it on each cluster."""
    unknown = on_clusters - set(values)
    if unknown:
        msg = f"cluster subset names values that are not run: {sorted(map(str, unknown))}"
        raise ValueError(msg)
    return [pytest.param(value, (n, k), id=f"{n}-K{k}-{value}",
                         marks=[pytest.mark.xdist_group("clusters")] if n in CLUSTERS else [])
            for n, k in CASES for value in values if n not in CLUSTERS or value in on_clusters]


def name_cluster_groups(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under ``--dist loadgroup``, ``<node id>@<group>`` for each item of an ``xdist_group``."""
    if not getattr(config.option, "loadgroup", False):
        return
    for item in items:
        groups = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                         for m in item.iter_markers("xdist_group")})
        if not groups or "@" in item.nodeid:
            continue
        grouped = f"{item.nodeid}@{'_'.join(groups)}"
        if hasattr(item, "_id"):  # pytest >= 9.2: a structured node id
            from _pytest.nodeid import coerce_node_id

            item._id = coerce_node_id(grouped)
        else:
            item._nodeid = grouped


@pytest.fixture(params=_PARAMS)
def executor_case(request: pytest.FixtureRequest, _executors: None) -> tuple[Executor, int]:
    name, k = request.param
    return _executor(name), k
