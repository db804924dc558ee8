"""The execution layer against a hostile co-tenant, a careless steward and hostile settings.

A research server is often shared by several users: a local cluster's loopback ports are open to
every one of them. A cluster that answers any client runs that client's code as the steward, with
the steward's keys and data in reach. The cluster tests share the session's clusters
(tests/executor_cases.py) and run in the "clusters" xdist group.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from partition_tasks import die_on_one, square


@pytest.mark.xdist_group("clusters")
def test_a_local_dask_cluster_refuses_a_client_without_its_credentials(_executors: None) -> None:
    """Another user on the machine cannot reach the scheduler: TLS with this cluster's own certificate."""
    from executor_cases import _executor

    distributed = pytest.importorskip("distributed")
    ex = _executor("dask")
    assert ex.map(square, [2]) == [4]
    assert (Path(ex._scratch) / ".pfl-engine-folder").is_file()  # removed by the next run after a kill
    address = ex._client.scheduler.address
    assert address.startswith("tls://127.0.0.1:")
    _, port = address.rsplit(":", 1)
    intruders = [(f"tcp://127.0.0.1:{port}", None), (address, None),
                 (address, distributed.Security.temporary())]  # its own certificate, not the cluster's

    # Asynchronous clients on one event loop: a synchronous Client starts an IO-loop thread of its
    # own, which under load (10 on 2 cores) missed distributed's 10 s start-up wait (an
    # AssertionError, not a refusal) or hung when a failed client's __del__ joined its thread.
    async def intrude(target: str, security: object) -> None:
        client = distributed.Client(target, timeout="3s", set_as_default=False, security=security,
                                    asynchronous=True)
        try:
            await client  # connects: must fail
        finally:
            await client.close()  # in this loop, not in a __del__ after it has closed

    for target, security in intruders:
        with pytest.raises((OSError, ValueError, TypeError)):
            asyncio.run(intrude(target, security))


def _dies(ex: object) -> str:
    from execution import ExecutorError

    with pytest.raises(ExecutorError) as raised:
        ex.map(die_on_one, [0, 1, 2])  # type: ignore[attr-defined]
    return str(raised.value)


def test_a_pool_worker_killed_outright_is_a_lost_worker_naming_the_partition() -> None:
    from execution import open_executor

    with open_executor("processes", workers=1) as ex:
        said = _dies(ex)
        assert "partition 2 of 3" in said and "processes" in said and "died" in said
        assert ex.map(square, [3]) == [9]  # the next map gets a fresh pool


@pytest.mark.xdist_group("clusters")
def test_a_dask_worker_killed_outright_is_a_lost_worker_naming_the_partition(_executors: None) -> None:
    from executor_cases import _executor

    ex = _executor("dask")
    said = _dies(ex)
    assert "partition 2 of 3" in said and "dask" in said and "died" in said
    assert ex.map(square, [3]) == [9]  # the nannies restarted the workers


def test_a_lost_worker_ends_a_command_with_its_own_exit_code_and_no_traceback(
        capsys: pytest.CaptureFixture[str]) -> None:
    from execution.executors import lost_worker
    from extracts.cli import EXIT_CODES, guarded

    def fn() -> None:
        raise lost_worker("processes", 1, 3)

    with pytest.raises(SystemExit) as info:
        guarded(fn)
    said = capsys.readouterr().err
    assert EXIT_CODES[int(info.value.code)][0] == "worker lost"
    assert "partition 2 of 3" in said and "Traceback" not in said and "nothing was published" in said


def _settings(**settings: object) -> object:
    from omegaconf import OmegaConf

    return OmegaConf.create({"executor": {"name": "local"}, "partitions": 1, "memory_gb": None, **settings})


def test_a_partition_count_beyond_the_limit_is_refused_before_anything_starts() -> None:
    # partitions=1000000000 was accepted: a billion task arguments in memory and on the scheduler.
    from extracts.cli import execution_settings
    from extracts.errors import ConfigError

    with pytest.raises(ConfigError, match="at most 4096"), execution_settings(_settings(partitions=10**9)):
        pass
    with execution_settings(_settings(partitions=4096)) as (_, k):
        assert k == 4096


