"""The execution layer against a hostile co-tenant, a careless steward and hostile settings.

A research server is often shared by several users: a local cluster's loopback ports are open to
every one of them. A cluster that answers any client runs that client's code as the steward, with
the steward's keys and data in reach. The cluster tests share the session's clusters
(tests/executor_cases.py) and run in the "clusters" xdist group.
"""

from __future__ import annotations

import pytest
from partition_tasks import square


@pytest.mark.xdist_group("clusters")
def test_a_local_dask_cluster_refuses_a_client_without_its_credentials(_executors: None) -> None:
    """Another user on the machine cannot reach the scheduler: TLS with this cluster's own certificate."""
    from executor_cases import _executor

    distributed = pytest.importorskip("distributed")
    ex = _executor("dask")
    assert ex.map(square, [2]) == [4]
    address = ex._client.scheduler.address
    assert address.startswith("tls://127.0.0.1:")
    _, port = address.rsplit(":", 1)
    intruders = [(f"tcp://127.0.0.1:{port}", None), (address, None),
                 (address, distributed.Security.temporary())]  # its own certificate, not the cluster's
    for target, security in intruders:
        with pytest.raises((OSError, ValueError, TypeError)):
            client = distributed.Client(target, timeout="3s", set_as_default=False, security=security)
            client.close()
