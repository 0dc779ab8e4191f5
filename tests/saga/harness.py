"""Drive transactions the way the bridge does, and read the cluster the way a user does."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any, cast

import yaml
from google.protobuf.json_format import MessageToJson
from kubernetes import client as k8s
from kubernetes import utils as k8s_utils
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle

from bridge.runs import start_transaction
from janus.contract.models import API_GROUP, API_VERSION, PLURAL, TransactionInput

LEASE_NAMESPACE = "janus-system"
EXAMPLES = Path(__file__).resolve().parents[2] / "deploy" / "examples"


def example(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((EXAMPLES / name).read_text()) if d]


class Harness:
    def __init__(self, api: ApiClient, temporal: Client, task_queue: str, namespace: str) -> None:
        self.api = api
        self.temporal = temporal
        self.task_queue = task_queue
        self.namespace = namespace
        self.core = k8s.CoreV1Api(api)
        self.apps = k8s.AppsV1Api(api)
        self.custom = k8s.CustomObjectsApi(api)

    # -- objects ---------------------------------------------------------------

    def create_objects(self, docs: list[dict[str, Any]]) -> None:
        for doc in docs:
            k8s_utils.create_from_dict(self.api, doc, namespace=self.namespace)  # type: ignore[no-untyped-call]

    def seed(self) -> None:
        """The seed objects; the account ``janus`` they give the namespace may exist
        already (every test namespace has one, see tests/accounts.py)."""
        for doc in example("seed-objects.yaml"):
            try:
                self.create_objects([doc])
            except k8s_utils.FailToCreateError as err:
                if doc["kind"] not in ("ServiceAccount", "RoleBinding") or any(
                    e.status != 409 for e in err.api_exceptions
                ):
                    raise

    def config_map(self, name: str) -> Any:
        return self._maybe(lambda: self.core.read_namespaced_config_map(name, self.namespace))

    def secret(self, name: str) -> Any:
        return self._maybe(lambda: self.core.read_namespaced_secret(name, self.namespace))

    def deployment(self, name: str) -> Any:
        return self._maybe(lambda: self.apps.read_namespaced_deployment(name, self.namespace))

    @staticmethod
    def _maybe(read: Any) -> Any:
        try:
            return read()
        except ApiException as err:
            if err.status == 404:
                return None
            raise

    def leases(self) -> list[Any]:
        """Leases held for this test's namespace's transactions."""
        items = k8s.CoordinationV1Api(self.api).list_namespaced_lease(LEASE_NAMESPACE).items
        return [
            lease
            for lease in items
            if lease.spec and (lease.spec.holder_identity or "").startswith(f"{self.namespace}/")
        ]

    # -- transactions ----------------------------------------------------------

    def create_transaction(self, manifest: dict[str, Any]) -> dict[str, Any]:
        created = self.custom.create_namespaced_custom_object(
            API_GROUP, API_VERSION, self.namespace, PLURAL, manifest
        )
        return cast(dict[str, Any], created)

    def transaction(self, name: str) -> dict[str, Any]:
        found = self.custom.get_namespaced_custom_object(
            API_GROUP, API_VERSION, self.namespace, PLURAL, name
        )
        return cast(dict[str, Any], found)

    async def start(self, manifest: dict[str, Any]) -> WorkflowHandle[Any, Any]:
        """Create the Transaction and start its workflow, as the bridge would."""
        created = self.create_transaction(manifest)
        txn = TransactionInput.from_resource(created)
        return await start_transaction(self.temporal, txn, task_queue=self.task_queue)

    async def run(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Run a transaction to its end; return the Transaction as the API server has it."""
        handle = await self.start(manifest)
        await finish(handle)
        return self.transaction(manifest["metadata"]["name"])

    async def wait_phase(self, name: str, phases: set[str], seconds: float = 60) -> dict[str, Any]:
        for _ in range(int(seconds * 10)):
            txn = self.transaction(name)
            if txn.get("status", {}).get("phase") in phases:
                return txn
            await asyncio.sleep(0.1)
        raise AssertionError(f"transaction {name} never reached {phases}: {txn.get('status')}")


async def finish(handle: WorkflowHandle[Any, Any]) -> None:
    """Wait for a workflow to close, whatever its outcome."""
    with contextlib.suppress(WorkflowFailureError):
        await handle.result()


async def how_it_closed(handle: WorkflowHandle[Any, Any]) -> str:
    """How the workflow closed, and its last failures: for an assertion's message."""
    described = await handle.describe()
    failures = [
        f"{event.event_id} {EventType.Name(event.event_type)}: {MessageToJson(event)[:600]}"
        async for event in handle.fetch_history_events()
        if "FAILED" in EventType.Name(event.event_type)
        or "TERMINATED" in EventType.Name(event.event_type)
        or "TIMED_OUT" in EventType.Name(event.event_type)
    ]
    status = described.status.name if described.status else "unknown"
    return f"workflow {status}; failures: {failures[-5:]}"


def transaction(name: str, *changes: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": "Transaction",
        "metadata": {"name": name},
        "spec": {"changes": list(changes), **spec},
    }


def change(
    kind: str,
    name: str,
    type_: str,
    content: dict[str, Any] | None = None,
    api_version: str = "v1",
    **target: Any,
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "target": {"apiVersion": api_version, "kind": kind, "name": name, **target},
        "type": type_,
    }
    if content is not None:
        item["content"] = content
    return item
