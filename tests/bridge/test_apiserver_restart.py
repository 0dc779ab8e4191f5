"""A Transaction created just before kube-apiserver restarts is still picked up.

kopf runs the create handler on the watch event that follows its finalizer PATCH.
When the server dies right after applying that PATCH (its response lost, kopf's
retry refused by the resourceVersion test), that event may never come: the
bridge's ``pick-up`` timer touches the Transaction so that it does. The exact
moment cannot be hit on purpose from outside the bridge, so this test restarts the
server right after the creation, as close to it as a test can, and checks what
a user sees: the Transaction committed, its target changed, no lease left.
"""

from __future__ import annotations

import asyncio
import json

from kubernetes.client import ApiClient

from janus.dev import ControlPlane, paths
from tests.bridge.support import EXAMPLES, Janus, kubectl
from tests.bridge.test_delete import leases_held_by
from tests.reliability.test_server_restarts import restart, wait_apiserver

WAIT = "--timeout=90s"


async def test_a_transaction_created_just_before_an_api_server_restart_commits(
    janus: Janus, namespace: str, kube_api: ApiClient
) -> None:
    ns = ("-n", namespace)
    kubectl(*ns, "apply", "-f", str(EXAMPLES / "seed-objects.yaml"))
    janus.worker()
    # Without an election: a leader that cannot renew its Lease while the server is
    # down steps down and exits (its Deployment restarts it), which is not at issue.
    janus.bridge("--no-leader-election")
    kubectl(*ns, "apply", "-f", str(EXAMPLES / "deploy-v2.yaml"))
    control = ControlPlane(paths.testing_state_dir())
    await asyncio.to_thread(restart, control, "kube-apiserver")
    await wait_apiserver(kube_api, control)

    kubectl(*ns, "wait", "--for=jsonpath={.status.phase}=Committed", "txn/deploy-v2", WAIT)
    found = json.loads(kubectl(*ns, "get", "txn", "deploy-v2", "-o", "json").stdout)
    assert kubectl(*ns, "get", "cm/app-config", "-o", "jsonpath={.data.version}").stdout == "2.0"
    assert leases_held_by(kube_api, found["metadata"]["uid"]) == []
