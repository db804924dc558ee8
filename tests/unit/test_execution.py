"""The executor contract (execution/): results in item order, partitions cover every row once."""

from __future__ import annotations

import re

import polars as pl
import pytest

from execution import LocalExecutor, Partition, ProcessExecutor, open_executor, partitions, person_partition


def _square(x: int) -> int:
    return x * x


@pytest.mark.parametrize("make", [LocalExecutor, lambda: ProcessExecutor(2)])
def test_map_returns_results_in_the_items_order(make) -> None:
    with make() as ex:
        assert ex.map(_square, [3, 1, 2, 5]) == [9, 1, 4, 25]


def test_an_unknown_executor_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="local"):
        open_executor("ray")


@pytest.mark.parametrize(("index", "count"), [(0, 0), (1, 1), (-1, 3), (3, 3)])
def test_a_partition_outside_its_count_is_refused(index: int, count: int) -> None:
    with pytest.raises(ValueError):
        Partition(index, count)


def test_person_partition_keeps_a_person_together_and_covers_every_row_once() -> None:
    frame = pl.DataFrame({
        "p2": [0, 1, 2, 3, 7, 7, None, None, 12],
        "patient_id": ["a", "b", "c", "d", "e", "f", "g", "g", "h"],
    })
    k = 4
    tagged = frame.with_columns(person_partition(k).alias("part"))
    assert tagged["part"].is_between(0, k - 1).all()
    assert tagged.group_by("p2").agg(pl.col("part").n_unique()).filter(pl.col("p2").is_not_null())["part"].max() == 1
    assert tagged.filter(pl.col("patient_id") == "g")["part"].n_unique() == 1
    assert [p.index for p in partitions(k)] == [0, 1, 2, 3]
    assert sum(tagged.filter(pl.col("part") == p.index).height for p in partitions(k)) == frame.height


def test_the_command_settings_open_the_named_executor_and_check_k() -> None:
    from execution.config import executor_from_config, partitions_from_config

    with executor_from_config({"executor": {"name": "processes", "workers": 2}}) as ex:
        assert ex.name == "processes" and ex.workers == 2
    assert executor_from_config({}).name == "local"
    assert partitions_from_config({"partitions": 8}) == 8
    for bad in (0, -1, True, "8", 1.5):
        with pytest.raises(ValueError, match="partitions"):
            partitions_from_config({"partitions": bad})


def test_importing_execution_loads_no_cluster_engine() -> None:
    """dask and spark are optional extras: their engine is imported only when chosen."""
    import subprocess
    import sys

    code = ("import sys, execution, execution.config; "
            "print(sorted(m for m in ('dask', 'distributed', 'pyspark') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
    assert {"local", "processes", "dask", "spark"} <= set(__import__("execution").EXECUTORS)


@pytest.mark.parametrize(("name", "options", "says"), [
    ("processes", {"address": "tcp://h:8786"}, "executor processes has no option address; it takes workers"),
    ("dask", {"master": "local[2]"}, "executor dask has no option master; it takes workers, address"),
    ("spark", {"address": "tcp://h:8786"}, "executor spark has no option address; it takes workers, master"),
    ("dask", {"address": "h:8786"}, "executor.address must be a scheduler address such as tls://"),
])
def test_an_executor_option_it_does_not_take_is_refused_before_anything_starts(
        name: str, options: dict, says: str) -> None:
    with pytest.raises(ValueError, match=re.escape(says)):
        open_executor(name, **options)
