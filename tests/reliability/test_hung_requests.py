"""Hung and late requests (issue 11, defect 6): timeouts, leases that never lapse, fencing.

The worker talks to the API server through ``HoldProxy``, which holds a chosen
request: forever (a hung call), or for a while and then delivers it even though
the worker gave up (a request that completes late). Both scenarios are the
issue's, asserted as a user would check them with kubectl: the phase, every
target, the conditions, no lease left.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client as k8s
from kubernetes.client import ApiClient
from temporalio.client import Client

from janus.dev import Endpoints
from tests.reliability import tally
from tests.reliability.hold_proxy import HoldProxy
from tests.reliability.worker_process import WorkerProcess, Zygote
from tests.saga.harness import Harness, change, finish, transaction

#: Long enough for the rollback of today's code to come first; well inside the
#: bound the README states (ATTEMPT_WRITE_WINDOW + API_SERVER_SLACK).
LATE_BY_SECONDS = 15.0


@pytest.fixture
def proxy(endpoints: Endpoints, tmp_path: Path) -> Iterator[HoldProxy]:
    state = endpoints.state_dir or Path(os.environ["JANUS_STATE_DIR"])
    server = HoldProxy(state, endpoints.kubeconfig, tmp_path)
    yield server
    server.close()


@pytest.fixture
def bare_harness(
    crd_installed: None, kube_api: ApiClient, temporal_client: Client, namespace: str
) -> Harness:
    """The saga harness without an in-process worker: the tests' workers are processes."""
    return Harness(kube_api, temporal_client, f"hung-{uuid.uuid4().hex[:8]}", namespace)


def config_maps(harness: Harness, *names: str) -> None:
    harness.create_objects(
        [
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": n}, "data": {"v": "0"}}
            for n in names
        ]
    )


def worker(
    zygote: Zygote, harness: Harness, proxy: HoldProxy, log: Path, **settings: str
) -> WorkerProcess:
    env = {"KUBECONFIG": str(proxy.kubeconfig), **settings}
    return WorkerProcess(zygote, harness.task_queue, log, env).start()


async def test_a_hung_request_lets_no_lease_lapse_nor_another_transaction_in(
    bare_harness: Harness, proxy: HoldProxy, zygote: Zygote, tmp_path: Path
) -> None:
    """A's second batch hangs on its PATCH, three attempts in a row. Before the fix the call never
    timed out, the lease of A's first batch lapsed, B took it over and wrote
    first-cm while A was still running, and A's rollback ended Failed
    (ModifiedByOthers). Now the call times out, the retry renews every lease of
    A, A rolls back cleanly, and B waits for A's release."""
    harness = bare_harness
    config_maps(harness, "first-cm", "hung-cm", "last-cm")
    hung = proxy.hold(  # three attempts in a row: longer than a lease, before the fix
        rf"^PATCH /api/v1/namespaces/{harness.namespace}/configmaps/hung-cm\b",
        times=3,
        body="backup.janus.io/change",  # the action, not the dry run
    )
    process = worker(
        zygote,
        harness,
        proxy,
        tmp_path / "worker.log",
        JANUS_DELAYS="apply:1:before:1s@txn-a",  # change 1 starts a batch of its own
        JANUS_FAULTS="apply:2:before@txn-a",  # and A must roll back in the end
    )
    try:
        await process.ready()
        a = await harness.start(
            transaction(
                "txn-a",
                change("ConfigMap", "first-cm", "Patch", {"data": {"a": "1"}}),
                change("ConfigMap", "hung-cm", "Patch", {"data": {"a": "1"}}),
                change("ConfigMap", "last-cm", "Patch", {"data": {"a": "1"}}),
            )
        )
        assert await asyncio.to_thread(hung.begun.wait, 120), "A never sent its PATCH"
        b = await harness.start(
            transaction(
                "txn-b",
                change("ConfigMap", "first-cm", "Patch", {"data": {"b": "1"}}),
                lockTimeout="10m",
            )
        )
        await asyncio.wait_for(asyncio.gather(finish(a), finish(b)), timeout=600)
    finally:
        process.stop()

    txn_a, txn_b = harness.transaction("txn-a"), harness.transaction("txn-b")
    conditions = {c["type"]: c for c in txn_a["status"].get("conditions", [])}
    tally.record("hung requests", "held forever", txn_a["status"]["phase"] == "RolledBack")
    assert txn_a["status"]["phase"] == "RolledBack", txn_a["status"]["message"]
    assert "injected fault: apply of change 2" in txn_a["status"]["message"]  # not LeaseLost
    assert "UndoSkipped" not in conditions
    assert txn_b["status"]["phase"] == "Committed"
    assert harness.config_map("first-cm").data == {"v": "0", "b": "1"}  # A undone, B after
    assert harness.config_map("hung-cm").data == {"v": "0"}
    assert harness.config_map("last-cm").data == {"v": "0"}
    assert harness.leases() == []


