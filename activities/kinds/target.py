"""A change's target as the kinds act on it: its resource, its content, its identity's client."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.resource import Resource

from activities import ownership, redact
from activities.cluster import Cluster, get_object
from janus.contract.models import holds_secret
from janus.contract.operations import CHANGE_MARKER, Identity, ResolvedTarget

FIELD_MANAGER = ownership.FIELD_MANAGER


class TargetAccess:
    """A target's resource, its change's content, and the client of the transaction's identity.

    Every Secret it reads is remembered (``redact``), so no message it causes can
    carry the Secret's values out.
    """

    def __init__(
        self,
        cluster: Cluster,
        identity: Identity,
        target: ResolvedTarget,
        content: dict[str, Any] | None = None,
        *,
        key: bytes = b"",
    ) -> None:
        self.cluster = cluster
        self.target = target
        #: The fingerprint key (``activities.keys``).
        self.key = key
        self.content = content
        #: Called before every undo write: raises when the target's lease is not ours.
        self.fence: Callable[[], None] = lambda: None
        #: The target as its snapshot stored it (None: unknown, or it was absent).
        self.stored: Callable[[], dict[str, Any] | None] = lambda: None
        self.secret = holds_secret(target)
        if self.secret:
            redact.remember_content(content)
        self.dyn: DynamicClient = cluster.dynamic(identity)
        self.resource: Resource = cluster.resource(target.api_version, target.kind)

    def read(self) -> dict[str, Any] | None:
        obj = get_object(
            self.dyn, self.resource, self.target.name, self.target.namespace, self.target.describe()
        )
        if self.secret:
            redact.remember_secret(obj)
        return obj


def marker_of(obj: dict[str, Any] | None) -> str | None:
    """The change marker a write of Janus left on the object, if any."""
    if obj is None:
        return None
    annotations = obj.get("metadata", {}).get("annotations") or {}
    value = annotations.get(CHANGE_MARKER)
    return str(value) if value is not None else None


def deletion_pending(obj: dict[str, Any] | None) -> str:
    """How an object being deleted (held by finalizers) is going; '' for one that stays."""
    meta = (obj or {}).get("metadata") or {}
    if not meta.get("deletionTimestamp"):
        return ""
    held = ", ".join(meta.get("finalizers") or []) or "nothing"
    return f"being deleted since {meta['deletionTimestamp']}, held by finalizers: {held}"


def named_body(
    target: ResolvedTarget, content: dict[str, Any] | None, marker: str | None
) -> dict[str, Any]:
    """The change's content, named as its target and (for a real write) marked as ours."""
    body = copy.deepcopy(content or {})
    meta = body.setdefault("metadata", {})
    meta["name"] = target.name
    if target.namespace:
        meta["namespace"] = target.namespace
    if marker:
        meta["annotations"] = {**(meta.get("annotations") or {}), CHANGE_MARKER: marker}
    return body


def typed(body: dict[str, Any], target: ResolvedTarget) -> dict[str, Any]:
    """A whole object's body says its apiVersion and kind (a patch's need not)."""
    body.setdefault("apiVersion", target.api_version)
    body.setdefault("kind", target.kind)
    return body