@pytest.mark.parametrize("executor", ["processes", "dask", "spark"])
@pytest.mark.parametrize("workers", [0, -1, 2.5, "abc", True])
def test_a_worker_count_that_is_not_a_whole_number_of_one_or_more_is_refused(executor: str, workers: object) -> None:
    # workers=0 silently meant every core, workers=-1 failed after the data was read (internal
    # error), and executor=dask executor.workers=abc said "unsupported operand type(s) for /".
    from extracts.cli import execution_settings
    from extracts.errors import ConfigError

    cfg = _settings(executor={"name": executor, "workers": workers})
    with pytest.raises(ConfigError, match="executor.workers must be a whole number >= 1"), execution_settings(cfg):
        pass


@pytest.mark.parametrize("memory_gb", [float("inf"), float("nan"), -1, 0, "8"])
def test_a_memory_budget_that_is_not_a_finite_positive_number_is_refused(memory_gb: object) -> None:
    from extracts.cli import execution_settings
    from extracts.errors import ConfigError

    cfg = _settings(partitions="auto", memory_gb=memory_gb)
    with pytest.raises(ConfigError, match="memory_gb must be a positive number"), execution_settings(
            cfg, stage="study", rows=lambda: 10):
        pass


@pytest.mark.parametrize("master", ["nonsense", "local[-1]", "local[abc]", "spark://", "http://host:7077"])
def test_a_spark_master_of_no_known_form_is_refused_before_java_starts(master: str) -> None:
    # executor.master=nonsense printed Java's stack trace on the console before the error.
    pytest.importorskip("pyspark")
    from extracts.cli import execution_settings
    from extracts.errors import ConfigError

    cfg = _settings(executor={"name": "spark", "master": master})
    with pytest.raises(ConfigError, match="executor.master must be"), execution_settings(cfg):
        pass


@pytest.mark.xdist_group("clusters")
def test_spark_in_local_mode_keeps_its_files_in_an_owner_only_folder_and_answers_its_session_only(
        _executors: None) -> None:
    # Spark's default local dirs were /tmp/blockmgr-* and /tmp/spark-* of mode 0755 (readable by
    # every user of the machine), some left after the session stopped; its ports answered anyone.
    import os
    import stat

    from executor_cases import _executor

    ex = _executor("spark")
    assert ex.map(square, list(range(4))) == [0, 1, 4, 9]
    sc = ex._session.sparkContext
    folder = Path(sc.getConf().get("spark.local.dir"))
    assert folder.name.startswith("pfl-spark-") and stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert folder.stat().st_uid == os.getuid()
    assert (folder / ".pfl-engine-folder").is_file()  # removed by the next run if this one is killed
    assert Path(sc._temp_dir).is_relative_to(folder)  # pyspark's own files (the tasks' arguments)
    assert any(p.name.startswith("blockmgr-") for p in folder.rglob("*"))
    assert sc.getConf().get("spark.authenticate") == "true"  # the ports answer this session only


