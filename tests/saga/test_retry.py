"""A Failed transaction (an undo that could not complete) is retried once the cause is gone."""

from __future__ import annotations

import asyncio
from typing import Any

from kubernetes.client import ApiClient
from temporalio.client import Client

from activities.seams import Fault, Seams
from janus.cli.retry import retry_rollback
from janus.clients.kubernetes import kubernetes_client
from janus.contract.settings import WorkerSettings
from janus.runtime.worker import build_worker
from tests.saga.harness import LEASE_NAMESPACE, Harness, change, finish, transaction


async def run_worker_until(
    client: Client, task_queue: str, kubeconfig: str, seams: Seams, done: Any
) -> None:
    worker = build_worker(
        client,
        task_queue=task_queue,
        api_client=kubernetes_client(kubeconfig),
        settings=WorkerSettings(lease_namespace=LEASE_NAMESPACE),
        seams=seams,
    )
    async with worker:
        await done


async def test_failed_rollback_is_retried_after_the_cause_is_fixed(
    crd_installed: None,
    kube_api: ApiClient,
    temporal_client: Client,
    task_queue: str,
    namespace: str,
    endpoints: Any,
) -> None:
    harness = Harness(kube_api, temporal_client, task_queue, namespace)
    harness.create_objects(
        [
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": n}, "data": {"v": "1"}}
            for n in ("first", "second")
        ]
    )
    failing_undo = Seams(faults=(Fault.parse("undo:0:before"), Fault.parse("apply:1:before")))
    manifest = transaction(
        "stuck",
        change("ConfigMap", "first", "Patch", {"data": {"v": "2"}}),
        change("ConfigMap", "second", "Patch", {"data": {"v": "2"}}),
    )
    handle = await harness.start(manifest)
    await run_worker_until(
        temporal_client, task_queue, str(endpoints.kubeconfig), failing_undo, finish(handle)
    )
    failed = harness.transaction("stuck")["status"]
    assert failed["phase"] == "Failed", failed
    assert "undo of change 0" in failed["message"]
    assert harness.config_map("first").data == {"v": "2"}  # the undo really did not run

    await retry_rollback(temporal_client, handle.id, reason="test: fault removed")
    healthy = Seams()
    retried = temporal_client.get_workflow_handle(handle.id)
    await run_worker_until(
        temporal_client,
        task_queue,
        str(endpoints.kubeconfig),
        healthy,
        asyncio.wait_for(finish(retried), timeout=60),
    )

    status = harness.transaction("stuck")["status"]
    assert status["phase"] == "RolledBack", status
    assert harness.config_map("first").data == {"v": "1"}
    assert harness.config_map("second").data == {"v": "1"}
    assert harness.leases() == []
