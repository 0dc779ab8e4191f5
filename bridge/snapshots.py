"""Delete a Transaction's snapshots and leases when its finalizer is released.

Snapshots live in the system namespace (see ``activities.snapshots``), where
owner references to a Transaction in another namespace cannot reach: the
garbage collector would never remove them. So the bridge, which holds every
Transaction's finalizer, deletes the shards labelled with its uid just before it
lets the Transaction go. A shard written by 0.1.0 lives beside its Transaction,
owned by it, and goes with it as before.

The leases too: a workflow the bridge terminated (deleted before a worker ran
its first task, or after a worker died holding leases it had not reported) never
released them, and a deleted Transaction has no run left that would. Only
leases still held by the Transaction go, each deleted with its resourceVersion
as precondition, so one another transaction took over meanwhile stays.
"""

from __future__ import annotations

import asyncio

from kubernetes import client as k8s
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from janus.contract.operations import HOLDER_UID_LABEL, TRANSACTION_UID_LABEL

#: Attempts at one lease whose resourceVersion keeps changing under us.
RELEASE_ATTEMPTS = 3


async def delete_snapshots(api: ApiClient, namespace: str, uid: str) -> None:
    """Delete every shard of the Transaction ``uid`` in ``namespace`` (none is fine)."""
    core = k8s.CoreV1Api(api)
    selector = f"{TRANSACTION_UID_LABEL}={uid}"
    await asyncio.gather(
        asyncio.to_thread(
            core.delete_collection_namespaced_config_map, namespace, label_selector=selector
        ),
        asyncio.to_thread(
            core.delete_collection_namespaced_secret, namespace, label_selector=selector
        ),
    )


async def release_leases(api: ApiClient, namespace: str, uid: str) -> list[str]:
    """Delete the leases in ``namespace`` the Transaction ``uid`` still holds; their names."""
    return await asyncio.to_thread(_release_leases, k8s.CoordinationV1Api(api), namespace, uid)


def _release_leases(coordination: k8s.CoordinationV1Api, namespace: str, uid: str) -> list[str]:
    found = coordination.list_namespaced_lease(
        namespace, label_selector=f"{HOLDER_UID_LABEL}={uid}"
    )
    released = []
    for lease in found.items:
        name = lease.metadata.name if lease.metadata else None
        if name and _release_one(coordination, namespace, name, uid, lease):
            released.append(name)
    return released


def _held_by(lease: k8s.V1Lease, uid: str) -> bool:
    """The holder identity is ``namespace/name/uid``: ours when it ends in the uid."""
    holder = lease.spec.holder_identity if lease.spec else None
    return holder is not None and holder.rpartition("/")[2] == uid


def _release_one(
    coordination: k8s.CoordinationV1Api, namespace: str, name: str, uid: str, lease: k8s.V1Lease
) -> bool:
    for _ in range(RELEASE_ATTEMPTS):
        if not _held_by(lease, uid):
            return False
        version = lease.metadata.resource_version if lease.metadata else None
        precondition = k8s.V1Preconditions(resource_version=version)
        try:
            coordination.delete_namespaced_lease(
                name, namespace, body=k8s.V1DeleteOptions(preconditions=precondition)
            )
            return True
        except ApiException as err:
            if err.status == 404:
                return False
            if err.status != 409:
                raise
        try:  # renewed or taken over meanwhile: look again
            lease = coordination.read_namespaced_lease(name, namespace)
        except ApiException as err:
            if err.status == 404:
                return False
            raise
    return False
