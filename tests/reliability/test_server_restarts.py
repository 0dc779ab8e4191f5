"""The servers restart mid-commit: the transaction completes or rolls back, never half.

This needs control of the server processes, so it runs on a control plane of
its own (``janus.dev.ControlPlane`` in a temporary state directory), never the
session's. While a transaction of many Creates is committing:

- the Temporal dev server is SIGKILLed and started again on the same database
  file: the workflow resumes from its history;
- kube-apiserver is SIGKILLed and started again on the same etcd: the worker's
  calls fail meanwhile and are retried (or, past the forward steps' retries,
  the saga rolls back, retrying its undos until the API server answers).

Either way the end is all or nothing: every object created and Committed, or
none and RolledBack; no lease left.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError

from janus.clients.temporal import connect_to
from janus.contract.crd import custom_resource_definition
from janus.dev import ControlPlane, Endpoints, build, pki, processes, servers
from janus.dev.state import ClusterState, load_model, save_model
from tests.accounts import open_namespace
from tests.reliability import tally
from tests.reliability.worker_process import WorkerProcess, Zygote
from tests.saga.harness import LEASE_NAMESPACE, Harness, change, transaction

CHANGES = 30
#: 30 small creates commit in well under a second; a short delay before each
#: (which also ends the commit batch there) keeps the commit going through the
#: restart.
SLOW_COMMIT = ",".join(f"apply:{i}:before:0.2s@survivor" for i in range(CHANGES))
READY_TIMEOUT = 180.0


@pytest.fixture(scope="module")
def plane() -> Iterator[tuple[ControlPlane, Endpoints]]:
    """A control plane this module may restart at will; purged afterwards."""
    control = ControlPlane(Path(tempfile.mkdtemp(prefix="janus-restarts-")))
    try:
        endpoints = control.up()
        yield control, endpoints
    finally:
        control.down(purge=True)


def install(api: ApiClient) -> None:
    ext = k8s.ApiextensionsV1Api(api)
    body = custom_resource_definition()
    ext.create_custom_resource_definition(body)  # type: ignore[arg-type]
    for _ in range(300):
        crd = ext.read_custom_resource_definition(body["metadata"]["name"])
        conditions = crd.status.conditions or [] if crd.status else []
        if any(c.type == "Established" and c.status == "True" for c in conditions):
            break
        time.sleep(0.1)
    k8s.CoreV1Api(api).create_namespace({"metadata": {"name": LEASE_NAMESPACE}})  # type: ignore[arg-type]


def restart(control: ControlPlane, name: str, pause: float = 0.0) -> None:
    """SIGKILL one server of the plane and, ``pause`` seconds later, start it again
    on the same data."""
    layout = control.layout
    state = load_model(layout.state_file, ClusterState)
    assert state is not None, "the plane is not running"
    server = next(s for s in state.servers if s.name == name)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGKILL)
    ports = state.ports
    if name == "temporal":
        spec = servers.temporal(layout, ports)
        held = [ports.temporal, ports.temporal_ui, ports.temporal_http, ports.temporal_metrics]
    else:
        spec = servers.apiserver(build.binaries(control.cache), layout, pki.Pki(layout.pki), ports)
        held = [ports.apiserver]
    # A killed process loses its command line before its sockets: wait for the ports.
    deadline = time.monotonic() + 30
    while not all(processes.port_free(p) for p in held) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(pause)
    server.pid = processes.spawn(spec.argv, layout.log(spec.name))
    save_model(layout.state_file, state)  # so that `down` stops the new process


async def wait_temporal(address: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        with contextlib.suppress(Exception):
            client = await connect_to(address)
            if await client.service_client.check_health():
                return
        if time.monotonic() > deadline:
            raise AssertionError("the Temporal server never answered again")
        await asyncio.sleep(0.5)


async def wait_apiserver(api: ApiClient, control: ControlPlane) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        try:
            await asyncio.to_thread(k8s.CoreV1Api(api).list_namespace, limit=1, _request_timeout=2)
            return
        except Exception as err:
            if time.monotonic() > deadline:
                log = processes.log_tail(control.layout.log("kube-apiserver"))
                raise AssertionError(f"kube-apiserver never answered again: {err}\n{log}") from err
        await asyncio.sleep(0.5)


async def settled(handle: WorkflowHandle[Any, Any], within: float) -> None:
    """Wait for the workflow to close, riding out a Temporal restart."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with contextlib.suppress(RPCError):
            description = await handle.describe()
            if description.close_time is not None:
                return
        await asyncio.sleep(0.5)
    raise AssertionError(f"workflow {handle.id} still running after {within}s")