async def test_a_create_that_completes_late_is_undone_not_left_behind(
    bare_harness: Harness, proxy: HoldProxy, zygote: Zygote, tmp_path: Path
) -> None:
    """The worker dies while its Create is on its way; the Create reaches the API
    server LATE_BY_SECONDS later. The next worker's attempt fails (an injected
    fault) and the saga rolls back. Before the fix the undo looked first, found
    nothing, and the late Create then left an object behind a RolledBack
    Transaction. Now the rollback outwaits every write a timed-out attempt may
    still make, and removes what the late Create made."""
    harness = bare_harness
    config_maps(harness, "base-cm")
    late = proxy.hold(
        rf"^POST /api/v1/namespaces/{harness.namespace}/configmaps\b",
        seconds=LATE_BY_SECONDS,
        body="backup.janus.io/change",  # the action, not the dry run or a snapshot
    )
    first = worker(zygote, harness, proxy, tmp_path / "worker-0.log")
    second: WorkerProcess | None = None
    try:
        await first.ready()
        handle = await harness.start(
            transaction(
                "late-create",
                change("ConfigMap", "late-cm", "Create", {"data": {"new": "1"}}),
                change("ConfigMap", "base-cm", "Patch", {"data": {"v": "1"}}),
            )
        )
        assert await asyncio.to_thread(late.begun.wait, 120), "the Create was never sent"
        second = worker(
            zygote,
            harness,
            proxy,
            tmp_path / "worker-1.log",
            JANUS_FAULTS="apply:0:before@late-create",
        )
        await second.ready()
        assert first.pid is not None
        os.kill(first.pid, 9)
        await asyncio.wait_for(finish(handle), timeout=300)
        assert await asyncio.to_thread(late.delivered.wait, 120), "the late Create never landed"
    finally:
        first.stop()
        if second is not None:
            second.stop()

    txn = harness.transaction("late-create")
    left = harness.config_map("late-cm")
    tally.record("hung requests", "late create", left is None)
    assert txn["status"]["phase"] == "RolledBack", txn["status"]["message"]
    assert left is None, f"left behind a RolledBack Transaction: {left.metadata}"
    assert harness.config_map("base-cm").data == {"v": "0"}
    assert harness.leases() == []


def test_every_request_of_a_client_has_a_timeout(proxy: HoldProxy) -> None:
    """Without the fix this call never returns (the proxy never answers)."""
    from urllib3.exceptions import MaxRetryError, ReadTimeoutError

    from janus.clients.kubernetes import kubernetes_client, writes_until

    proxy.hold(r"^GET /api/v1/namespaces/default(\?|$)")
    with kubernetes_client(str(proxy.kubeconfig)) as api:
        import time

        with (
            writes_until(time.monotonic() + 2, "this test"),
            pytest.raises((ReadTimeoutError, MaxRetryError)),
        ):
            k8s.CoreV1Api(api).read_namespace("default")
