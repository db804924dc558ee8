"""The executors the partitioned-execution identity tests run on (issue 14, item 3).

Each case is (executor name, K). A test that takes the ``executor_case`` fixture runs once per
case; the executor is opened once per test session (a process pool or a cluster is started once)
and closed at the end.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from execution import Executor, open_executor

CASES = [("local", 1), ("local", 8), ("processes", 4)]
_OPEN: dict[str, Executor] = {}


def _executor(name: str) -> Executor:
    if name not in _OPEN:
        _OPEN[name] = open_executor(name, workers=2) if name != "local" else open_executor(name)
    return _OPEN[name]


@pytest.fixture(scope="session")
def _executors() -> Iterator[None]:
    yield
    for ex in _OPEN.values():
        ex.close()
    _OPEN.clear()


@pytest.fixture(params=CASES, ids=[f"{n}-K{k}" for n, k in CASES])
def executor_case(request: pytest.FixtureRequest, _executors: None) -> tuple[Executor, int]:
    name, k = request.param
    return _executor(name), k
