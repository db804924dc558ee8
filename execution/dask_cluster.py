"""The ``dask`` executor: partition tasks on a Dask ``distributed`` cluster (issue 14, item 2).

By default a ``LocalCluster`` on this machine: ``workers`` worker processes (default: the cores),
``threads_per_worker`` threads each (default 1: the partition function's polars plan uses the
worker's cores itself), no dashboard or other web page, everything on the loopback address, and
the workers' log quiet (a task's exception is raised on the driver, not logged twice), and TLS
with a certificate made for this cluster alone: the loopback address is open to every user of the
machine, and a scheduler runs any client's code on its workers as the steward. With ``address``
(``tls://HOST:PORT``) it connects to a running scheduler instead (dask-jobqueue on Slurm,
dask-kubernetes, ``dask scheduler``): those workers must have the project installed, the same
view of the partition folders, and the keys by path or environment (docs/guide-cluster.md). The
connection is TLS with the cluster's certificate files, given by path; a plain ``tcp://`` address
is refused unless ``allow_plaintext`` (:mod:`execution.dask_transport`).

Dask has no telemetry. The scheduler logs task keys: a task's key here is the function's name and
a random id (``pure=False``), never its argument, and arguments hold no bytes
(:func:`execution.executors.check_task_arguments`). An exception in a task is raised on the driver
as itself (Dask ships it back), with a note naming the stage and the partition.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from execution.dask_transport import scheduler_security
from execution.engine_folder import EngineFolder
from execution.executors import Executor, ExecutorError, check_task_arguments, lost_worker, note_partition

__all__ = ["DaskExecutor"]

T = TypeVar("T")
R = TypeVar("R")


class DaskExecutor(Executor):
    """A ``distributed.Client`` on a local cluster it starts, or on the scheduler at ``address``."""

    name = "dask"

    def __init__(self, workers: int | None = None, address: str | None = None,
                 threads_per_worker: int | None = None, allow_plaintext: bool = False,
                 tls_ca_file: str | None = None, tls_cert: str | None = None,
                 tls_key: str | None = None) -> None:
        try:
            import distributed
        except ImportError as exc:
            msg = ("executor dask needs the dask extra: pip install 'patientflow-linkage[dask]' "
                   "(./run install installs it)")
            raise ExecutorError(msg) from exc
        self._cluster = None
        self._scratch: str | None = None
        if address:
            if not str(address).startswith(("tcp://", "tls://", "ucx://", "inproc://")):
                msg = f"executor.address must be a scheduler address such as tls://HOST:8786, not {address!r}"
                raise ValueError(msg)
            # tcp:// refused unless allow_plaintext; tls:// with the certificate files by path
            security = scheduler_security(distributed, str(address), allow_plaintext=allow_plaintext,
                                          tls_ca_file=tls_ca_file, tls_cert=tls_cert, tls_key=tls_key)
            _check_scheduler(distributed, str(address), security)
            try:
                self._client = distributed.Client(str(address), timeout=_TIMEOUT, set_as_default=False,
                                                  security=security)
            except OSError as exc:
                msg = f"executor dask: no Dask scheduler answered at {address} ({type(exc).__name__})"
                raise ExecutorError(msg) from None
        else:
            unused = [n for n, v in (("tls_ca_file", tls_ca_file), ("tls_cert", tls_cert), ("tls_key", tls_key),
                                     ("allow_plaintext", allow_plaintext or None)) if v is not None]
            if unused:
                msg = (f"executor.{', executor.'.join(unused)}: settings of a remote scheduler (executor.address); "
                       "a local cluster speaks TLS with a certificate it makes for itself")
                raise ValueError(msg)
            import dask

            # No web pages (dashboard, metrics, health): the scheduler's and workers' HTTP
            # servers get no routes. Logs: a task's error is raised on the driver, not repeated.
            quiet = {"distributed.scheduler.http.routes": [], "distributed.worker.http.routes": []}
            # Loopback ports are open to every user of the machine, and a Dask scheduler runs any
            # client's code on its workers: TLS with a certificate made for this cluster alone,
            # which the driver and the workers hold in memory and no other client has.
            security = _own_certificate(distributed)
            # The workers' spill folder: owner-only, this cluster's own, removed when it closes
            # (and by the next run after a kill: execution.engine_folder).
            self._folder = EngineFolder("pfl-dask-")
            self._scratch = self._folder.path
            try:
                with dask.config.set(quiet):
                    self._cluster = distributed.LocalCluster(
                        local_directory=self._scratch, security=security, protocol="tls://",
                        n_workers=workers or os.cpu_count() or 1, threads_per_worker=threads_per_worker or 1,
                        processes=True, host="127.0.0.1", dashboard_address=None,
                        # its (route-less) HTTP server on a free loopback port, not 8787
                        scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
                        silence_logs=logging.CRITICAL)
                self._client = distributed.Client(self._cluster, set_as_default=False)
            except BaseException:
                self.close()
                raise

    @property
    def workers(self) -> int:
        return max(1, len(self._client.scheduler_info().get("workers", {})))

    def map(self, fn: Callable[[T], R], items: Sequence[T], *, stage: str = "") -> list[R]:
        from distributed import KilledWorker

        check_task_arguments(items)
        if not items:
            return []
        futures = self._client.map(fn, list(items), pure=False)
        results = []
        for index, future in enumerate(futures):
            try:
                results.append(future.result())
            except Exception as exc:
                self._client.cancel(futures[index + 1:])
                if isinstance(exc, KilledWorker):  # its workers died running it (allowed-failures)
                    raise lost_worker(self.name, index, len(items), stage) from None
                raise note_partition(exc, index, len(items), self.name, stage) from None
        return results

    def close(self) -> None:
        # Closing races the client's background sends against the closing comms; distributed
        # logs that race with a traceback (CommClosedError in batched.py) that is no error of the
        # run: quiet while closing, so a user's console shows no traceback.
        with _quiet("distributed", "tornado", "asyncio"):
            if getattr(self, "_client", None) is not None:
                self._client.close()
            if self._cluster is not None:
                self._cluster.close()
                self._cluster = None
        if self._scratch is not None:
            self._folder.remove()
            self._scratch = None


_TIMEOUT = "30s"


def _check_scheduler(distributed: Any, address: str, security: Any) -> None:
    """One Dask handshake with ``address`` before a client is made, bounded by the connect timeout.

    Another service at the address (a web server, a wrong port) answers with bytes that Dask
    reads as a frame length (an allocation of exabytes: MemoryError), and a client whose start
    failed takes another minute to close: refused here, at once, with the address.
    """
    import asyncio

    from distributed.comm import connect

    async def handshake() -> None:
        args = security.get_connection_args("client")  # tls://: the cluster's certificates
        comm = await connect(address, timeout=_TIMEOUT, **args)
        await comm.close()

    try:
        asyncio.run(handshake())
    except Exception as exc:  # MemoryError included: any failure means no scheduler there
        msg = (f"executor dask: no Dask scheduler answered at {address} ({type(exc).__name__}); check the "
               "address and port of the running scheduler (docs/guide-cluster.md)")
        raise ExecutorError(msg) from None


def _own_certificate(distributed: Any) -> Any:
    """A ``Security`` with a new self-signed certificate (``cryptography``) that only this cluster trusts."""
    try:
        return distributed.Security.temporary()
    except ImportError as exc:
        msg = ("executor dask needs the cryptography package for its local cluster's TLS: pip install "
               "'patientflow-linkage[dask]' (./run install installs it)")
        raise ExecutorError(msg) from exc


@contextlib.contextmanager
def _quiet(*names: str) -> Iterator[None]:
    """Loggers ``names`` at CRITICAL for the block, then as they were."""
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
