"""The executor contract on every executor (issue 14, item 2): local, processes, Dask, Spark.

Each test takes the ``executor_case`` fixture (tests/executor_cases.py), so it runs in process
(K = 1 and 8), on a local process pool, on a Dask ``LocalCluster`` with 2 workers and on Spark
``local[2]``, each cluster started once per test session. The partition functions are module
functions of tests/partition_tasks.py, imported by name on the workers as the engine's are.
"""

from __future__ import annotations

import hashlib
import hmac
import pickle
from pathlib import Path

import polars as pl
import pytest
from partition_tasks import keyed_digest, refuse_two, slow_first, square, summarise_partition

from execution import Executor

KEY = hashlib.sha256(b"pfl executor contract test key").digest()  # fixed: the same on every run


def _partition_files(folder: Path, k: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(k):
        frame = pl.DataFrame({"p2": [i * 10 + j % 3 for j in range(30)], "amount": [j + i for j in range(30)]})
        files.append(folder / f"part-{i:03d}.parquet")
        frame.write_parquet(files[-1])
    return files


def test_results_come_back_in_the_items_order(executor_case: tuple[Executor, int]) -> None:
    ex, k = executor_case
    items = list(range(max(k, 4)))
    assert ex.map(slow_first, items) == items
    assert ex.map(square, [3, 1, 2, 5]) == [9, 1, 4, 25]
    assert ex.map(square, []) == []


def test_a_polars_plan_runs_over_the_partition_files(executor_case: tuple[Executor, int],
                                                     tmp_path: Path) -> None:
    ex, k = executor_case
    files = _partition_files(tmp_path / "in", k)
    out = tmp_path / "out"
    out.mkdir()
    got = ex.map(summarise_partition, [(str(f), str(out)) for f in files])
    expected = [(3, int(pl.read_parquet(f)["amount"].sum())) for f in files]
    assert got == expected
    written = pl.concat([pl.read_parquet(out / f"{f.stem}.totals.parquet") for f in files])
    whole = (pl.concat([pl.read_parquet(f) for f in files]).group_by("p2")
             .agg(pl.col("amount").sum(), pl.len().alias("lines")).sort("p2"))
    assert written.sort("p2").equals(whole)


def test_an_exception_in_a_task_is_raised_on_the_driver_as_itself(executor_case: tuple[Executor, int]) -> None:
    ex, _ = executor_case
    with pytest.raises(ValueError) as raised:
        ex.map(refuse_two, [0, 1, 2, 3])
    assert str(raised.value) == "partition 2 refused: no rows for practice P002"
    assert f"partition 3 of 4, on the {ex.name} executor" in " ".join(getattr(raised.value, "__notes__", []))
    assert ex.map(square, [2]) == [4]  # the executor is still usable afterwards


def test_a_key_reaches_the_task_by_path_only(executor_case: tuple[Executor, int], tmp_path: Path) -> None:
    ex, k = executor_case
    key_file = tmp_path / "network.key"
    key_file.write_bytes(KEY)
    files = _partition_files(tmp_path / "in", k)
    items = [(str(f), str(key_file)) for f in files]
    arguments = pickle.dumps(items)
    assert KEY not in arguments and KEY.hex().encode() not in arguments
    assert ex.map(keyed_digest, items) == [hmac.new(KEY, f.read_bytes(), hashlib.sha256).hexdigest()
                                           for f in files]


@pytest.mark.parametrize("item", [KEY, bytearray(KEY), (Path("/in"), KEY), {"key": memoryview(KEY)},
                                  [("x", (1, KEY))]], ids=["bytes", "bytearray", "tuple", "dict", "nested"])
def test_a_task_argument_holding_bytes_is_refused_before_anything_runs(
        executor_case: tuple[Executor, int], item: object) -> None:
    ex, _ = executor_case
    with pytest.raises(TypeError, match="by path or env:NAME") as raised:
        ex.map(square, [1, item])
    assert KEY.hex() not in str(raised.value) and repr(KEY) not in str(raised.value)


def test_a_cluster_listens_and_talks_on_this_machine_only(executor_case: tuple[Executor, int]) -> None:
    """No telemetry, no web UI open to the network: every socket of the executor's processes is local."""
    ex, _ = executor_case
    psutil = pytest.importorskip("psutil")
    assert ex.map(square, [1, 2, 3]) == [1, 4, 9]
    me = psutil.Process()
    processes = [me, *me.children(recursive=True)]
    sockets = []
    for process in processes:
        try:
            sockets += process.net_connections(kind="inet")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    local = ("127.", "::1", "::ffff:127.")
    outside = [(s.laddr, s.raddr, s.status) for s in sockets
               if (s.raddr and not s.raddr.ip.startswith(local))
               or (s.status == psutil.CONN_LISTEN and not s.laddr.ip.startswith(local))]
    assert outside == []
    if ex.name == "spark":
        conf = ex._session.sparkContext.getConf()
        assert conf.get("spark.ui.enabled") == "false" and ex._session.sparkContext.uiWebUrl is None
    if ex.name == "dask":  # the scheduler's HTTP server serves nothing: no dashboard, no metrics
        import urllib.error
        import urllib.request

        port = ex._client.scheduler_info()["services"]["dashboard"]
        for page in ("status", "metrics", "health", "info/main/workers.html"):
            with pytest.raises(urllib.error.HTTPError, match="404"):
                urllib.request.urlopen(f"http://127.0.0.1:{port}/{page}", timeout=10)


@pytest.mark.xdist_group("clusters")
def test_dask_logs_and_task_keys_hold_no_task_argument(_executors: None) -> None:
    """The scheduler logs task keys: a key is the function's name and a random id, never the argument."""
    from executor_cases import _executor

    ex = _executor("dask")
    client = ex._client
    marker = "/data/study/part-SENTINEL-7f3a"
    with pytest.raises(ValueError):
        ex.map(refuse_two, [0, 1, 2])
    futures = client.map(len, [marker], pure=False)  # how DaskExecutor names its tasks
    assert marker not in futures[0].key and "SENTINEL" not in futures[0].key
    client.gather(futures)
    ex.map(len, [marker, marker])
    logs = [str(line) for line in client.get_scheduler_logs(n=10_000)]
    logs += [str(line) for lines in client.get_worker_logs(n=10_000).values() for line in lines]
    assert not [line for line in logs if "SENTINEL" in line]


@pytest.mark.xdist_group("clusters")
def test_a_local_dask_clusters_spill_folder_is_owner_only_and_removed_when_it_closes() -> None:
    pytest.importorskip("distributed")
    import stat

    from execution import open_executor

    with open_executor("dask", workers=1) as ex:
        scratch = Path(ex._scratch)
        assert stat.S_IMODE(scratch.stat().st_mode) == 0o700
        assert ex.map(square, [3]) == [9]
        assert any(scratch.iterdir())  # the worker's own folder is in it
    assert not scratch.exists()
