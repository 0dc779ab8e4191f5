"""``kubectl delete txn`` while it commits: rolled back, and nothing of it left behind.

The Transaction creates 40 ConfigMaps; it is deleted once two are committed.
The finalizer holds it while the bridge cancels the workflow and the workflow
undoes what it did; ``kubectl delete`` returns once the object is gone. Then
nothing remains: no created ConfigMap, no Lease, no snapshot, no finalizer.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import yaml
from kubernetes import client as k8s
from kubernetes.client import ApiClient
from temporalio.client import Client, WorkflowExecutionStatus

from janus.contract.models import API_GROUP, API_VERSION, PLURAL
from tests.bridge.support import (
    SYSTEM_NAMESPACE,
    Janus,
    config_map_transaction,
    kubectl,
    workflows_of,
)

CHANGES = 40
#: 40 small creates commit in well under a second; a short delay before each
#: (which also ends the commit batch there) leaves time to delete mid-flight.
SLOW_COMMIT = {
    "JANUS_DELAYS": ",".join(f"apply:{i}:before:0.1s@many" for i in range(CHANGES)),
}
GC_TIMEOUT = 60.0


def committed_at_least(api: ApiClient, namespace: str, name: str, count: int) -> dict[str, Any]:
    """Poll fast (the saga does not wait for us) until ``count`` changes are committed."""
    custom = k8s.CustomObjectsApi(api)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        obj: Any = custom.get_namespaced_custom_object(
            API_GROUP, API_VERSION, namespace, PLURAL, name
        )
        if (obj.get("status") or {}).get("summary", {}).get("committed", 0) >= count:
            return dict(obj)
        time.sleep(0.02)
    raise AssertionError(f"{namespace}/{name} never committed {count} changes")


def wait_until_gone(what: str, lister: Any) -> None:
    deadline = time.monotonic() + GC_TIMEOUT
    while lister():
        assert time.monotonic() < deadline, f"{what} still there: {lister()}"
        time.sleep(0.5)


async def test_delete_mid_flight_rolls_back_and_leaves_nothing(
    janus: Janus, namespace: str, kube_api: ApiClient, temporal_client: Client
) -> None:
    janus.worker(env=SLOW_COMMIT)
    janus.bridge()
    names = [f"many-{i}" for i in range(CHANGES)]
    manifest = config_map_transaction("many", *names)
    kubectl("-n", namespace, "apply", "-f", "-", stdin=yaml.safe_dump(manifest))

    seen = committed_at_least(kube_api, namespace, "many", 2)
    deleted = kubectl("-n", namespace, "delete", "txn", "many", "--timeout=120s")

    assert seen["status"]["phase"] == "Committing", seen["status"]
    assert "deleted" in deleted.stdout
    assert kubectl("-n", namespace, "get", "txn", "many", check=False).returncode != 0
    assert_nothing_left(kube_api, namespace, seen["metadata"]["uid"], names)
    events = events_of(namespace, "many")
    assert "AwaitingRollback" in events, events
    assert events["RolledBack"].startswith("Rolled back "), events
    assert int(events["RolledBack"].split()[2]) >= 2, events["RolledBack"]
    runs = await workflows_of(temporal_client, namespace, "many")
    assert [r.status for r in runs] == [WorkflowExecutionStatus.CANCELED]


def assert_nothing_left(api: ApiClient, namespace: str, uid: str, created: list[str]) -> None:
    """No ConfigMap the saga made, no snapshot (in janus-system, deleted by the bridge
    with the finalizer; none beside the Transaction), no Lease."""
    core = k8s.CoreV1Api(api)

    def config_maps(where: str) -> list[str]:
        return [
            str(cm.metadata and cm.metadata.name)
            for cm in core.list_namespaced_config_map(where).items
        ]

    assert not set(config_maps(namespace)) & set(created), "created ConfigMaps survived"
    for where in (namespace, SYSTEM_NAMESPACE):
        wait_until_gone(
            "snapshots",
            lambda where=where: [
                n for n in config_maps(where) if n.startswith(f"janus-snap-{uid}")
            ],
        )
    leases = k8s.CoordinationV1Api(api).list_namespaced_lease(SYSTEM_NAMESPACE).items
    holders = [(lease.spec and lease.spec.holder_identity) or "" for lease in leases]
    assert not [h for h in holders if h.endswith(f"/{uid}")], holders


def events_of(namespace: str, name: str) -> dict[str, str]:
    """The Transaction's Events, reason → message (they outlive it)."""
    selector = f"involvedObject.name={name}"
    found = kubectl("-n", namespace, "get", "events", "--field-selector", selector, "-o", "json")
    return {e["reason"]: e["message"] for e in json.loads(found.stdout)["items"]}