def _holder(tmp: object, prefix: str) -> tuple[object, str]:
    """A process that opens an engine folder in ``tmp`` and waits (its path on its first line)."""
    import os
    import subprocess
    import sys

    code = ("import sys, time\nfrom execution.engine_folder import EngineFolder\n"
            f"f = EngineFolder({prefix!r})\nprint(f.path, flush=True)\ntime.sleep(120)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "TMPDIR": str(tmp)})
    return proc, proc.stdout.readline().strip()  # type: ignore[union-attr]


def test_an_engine_folder_a_killed_run_left_is_removed_by_the_next_run_and_a_live_ones_is_not(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A driver killed outright left /tmp/pfl-dask-* (its workers' spill) and /tmp/pfl-spark-* for good.
    import os
    import tempfile

    from execution.engine_folder import EngineFolder

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    killed, killed_path = _holder(tmp_path, "pfl-dask-")
    live, live_path = _holder(tmp_path, "pfl-dask-")
    try:
        (Path(killed_path) / "spilled.bin").write_bytes(b"partial results")
        killed.kill()
        killed.wait()
        planted = Path(tmp_path) / "pfl-dask-planted"  # a link another user planted: never followed
        planted.symlink_to(Path(tmp_path) / "elsewhere")
        (Path(tmp_path) / "elsewhere").mkdir()
        (Path(tmp_path) / "elsewhere" / "keep").write_text("kept")
        unmarked = Path(tmp_path) / "pfl-dask-olderversion"
        unmarked.mkdir()
        mine = EngineFolder("pfl-dask-")
        assert oct(os.stat(mine.path).st_mode & 0o777) == "0o700"
        assert not Path(killed_path).exists()
        assert Path(live_path).is_dir() and planted.is_symlink() and unmarked.is_dir()
        assert (Path(tmp_path) / "elsewhere" / "keep").read_text() == "kept"
        mine.remove()
        assert not Path(mine.path).exists()
    finally:
        live.kill()
        live.wait()


def _scanned(paths: list[Path], needles: list[str]) -> list[str]:
    """The files (never the values) that hold one of ``needles`` in their bytes."""
    import polars as pl

    if not paths:
        return []
    texts = pl.Series([p.read_bytes().decode("latin-1") for p in paths], dtype=pl.String)
    return [str(paths[i]) for i in texts.str.contains_any(needles).arg_true()]


@pytest.mark.xdist_group("clusters")
@pytest.mark.parametrize("name", ["dask", "spark"])
def test_the_supplier_step_on_a_cluster_leaves_no_bsn_in_the_engines_files_logs_or_the_console(
        name: str, _executors: None, tiny_extracts: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capfd: pytest.CaptureFixture[str]) -> None:
    """Every file the engine writes while the stage runs (its folder, the current folder), its logs."""
    import polars as pl
    from executor_cases import _executor

    from pseudonymisation.keys import generate_key
    from pseudonymisation.supplier import run_supplier_step

    ex = _executor(name)
    extract = tiny_extracts.out / "ehr"  # type: ignore[attr-defined]
    bsns = sorted({str(v) for f in extract.glob("patients.*") for v in (
        pl.read_parquet(f) if f.suffix == ".parquet" else pl.read_csv(f, infer_schema=False))["bsn"].drop_nulls()
        if len(str(v)) >= 8})
    assert len(bsns) > 100 and _scanned(sorted(extract.glob("patients.*")), bsns)  # the scan sees them
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    key = generate_key(tmp_path / "network.key", "network")
    run_supplier_step(extract, "ehr", key, tmp_path / "out", executor=ex, partitions=4)
    engine = Path(ex._scratch) if name == "dask" else Path(ex._session.sparkContext.getConf().get("spark.local.dir"))
    written = [p for folder in (engine, cwd) for p in folder.rglob("*") if p.is_file()]
    assert [p for p in written if p.suffix != ".so"] or name == "dask"  # Spark's files are scanned
    assert _scanned(written, bsns) == []
    logs = capfd.readouterr()
    assert not [b for b in bsns if b in logs.out or b in logs.err]
    if name == "dask":
        lines = [str(x) for x in ex._client.get_scheduler_logs(n=10_000)]
        lines += [str(x) for ls in ex._client.get_worker_logs(n=10_000).values() for x in ls]
        assert not [b for b in bsns if any(b in line for line in lines)]


def test_a_partitioned_stage_sent_sigterm_removes_its_scratch_and_partial_and_says_interrupted(
        tiny_extracts: object, tmp_path: Path) -> None:
    # SIGTERM (a job's time limit, `kill PID`, docker stop) ended the process without cleanup: the
    # supplier's scratch (the extract split by partition, the run's worker keys) stayed beside
    # the output until a rerun on that same output.
    import signal

    from command_runner import assert_clean_failure, signal_when

    from pseudonymisation.keys import generate_key

    key = tmp_path / "keys" / "network.key"
    generate_key(key, "network")
    out = tmp_path / "ehr"
    args = ["supplier=ehr", f"extract={tiny_extracts.out / 'ehr'}", f"out={out}",  # type: ignore[attr-defined]
            f"network_key={key}", "partitions=4"]
    proc, sent = signal_when("pfl-supplier", *args, cwd=tmp_path / "cwd", signum=signal.SIGTERM,
                             ready=lambda: any(out.parent.glob(f".{out.name}.scratch-*/*")))
    assert sent, "pfl-supplier finished before it could be signalled"
    assert_clean_failure(proc, 130, "interrupted")
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}")] == []
    assert not out.exists()


def test_an_address_where_no_dask_scheduler_answers_is_a_configuration_error_at_once() -> None:
    # executor.address=tcp://HOST:PORT of another service (a web server, a wrong port) read its
    # answer as a frame length: "error: out of memory" (exit 70), then 60 s more before the
    # process could exit.
    import socket
    import threading
    import time

    pytest.importorskip("distributed")
    from extracts.cli import execution_settings
    from extracts.errors import ConfigError

    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def answer() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n" * 4)
            conn.close()

    threading.Thread(target=answer, daemon=True).start()
    began = time.monotonic()
    try:
        cfg = _settings(executor={"name": "dask", "address": f"tcp://127.0.0.1:{port}", "allow_plaintext": True})
        with pytest.raises(ConfigError, match="no Dask scheduler answered"), execution_settings(cfg):
            pass
    finally:
        server.close()
    assert time.monotonic() - began < 20


# A running scheduler at the address (tls:// with certificate files, tcp:// with the opt-in):
# tests/adversarial/test_dask_transport.py.


def test_a_second_run_on_the_output_of_a_partitioned_run_in_flight_is_refused(
        tiny_extracts: object, tmp_path: Path) -> None:
    """The output's lock holds from the first check through the partitions and the reduce."""
    import signal
    import subprocess
    import time

    from command_runner import BIN, assert_clean_failure, command_env, run_command

    from pseudonymisation.keys import generate_key

    key = tmp_path / "keys" / "network.key"
    generate_key(key, "network")
    out = tmp_path / "ehr"
    args = ["supplier=ehr", f"extract={tiny_extracts.out / 'ehr'}", f"out={out}",  # type: ignore[attr-defined]
            f"network_key={key}", "partitions=4"]
    (tmp_path / "cwd").mkdir()
    first = subprocess.Popen([str(BIN / "pfl-supplier"), *args], cwd=tmp_path / "cwd", env=command_env(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not any(out.parent.glob(f".{out.name}.scratch-*/*")) and first.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.005)
        first.send_signal(signal.SIGSTOP)  # held mid-run, its partitions in flight
        assert first.poll() is None, "the first run ended before its partitions ran"
        second = run_command("pfl-supplier", *args, "overwrite=true", cwd=tmp_path / "cwd")
        assert_clean_failure(second, 9, "output busy")
        first.send_signal(signal.SIGCONT)
        _, err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == 0, err[-2000:]
    assert (out / "for_ttp" / "manifest.json").is_file()


def test_a_link_planted_at_an_outputs_lock_is_not_followed(tmp_path: Path) -> None:
    # The lock file was opened with O_CREAT through a link another user of the folder planted:
    # it created (and locked) a file wherever the link pointed.
    from extracts.atomic import claim_output
    from extracts.errors import StorageError

    out = tmp_path / "shared" / "study"
    out.parent.mkdir()
    target = tmp_path / "elsewhere" / "created-through-the-link"
    target.parent.mkdir()
    (out.parent / ".study.lock").symlink_to(target)
    with pytest.raises(StorageError), claim_output(out, overwrite=False):
        pass
    assert not target.exists()
    assert not out.exists()


@pytest.mark.parametrize("make", [
    lambda pl, np: pl.DataFrame({"bsn": ["123456782"]}),
    lambda pl, np: pl.DataFrame({"bsn": ["123456782"]}).lazy(),  # its plan carries the rows
    lambda pl, np: ("/data/part-1", pl.Series("bsn", ["123456782"])),
    lambda pl, np: {"rows": np.array([123456782])},
], ids=["frame", "lazy-frame-in-memory", "series-in-a-tuple", "array-in-a-mapping"])
def test_a_task_argument_holding_rows_of_data_is_refused_before_anything_runs(make: object) -> None:
    # Only bytes were refused: a frame, a lazy frame made from one, an array went to the scheduler.
    import numpy as np
    import polars as pl

    from execution import LocalExecutor

    ran: list[object] = []
    with pytest.raises(TypeError, match="task argument 2 of 2 holds rows of data") as raised:
        LocalExecutor().map(ran.append, [1, make(pl, np)])  # type: ignore[operator]
    assert ran == [] and "123456782" not in str(raised.value)
