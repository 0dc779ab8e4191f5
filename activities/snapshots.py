"""Snapshots: each target's state before the transaction, kept in the cluster.

The workflow's history carries only a reference (shard name and key), so a
transaction over many or large objects keeps a small history. Snapshots are
packed into shards well under the 1 MiB object limit.

They live in the system namespace (``janus-system``), where only Janus's
operators may read, never beside the Transaction: a snapshot holds a copy of
its target, and a user who may read ConfigMaps in the Transaction's namespace
may not be allowed to read the target (another namespace's object, a kind RBAC
hides from them). Owner references cannot cross namespaces, so each shard is
labelled with its Transaction's uid, and the bridge deletes them when it
releases the Transaction's finalizer. A Secret's snapshot only ever goes into a
Secret. A reference recorded by 0.1.0 names no namespace: it is read from the
Transaction's, where 0.1.0 kept it.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from activities.cluster import Cluster, api_errors
from activities.fingerprint import fingerprint
from janus.contract import metrics
from janus.contract.errors import JanusError
from janus.contract.models import API_GROUP, TransactionRef
from janus.contract.operations import TRANSACTION_UID_LABEL, Snapshot, SnapshotStoreKind

#: Room left in a shard for keys and metadata below the API server's 1 MiB limit.
MAX_SHARD_BYTES = 512 * 1024

TRANSACTION_NAMESPACE_LABEL = f"{API_GROUP}/transaction-namespace"


def stored_form(obj: dict[str, Any]) -> str:
    """The object as we keep it: managedFields are bulky and rebuilt by the server."""
    meta = {k: v for k, v in obj.get("metadata", {}).items() if k != "managedFields"}
    return json.dumps({**obj, "metadata": meta}, sort_keys=True, separators=(",", ":"))


def labels_of(ref: TransactionRef) -> dict[str, str]:
    return {
        TRANSACTION_UID_LABEL: ref.uid,
        TRANSACTION_NAMESPACE_LABEL: ref.namespace,
        "app.kubernetes.io/managed-by": "janus",
    }


#: The key beside ``<index>.json`` holding the snapshot's other managers' signatures.
MANAGERS_SUFFIX = ".managers.json"


@dataclass
class Earlier:
    """A target's state before the transaction (None: absent), with the other managers'
    signatures taken then (None when stored without them: only the fingerprint tells)."""

    obj: dict[str, Any] | None
    managers: dict[str, str] | None
    #: For an absent target: its collection's resourceVersion then ('' unknown).
    absent_at: str = ""


class SnapshotStore:
    def __init__(self, cluster: Cluster, namespace: str) -> None:
        self.cluster = cluster
        #: The system namespace every new shard goes to.
        self.namespace = namespace

    def save(
        self,
        ref: TransactionRef,
        states: list[tuple[int, bool, dict[str, Any] | None]],
        key: bytes,
        managers: dict[int, dict[str, str] | None] | None = None,
    ) -> list[Snapshot]:
        """Store ``(index, is_secret, object or None)`` states; return their references.

        Each state's other managers' signatures (``managers``) go beside it in the
        shard: a run started again by a reset finds them there (``earlier``)."""
        snapshots: dict[int, Snapshot] = {}
        signed = managers or {}
        for kind in SnapshotStoreKind:
            secret = kind == SnapshotStoreKind.SECRET
            present = [(i, o) for i, s, o in states if o is not None and s == secret]
            for shard in _shards(present):
                name = f"janus-snap-{ref.uid}-{shard[0][0]}" + ("-secret" if secret else "")
                data = {f"{index}.json": text for index, text in shard}
                for index, _text in shard:
                    if signed.get(index) is not None:
                        data[f"{index}{MANAGERS_SUFFIX}"] = json.dumps(
                            signed[index], sort_keys=True
                        )
                self._write(ref, kind, name, data)
                for index, _text in shard:
                    snapshots[index] = Snapshot(
                        index=index,
                        exists=True,
                        store_kind=kind,
                        store_name=name,
                        store_key=f"{index}.json",
                        store_namespace=self.namespace,
                    )
        metrics.SNAPSHOT_OPERATIONS.labels("take", "succeeded").inc(len(states))
        for index, _secret, obj in states:
            if obj is None:
                snapshots[index] = Snapshot(index=index, exists=False)
            else:
                meta = obj["metadata"]
                snap = snapshots[index]
                snap.resource_version, snap.uid = meta["resourceVersion"], meta["uid"]
                snap.fingerprint = fingerprint(obj, key)
        return [snapshots[i] for i, _s, _o in states]

    def earlier(self, ref: TransactionRef, index: int, secret: bool) -> Earlier | None:
        """The state an earlier run of this Transaction stored for change ``index``.

        A reset (``temporal workflow reset``) starts the same Transaction again, same
        uid, after its changes may have been applied: the state to restore is the one
        the first run stored, still here unless the Transaction was deleted. Shards
        are found by the uid label; when several hold the index (a later run packed
        them differently), the one written last (highest resourceVersion) wins."""
        selector = f"{TRANSACTION_UID_LABEL}={ref.uid}"
        where = f"snapshots of transaction {ref.uid} in {self.namespace}"
        found: list[tuple[int, dict[str, str]]] = []
        with api_errors(where, rejected=JanusError):
            if secret:
                listed: Any = self.cluster.core.list_namespaced_secret(
                    self.namespace, label_selector=selector
                )
            else:
                listed = self.cluster.core.list_namespaced_config_map(
                    self.namespace, label_selector=selector
                )
        for item in listed.items:
            data = dict(item.data or {})
            if secret:
                data = {k: base64.b64decode(v).decode() for k, v in data.items()}
            if f"{index}.json" in data:
                found.append((int(item.metadata.resource_version or 0), data))
        if not found:
            metrics.SNAPSHOT_OPERATIONS.labels("reuse", "lost").inc()
            return None
        metrics.SNAPSHOT_OPERATIONS.labels("reuse", "succeeded").inc()
        _rv, data = max(found, key=lambda entry: entry[0])
        signed = data.get(f"{index}{MANAGERS_SUFFIX}")
        return Earlier(
            obj=json.loads(data[f"{index}.json"]),
            managers=json.loads(signed) if signed is not None else None,
        )

    def load(self, ref: TransactionRef, snapshot: Snapshot) -> dict[str, Any]:
        """The stored object of a snapshot of an existing target."""
        namespace = snapshot.store_namespace or ref.namespace
        where = f"snapshot {namespace}/{snapshot.store_name}"
        with _counted("load"), api_errors(where, rejected=JanusError):
            if snapshot.store_kind == SnapshotStoreKind.SECRET:
                secret = self.cluster.core.read_namespaced_secret(snapshot.store_name, namespace)
                text = base64.b64decode((secret.data or {})[snapshot.store_key]).decode()
            else:
                cm = self.cluster.core.read_namespaced_config_map(snapshot.store_name, namespace)
                text = (cm.data or {})[snapshot.store_key]
        loaded: dict[str, Any] = json.loads(text)
        return loaded

    def _write(
        self, ref: TransactionRef, kind: SnapshotStoreKind, name: str, data: dict[str, str]
    ) -> None:
        """Create the shard, or overwrite one a crashed attempt left (same leases, same state)."""
        meta = k8s.V1ObjectMeta(name=name, namespace=self.namespace, labels=labels_of(ref))
        core = self.cluster.core
        body: k8s.V1Secret | k8s.V1ConfigMap
        if kind == SnapshotStoreKind.SECRET:
            encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
            body = k8s.V1Secret(metadata=meta, type="Opaque", data=encoded)
            create: Any = core.create_namespaced_secret
            replace: Any = core.replace_namespaced_secret
        else:
            body = k8s.V1ConfigMap(metadata=meta, data=data)
            create, replace = core.create_namespaced_config_map, core.replace_namespaced_config_map
        with (
            _counted("store"),
            api_errors(f"snapshot {self.namespace}/{name}", rejected=JanusError),
        ):
            try:
                create(self.namespace, body)
            except ApiException as err:
                if err.status != 409:
                    raise
                replace(name, self.namespace, body)


@contextlib.contextmanager
def _counted(operation: str) -> Iterator[None]:
    """Count one snapshot operation, succeeded or failed (then the error goes on)."""
    try:
        yield
    except Exception:
        metrics.SNAPSHOT_OPERATIONS.labels(operation, "failed").inc()
        raise
    metrics.SNAPSHOT_OPERATIONS.labels(operation, "succeeded").inc()


def _shards(entries: list[tuple[int, dict[str, Any]]]) -> list[list[tuple[int, str]]]:
    """Pack stored forms into shards of at most MAX_SHARD_BYTES (one big object alone)."""
    shards: list[list[tuple[int, str]]] = []
    size = 0
    for index, obj in entries:
        text = stored_form(obj)
        if not shards or size + len(text) > MAX_SHARD_BYTES:
            shards.append([])
            size = 0
        shards[-1].append((index, text))
        size += len(text)
    return shards