async def test_delete_before_any_worker_ran_it_lets_go_at_once(
    janus: Janus, namespace: str, temporal_client: Client
) -> None:
    """No worker polls: nothing was done, so the workflow is terminated, not cancelled."""
    janus.bridge()
    manifest = config_map_transaction("idle", "never-made")
    kubectl("-n", namespace, "apply", "-f", "-", stdin=yaml.safe_dump(manifest))
    kubectl("-n", namespace, "wait", "--for=jsonpath={.status.phase}=Pending", "txn/idle")

    kubectl("-n", namespace, "delete", "txn", "idle", "--timeout=30s")

    runs = await workflows_of(temporal_client, namespace, "idle")
    assert [r.status for r in runs] == [WorkflowExecutionStatus.TERMINATED]
    assert kubectl("-n", namespace, "get", "cm", "never-made", check=False).returncode != 0


def leases_held_by(api: ApiClient, uid: str) -> list[str]:
    """What ``kubectl get leases -n janus-system`` shows held by the Transaction ``uid``."""
    leases = k8s.CoordinationV1Api(api).list_namespaced_lease(SYSTEM_NAMESPACE).items
    return [
        str(lease.metadata and lease.metadata.name)
        for lease in leases
        if ((lease.spec and lease.spec.holder_identity) or "").endswith(f"/{uid}")
    ]


async def test_delete_after_worker_died_holding_leases_releases_them(
    janus: Janus, namespace: str, kube_api: ApiClient, temporal_client: Client
) -> None:
    """The worker takes the first lease in its first workflow task (a local activity)
    and is SIGKILLed before that task completes, so no history records the lease.
    The Transaction is deleted while no worker runs; the next worker sees the cancel
    before it resolves any target. The lease still goes with the Transaction."""
    crashing = janus.worker(env={"JANUS_CRASH_AT": "acquire:0:after@leaky"})
    janus.bridge()
    manifest = config_map_transaction("leaky", "leaky-0", "leaky-1")
    kubectl("-n", namespace, "apply", "-f", "-", stdin=yaml.safe_dump(manifest))
    uid = kubectl("-n", namespace, "get", "txn", "leaky", "-o", "jsonpath={.metadata.uid}").stdout
    deadline = time.monotonic() + 60
    while crashing.alive:
        assert time.monotonic() < deadline, "the worker never reached its crash point"
        await asyncio.sleep(0.1)
    held_before = leases_held_by(kube_api, uid)

    kubectl("-n", namespace, "delete", "txn", "leaky", "--wait=false")
    janus.worker()
    kubectl("-n", namespace, "wait", "--for=delete", "txn/leaky", "--timeout=90s")

    assert len(held_before) == 1, held_before
    runs = await workflows_of(temporal_client, namespace, "leaky")
    assert [r.status for r in runs] == [WorkflowExecutionStatus.CANCELED]
    assert leases_held_by(kube_api, uid) == []
    shown = kubectl("-n", SYSTEM_NAMESPACE, "get", "leases", "-o", "name").stdout
    assert held_before[0] not in shown, shown
    assert kubectl("-n", namespace, "get", "cm", "leaky-0", check=False).returncode != 0