async def committed_at_least(harness: Harness, name: str, count: int) -> None:
    for _ in range(1200):
        with contextlib.suppress(ApiException):
            summary = harness.transaction(name).get("status", {}).get("summary", {})
            if summary.get("committed", 0) >= count:
                return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{name} never committed {count} changes")


@pytest.fixture
async def world(
    plane: tuple[ControlPlane, Endpoints], zygote: Zygote, tmp_path: Path
) -> AsyncIterator[tuple[ControlPlane, Endpoints, ApiClient, Client, WorkerProcess, str]]:
    control, endpoints = plane
    api: ApiClient = k8s_config.new_client_from_config(config_file=str(endpoints.kubeconfig))  # type: ignore[no-untyped-call]
    with contextlib.suppress(ApiException):
        await asyncio.to_thread(install, api)
    temporal = await connect_to(endpoints.temporal_address)
    queue = f"restarts-{os.urandom(4).hex()}"
    env = {
        "KUBECONFIG": str(endpoints.kubeconfig),
        "TEMPORAL_ADDRESS": endpoints.temporal_address,
        "JANUS_DELAYS": SLOW_COMMIT,
    }
    worker = WorkerProcess(zygote, queue, tmp_path / "worker.log", env).start()
    await worker.ready()
    yield control, endpoints, api, temporal, worker, queue
    worker.stop()


#: (server, seconds it stays down). The long outage outlasts the forward steps'
#: retries (about 23 s): the saga must roll back, its undos retried until the API
#: server is back, and its status written once it can be.
OUTAGES = [("temporal", 0.0), ("kube-apiserver", 0.0), ("kube-apiserver", 35.0)]


@pytest.mark.parametrize(
    ("server", "pause"), OUTAGES, ids=["temporal", "kube-apiserver", "kube-apiserver-35s"]
)
async def test_a_server_restarts_mid_commit_and_nothing_is_half_applied(
    server: str,
    pause: float,
    world: tuple[ControlPlane, Endpoints, ApiClient, Client, WorkerProcess, str],
) -> None:
    control, endpoints, api, temporal, worker, queue = world
    namespace = f"restart-{server}-{os.urandom(3).hex()}"
    k8s.CoreV1Api(api).create_namespace({"metadata": {"name": namespace}})  # type: ignore[arg-type]
    open_namespace(api, namespace)
    harness = Harness(api, temporal, queue, namespace)
    creates = [
        change("ConfigMap", f"item-{i:02d}", "Create", {"data": {"i": str(i)}})
        for i in range(CHANGES)
    ]
    handle = await harness.start(transaction("survivor", *creates))
    await committed_at_least(harness, "survivor", 3)

    at_kill = harness.transaction("survivor")["status"]
    t0 = time.monotonic()
    await asyncio.to_thread(restart, control, server, pause)
    if server == "temporal":
        await wait_temporal(endpoints.temporal_address)
    else:
        await wait_apiserver(api, control)
    down_for = time.monotonic() - t0
    if worker.exit_code() is not None:  # the worker may give up on a dead server: replace it
        worker.start()
    await settled(handle, within=600)

    txn = harness.transaction("survivor")
    status = txn["status"]
    items = {
        cm.metadata.name: cm.data  # type: ignore[union-attr]
        for cm in k8s.CoreV1Api(api).list_namespaced_config_map(namespace).items
        if cm.metadata.name.startswith("item-")  # type: ignore[union-attr]
    }
    problems = []
    if at_kill["phase"] != "Committing":
        problems.append(f"the restart was not mid-commit: {at_kill['phase']}")
    if status["phase"] == "Committed":
        expected = {f"item-{i:02d}": {"i": str(i)} for i in range(CHANGES)}
        if items != expected:
            problems.append(f"Committed, but {len(items)} of {CHANGES} objects are right")
    elif status["phase"] == "RolledBack":
        if items:
            problems.append(f"RolledBack, but {len(items)} objects remain")
    else:
        problems.append(f"phase {status['phase']}: {status['message']}")
    if harness.leases():
        problems.append("leases left")
    outcome = (
        f"{status['phase']} after {server} was down {down_for:.0f}s "
        f"at {at_kill['summary']['committed']}/{CHANGES} committed"
    )
    tally.record("server restarts", server, not problems, "; ".join(problems))
    print(f"\n[server restarts] {server}: {outcome}; {problems or 'all or nothing'}")
    assert not problems, problems
