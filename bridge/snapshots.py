"""Delete a Transaction's snapshots when its finalizer is released.

Snapshots live in the system namespace (see ``activities.snapshots``), where
owner references to a Transaction in another namespace cannot reach: the
garbage collector would never remove them. So the bridge, which holds every
Transaction's finalizer, deletes the shards labelled with its uid just before it
lets the Transaction go. A shard written by 0.1.0 lives beside its Transaction,
owned by it, and goes with it as before.
"""

from __future__ import annotations

import asyncio

from kubernetes import client as k8s
from kubernetes.client import ApiClient

from janus.operations import TRANSACTION_UID_LABEL


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
