"""Mirror the workflow's view onto the Transaction: status subresource and Events."""

from __future__ import annotations

import datetime as dt
from typing import Any

from kubernetes.client.exceptions import ApiException

from activities.cluster import Cluster, api_errors
from activities.parallel import side_by_side
from janus.errors import JanusError
from janus.models import API_GROUP, API_VERSION, KIND, PLURAL, TransactionRef
from janus.operations import MirrorStatusInput, PhaseEvent

_EVENT_MESSAGE_MAX = 1000


def mirror_status(cluster: Cluster, request: MirrorStatusInput) -> None:
    """Write the whole status (a merge patch of ``status``) and the phase's Event.

    A Transaction already deleted is not an error: its workflow still finishes.
    """
    ref = request.ref
    body = {"status": request.status.model_dump(by_alias=True, exclude_none=True, mode="json")}
    try:
        with api_errors(
            f"status of transaction {ref.namespace}/{ref.name}",
            rejected=JanusError,
            expected=(404,),
        ):
            cluster.custom.patch_namespaced_custom_object_status(
                API_GROUP, API_VERSION, ref.namespace, PLURAL, ref.name, body
            )
    except ApiException as err:
        if err.status != 404:
            raise
        return
    side_by_side(lambda event: emit_event(cluster, ref, event), request.events)


def emit_event(cluster: Cluster, ref: TransactionRef, event: PhaseEvent) -> None:
    """One Event per phase, named after it, so a repeated call creates nothing new."""
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    body: dict[str, Any] = {
        "metadata": {
            "name": f"{ref.name}.{ref.uid[:8]}.{event.phase.value.lower()}",
            "namespace": ref.namespace,
        },
        "involvedObject": {
            "apiVersion": f"{API_GROUP}/{API_VERSION}",
            "kind": KIND,
            "name": ref.name,
            "namespace": ref.namespace,
            "uid": ref.uid,
        },
        "reason": event.reason,
        "message": event.message[:_EVENT_MESSAGE_MAX],
        "type": "Warning" if event.warning else "Normal",
        "source": {"component": "janus"},
        "reportingComponent": "janus",
        "reportingInstance": "janus-worker",
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
    try:
        cluster.core.create_namespaced_event(ref.namespace, body)  # type: ignore[arg-type]
    except ApiException as err:
        if err.status not in (409, 404, 403):
            raise
