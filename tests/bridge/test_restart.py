"""A bridge that dies and comes back: no second workflow, and no Transaction left hanging.

The bridge starts first, without a worker, so the workflow it starts waits on
the task queue and the Transaction stays non-terminal: the restarted bridge
must resume it (start again, and get the same workflow back) rather than skip it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from tests.bridge.support import EXAMPLES, Janus, kubectl, workflows_of

WAIT = "--timeout=90s"


def transaction(namespace: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(
        kubectl("-n", namespace, "get", "txn", name, "-o", "json").stdout
    )
    return found


async def wait_for_workflow(client: Client, namespace: str, name: str) -> str:
    """The workflow id once the bridge has started it (it waits: no worker polls yet)."""
    for _ in range(300):
        workflow_id = (transaction(namespace, name).get("status") or {}).get("workflowId")
        if workflow_id:
            with contextlib.suppress(RPCError):
                await client.get_workflow_handle(workflow_id).describe()
                return str(workflow_id)
        await asyncio.sleep(0.1)
    raise AssertionError(f"no workflow for {namespace}/{name}")


async def forgotten_by_temporal(client: Client, workflow_id: str) -> None:
    """Deletion is asynchronous: wait until Temporal no longer describes the workflow."""
    for _ in range(600):
        try:
            await client.get_workflow_handle(workflow_id).describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return
            raise
        await asyncio.sleep(0.1)
    raise AssertionError(f"workflow {workflow_id} still known after its deletion")


async def test_bridge_killed_after_starting_restarts_without_a_second_workflow(
    janus: Janus, namespace: str, temporal_client: Client
) -> None:
    ns = ("-n", namespace)
    kubectl(*ns, "apply", "-f", str(EXAMPLES / "seed-objects.yaml"))
    first = janus.bridge()
    kubectl(*ns, "apply", "-f", str(EXAMPLES / "deploy-v2.yaml"))
    workflow_id = await wait_for_workflow(temporal_client, namespace, "deploy-v2")

    first.kill()
    second = janus.bridge()
    second.wait_for("janus_bridge_leader", 1)  # once the dead leader's Lease expired
    second.wait_for("janus_bridge_workflow_starts_total", 1, result="started")  # resumed
    janus.worker()
    kubectl(*ns, "wait", "--for=jsonpath={.status.phase}=Committed", "txn/deploy-v2", WAIT)

    runs = await workflows_of(temporal_client, namespace, "deploy-v2")
    assert [(r.id, r.status) for r in runs] == [(workflow_id, WorkflowExecutionStatus.COMPLETED)]


async def test_a_workflow_terminated_while_no_bridge_ran_is_settled_as_failed(
    janus: Janus, namespace: str, temporal_client: Client
) -> None:
    ns = ("-n", namespace)
    kubectl(*ns, "apply", "-f", str(EXAMPLES / "seed-objects.yaml"))
    bridge = janus.bridge()
    kubectl(*ns, "apply", "-f", str(EXAMPLES / "deploy-v2.yaml"))
    workflow_id = await wait_for_workflow(temporal_client, namespace, "deploy-v2")
    assert bridge.stop() == 0

    await temporal_client.get_workflow_handle(workflow_id).terminate(reason="test: operator")
    janus.worker()
    janus.bridge()
    kubectl(*ns, "wait", "--for=jsonpath={.status.phase}=Failed", "txn/deploy-v2", WAIT)

    message = transaction(namespace, "deploy-v2")["status"]["message"]
    assert f"The workflow {workflow_id} ended TERMINATED" in message
    assert kubectl(*ns, "get", "cm/app-config", "-o", "jsonpath={.data.version}").stdout == "1.0"
    runs = await workflows_of(temporal_client, namespace, "deploy-v2")
    assert [r.status for r in runs] == [WorkflowExecutionStatus.TERMINATED]


async def test_a_transaction_whose_workflow_temporal_forgot_is_failed_not_run_again(
    janus: Janus, namespace: str, temporal_client: Client
) -> None:
    """REJECT_DUPLICATE protects only while Temporal keeps the workflow. One deleted
    (as retention does, here with ``temporal workflow delete``) while its
    Transaction was Committing must not be started again from scratch by a
    resuming bridge: it is marked Failed, saying so."""
    ns = ("-n", namespace)
    kubectl(*ns, "apply", "-f", str(EXAMPLES / "seed-objects.yaml"))
    janus.worker(env={"JANUS_DELAYS": "apply:0:before:10s@deploy-v2"})
    bridge = janus.bridge()
    kubectl(*ns, "apply", "-f", str(EXAMPLES / "deploy-v2.yaml"))
    kubectl(*ns, "wait", "--for=jsonpath={.status.phase}=Committing", "txn/deploy-v2", WAIT)
    workflow_id = transaction(namespace, "deploy-v2")["status"]["workflowId"]
    assert bridge.stop() == 0

    temporal = Path(sys.executable).parent / "temporal"
    await asyncio.to_thread(
        subprocess.run,
        [str(temporal), "workflow", "delete", "--yes", "--workflow-id", workflow_id,
         "--address", temporal_client.service_client.config.target_host,
         "--namespace", temporal_client.namespace],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    await forgotten_by_temporal(temporal_client, workflow_id)
    janus.bridge()
    kubectl(*ns, "wait", "--for=jsonpath={.status.phase}=Failed", "txn/deploy-v2", WAIT)

    status = transaction(namespace, "deploy-v2")["status"]
    assert f"The workflow {workflow_id} is no longer known to Temporal" in status["message"]
    assert "it was not started again" in status["message"]
    assert await workflows_of(temporal_client, namespace, "deploy-v2") == []
