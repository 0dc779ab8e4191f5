"""The two status writes the bridge makes; every other status write is the workflow's.

1. ``Pending`` with the workflow id and its Temporal UI link, written *before* the
   workflow starts, and only while the Transaction has no status. Written after
   the start instead, it could land on top of the workflow's first own write and
   move the phase backwards.
2. A final status for a Transaction whose workflow closed without one reaching
   the custom resource (terminated by an operator, or its last mirror lost), or
   that Temporal no longer knows (past retention), so no Transaction stays
   non-terminal forever.

Both writes carry the resourceVersion the decision was based on: if the
Transaction changed meanwhile (the workflow wrote), the API server refuses with
409 and the bridge decides again on the fresh object.
"""

from __future__ import annotations

from typing import Any, cast

from kubernetes import client as k8s
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from janus.contract.models import (
    API_GROUP,
    API_VERSION,
    PLURAL,
    Phase,
    Summary,
    TransactionInput,
    TransactionRef,
    TransactionStatus,
)

CONFLICT_RETRIES = 3


class StatusChanged(Exception):
    """The Transaction changed while the bridge decided what to write; decide again."""


def phase_of(obj: dict[str, Any]) -> Phase | None:
    """The phase a Transaction is in; None before anyone wrote a status."""
    raw = (obj.get("status") or {}).get("phase")
    return Phase(raw) if raw else None


def status_of(obj: dict[str, Any]) -> TransactionStatus | None:
    """The stored status as the models read it; None when absent or unreadable."""
    raw = obj.get("status")
    if not isinstance(raw, dict) or not raw.get("phase"):
        return None
    try:
        return TransactionStatus.model_validate(raw)
    except ValidationError:
        return None


def pending_status(txn: TransactionInput, workflow_id: str) -> TransactionStatus:
    return TransactionStatus(
        phase=Phase.PENDING,
        message="Starting the workflow",
        summary=Summary(total=len(txn.spec.changes)),
        workflow_id=workflow_id,
        temporal_ui=txn.temporal_ui,
        observed_generation=txn.generation,
    )


def mark_pending(api: ApiClient, txn: TransactionInput) -> bool:
    """Write the Pending status unless one exists; False when the Transaction has one or is gone."""
    status = pending_status(txn, txn.ref.workflow_id())
    for _ in range(CONFLICT_RETRIES):
        current = read(api, txn.ref)
        if current is None or phase_of(current) is not None:
            return False
        try:
            write(api, txn.ref, status, resource_version=current["metadata"]["resourceVersion"])
            return True
        except StatusChanged:
            continue
    raise StatusChanged(f"transaction {txn.ref.namespace}/{txn.ref.name} keeps changing")


def read(api: ApiClient, ref: TransactionRef) -> dict[str, Any] | None:
    try:
        obj = cast(
            dict[str, Any],
            k8s.CustomObjectsApi(api).get_namespaced_custom_object(
                API_GROUP, API_VERSION, ref.namespace, PLURAL, ref.name
            ),
        )
    except ApiException as err:
        if err.status == 404:
            return None
        raise
    if obj["metadata"]["uid"] != ref.uid:
        return None  # deleted and re-created under the same name: not ours
    return obj


def write(
    api: ApiClient, ref: TransactionRef, status: TransactionStatus, *, resource_version: str
) -> None:
    """Merge-patch the status subresource, if the object is still at ``resource_version``."""
    body = {
        "metadata": {"resourceVersion": resource_version},
        "status": status.model_dump(by_alias=True, exclude_none=True, mode="json"),
    }
    try:
        k8s.CustomObjectsApi(api).patch_namespaced_custom_object_status(
            API_GROUP, API_VERSION, ref.namespace, PLURAL, ref.name, body
        )
    except ApiException as err:
        if err.status == 409:
            raise StatusChanged(str(err.reason)) from err
        raise
