"""``temporal workflow reset`` mid-commit, then a cancel: no lease of the first run left.

A reset starts a new run of the same workflow, under the same holder identity,
from its first workflow task; the old run's leases stay in the cluster. Here the
reset and the cancel both reach Temporal while the worker is down (a crash during
a delayed commit), so the new run is cancelled before it resolves any target and
knows no lease. The release must still free the leases the first run took: what
``kubectl get leases -n janus-system`` shows holds nothing of the Transaction.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from kubernetes.client import ApiClient
from temporalio.client import Client, WorkflowExecutionStatus

from janus.contract.models import TransactionRef
from janus.dev import Endpoints
from tests.bridge.support import SYSTEM_NAMESPACE, Janus, config_map_transaction, kubectl
from tests.bridge.test_delete import leases_held_by

#: Change 0 waits long enough for the test to kill the worker while committing.
DELAYED_COMMIT = {"JANUS_DELAYS": "apply:0:before:30s@reset-me"}


def temporal(endpoints: Endpoints, *args: str) -> str:
    """The ``temporal`` CLI against the test's server, as a user would run it."""
    tool = shutil.which("temporal", path=str(Path(sys.executable).parent)) or "temporal"
    done = subprocess.run(
        [tool, *args, "--address", endpoints.temporal_address],
        env={**os.environ, "TEMPORAL_NAMESPACE": endpoints.temporal_namespace},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"temporal {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


async def test_reset_during_commit_then_cancel_leaves_no_lease(
    janus: Janus,
    namespace: str,
    endpoints: Endpoints,
    kube_api: ApiClient,
    temporal_client: Client,
) -> None:
    worker = janus.worker(env=DELAYED_COMMIT)
    janus.bridge()
    manifest = config_map_transaction("reset-me", "reset-0", "reset-1")
    kubectl("-n", namespace, "apply", "-f", "-", stdin=yaml.safe_dump(manifest))
    kubectl("-n", namespace, "wait", "--for=jsonpath={.status.phase}=Committing", "txn/reset-me")
    uid = kubectl("-n", namespace, "get", "txn", "reset-me", "-o", "jsonpath={.metadata.uid}")
    workflow_id = TransactionRef(namespace=namespace, name="reset-me", uid=uid.stdout).workflow_id()
    worker.kill()
    held_by_first_run = leases_held_by(kube_api, uid.stdout)

    temporal(
        endpoints,
        "workflow",
        "reset",
        "--workflow-id",
        workflow_id,
        "--type",
        "FirstWorkflowTask",
        "--reason",
        "test",
        "--yes",
    )
    temporal(endpoints, "workflow", "cancel", "--workflow-id", workflow_id)
    janus.worker()
    kubectl(
        "-n",
        namespace,
        "wait",
        "--for=jsonpath={.status.phase}=RolledBack",
        "txn/reset-me",
        "--timeout=90s",
    )

    assert len(held_by_first_run) == 2, held_by_first_run
    described = await temporal_client.get_workflow_handle(workflow_id).describe()
    assert described.status == WorkflowExecutionStatus.CANCELED
    assert leases_held_by(kube_api, uid.stdout) == []
    shown = kubectl("-n", SYSTEM_NAMESPACE, "get", "leases", "-o", "name").stdout
    assert not [name for name in held_by_first_run if name in shown], shown
    for name in ("reset-0", "reset-1"):
        assert kubectl("-n", namespace, "get", "cm", name, check=False).returncode != 0
