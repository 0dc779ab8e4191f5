"""Mirror the workflow's view onto the Transaction: status subresource and Events."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from kubernetes.client.exceptions import ApiException

from activities.cluster import Cluster, api_errors, api_message, translate
from activities.parallel import side_by_side
from janus.contract.errors import JanusError
from janus.contract.models import (
    API_GROUP,
    API_VERSION,
    KIND,
    PLURAL,
    STALE_STATUS_MESSAGE,
    TransactionRef,
)
from janus.contract.operations import MirrorStatusInput, PhaseEvent

_EVENT_MESSAGE_MAX = 1000

#: Status fields that go away again (``waiting``, once the lease is taken): sent as
#: null when unset, so the merge patch removes them from the stored status.
CLEARED_WHEN_UNSET = ("waiting",)

logger = logging.getLogger(__name__)


def mirror_status(cluster: Cluster, request: MirrorStatusInput) -> None:
    """Write the whole status (a merge patch of ``status``) and the phase's Event.

    A Transaction already deleted is not an error: its workflow still finishes.
    A status older than the stored one (a smaller ``sequence``: this is a delayed
    local activity, or a worker that lost its workflow task) is refused by the
    API server's rule and dropped: the newer writer has written its own.
    """
    ref = request.ref
    status = request.status.model_dump(by_alias=True, exclude_none=True, mode="json")
    for field in CLEARED_WHEN_UNSET:  # a merge patch keeps what it does not name
        status.setdefault(field, None)
    body = {"status": status}
    try:
        with api_errors(
            f"status of transaction {ref.namespace}/{ref.name}",
            rejected=JanusError,
            expected=(404, 422),
        ):
            cluster.custom.patch_namespaced_custom_object_status(
                API_GROUP, API_VERSION, ref.namespace, PLURAL, ref.name, body
            )
    except ApiException as err:
        if err.status == 404:
            return
        if err.status == 422 and STALE_STATUS_MESSAGE in api_message(err):
            logger.info(
                "%s/%s: status sequence %s is older than the stored one; dropped",
                ref.namespace,
                ref.name,
                request.status.sequence,
            )
            return
        raise translate(
            err, f"status of transaction {ref.namespace}/{ref.name}", rejected=JanusError
        ) from err
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
