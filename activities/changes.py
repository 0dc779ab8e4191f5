"""Prepare, apply and undo one change: the only code that writes a transaction's targets.

Each function is safe to run twice, and safe after a crash between the API call
and the recording of its result:

- *apply* writes a marker annotation (``backup.janus.io/change``) with every
  create, update and patch, and carries the snapshot's resourceVersion as a
  precondition; a repeated apply that finds its own marker returns the earlier
  result instead of writing again, and one that finds a stranger's write stops
  with a conflict instead of overwriting it.
- *undo* restores the snapshot only while the target is as we left it; a
  target already back to its snapshot counts as restored; a target someone else
  changed after us is reported, never overwritten; and when our action failed
  (so it never landed: every write of ours carries the marker), a change someone
  else made there is theirs, with nothing of ours to undo.
"""

from __future__ import annotations

import copy
from typing import Any

from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.resource import Resource

from activities import redact
from activities.cluster import Cluster, api_errors, get_object
from activities.fingerprint import fingerprint, same
from janus.errors import ChangeRejected, InvalidTransaction, TargetConflict
from janus.models import ChangeType, TransactionRef, group_of
from janus.operations import (
    CHANGE_MARKER,
    ApplyResult,
    Identity,
    ResolvedTarget,
    Snapshot,
    UndoOutcome,
    UndoResult,
    UndoStep,
    marker_for,
)

FIELD_MANAGER = "janus"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
_SERVER_SET = (
    "resourceVersion",
    "uid",
    "creationTimestamp",
    "generation",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
)


def is_secret(target: ResolvedTarget) -> bool:
    """A core-group Secret; targets are canonical (``activities.resolve``)."""
    return group_of(target.api_version) == "" and target.kind == "Secret"


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
        self.target = target
        #: The fingerprint key (``activities.keys``).
        self.key = key
        self.content = content
        self.secret = is_secret(target)
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

    def write(
        self, body: dict[str, Any] | None, *, dry_run: bool = False, rv: str = "", uid: str = ""
    ) -> dict[str, Any] | None:
        """Perform the change's action; return the object after it (None after Delete)."""
        t, dyn, res = self.target, self.dyn, self.resource
        options: dict[str, Any] = {"dry_run": "All"} if dry_run else {}
        if t.change_type != ChangeType.DELETE:
            options["field_manager"] = FIELD_MANAGER
        if t.change_type == ChangeType.CREATE:
            result = dyn.create(res, body=body, namespace=t.namespace, **options)
        elif t.change_type == ChangeType.UPDATE:
            result = dyn.replace(res, body=body, name=t.name, namespace=t.namespace, **options)
        elif t.change_type == ChangeType.PATCH:
            kind = STRATEGIC_MERGE_PATCH if t.builtin else MERGE_PATCH
            result = dyn.patch(
                res, body=body, name=t.name, namespace=t.namespace, content_type=kind, **options
            )
        else:
            # With a body, the API server reads DeleteOptions from it and ignores the
            # dryRun query parameter: a dry run must say so in the body.
            options_body: dict[str, Any] = {
                "preconditions": {"resourceVersion": rv, "uid": uid} if rv else {}
            }
            if dry_run:
                options_body["dryRun"] = ["All"]
            dyn.delete(res, name=t.name, namespace=t.namespace, body=options_body, **options)
            return None
        written: dict[str, Any] = result.to_dict()
        return written


def action_body(
    target: ResolvedTarget, content: dict[str, Any] | None, marker: str | None, rv: str
) -> dict[str, Any] | None:
    """What to send for the action: the content, named, marked and preconditioned."""
    if target.change_type == ChangeType.DELETE:
        return None
    body = copy.deepcopy(content or {})
    meta = body.setdefault("metadata", {})
    meta["name"] = target.name
    if target.namespace:
        meta["namespace"] = target.namespace
    if target.change_type != ChangeType.PATCH:
        body.setdefault("apiVersion", target.api_version)
        body.setdefault("kind", target.kind)
    if marker:
        meta["annotations"] = {**(meta.get("annotations") or {}), CHANGE_MARKER: marker}
    if rv and target.change_type != ChangeType.CREATE:
        meta["resourceVersion"] = rv
    return body


def marker_of(obj: dict[str, Any] | None) -> str | None:
    if obj is None:
        return None
    annotations = obj.get("metadata", {}).get("annotations") or {}
    value = annotations.get(CHANGE_MARKER)
    return str(value) if value is not None else None


def recreatable(stored: dict[str, Any]) -> dict[str, Any]:
    """A snapshot of a deleted object, fit to create again."""
    body = {k: v for k, v in stored.items() if k != "status"}
    body["metadata"] = {k: v for k, v in stored["metadata"].items() if k not in _SERVER_SET}
    return body


def replacement(stored: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """A snapshot as an update of the current object (guarded by its resourceVersion)."""
    body = copy.deepcopy(stored)
    body["metadata"] = {
        k: v for k, v in stored["metadata"].items() if k not in ("managedFields", "generation")
    }
    body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
    return body


def apply_change(access: TargetAccess, ref: TransactionRef, snap: Snapshot) -> ApplyResult:
    """Run the action once, guarded by the target's resourceVersion.

    The first try writes at once, preconditioned on the snapshot's resourceVersion
    (a Create on the object's absence): when nobody wrote since the snapshot,
    that is the only request. A conflict or a missing object means someone did,
    or an earlier attempt of ours: then read the target and decide.
    """
    marker = marker_for(ref, access.target.index)
    try:
        with api_errors(access.target.describe(), rejected=ChangeRejected, expected=(404, 409)):
            written = access.write(
                action_body(access.target, access.content, marker, snap.resource_version),
                rv=snap.resource_version,
                uid=snap.uid,
            )
    except ApiException as err:
        if err.status not in (404, 409):
            raise
        return _apply_after_reading(access, marker, snap)
    return _result(written, access.key)


def _apply_after_reading(access: TargetAccess, marker: str, snap: Snapshot) -> ApplyResult:
    """The target moved since the snapshot: our own earlier write, a status update
    (the action is still due), or someone else's change (a conflict)."""
    target = access.target
    current = access.read()
    if current is not None and marker_of(current) == marker:
        return _result(current, access.key, already_applied=True)
    if target.change_type == ChangeType.DELETE and current is None and snap.exists:
        return ApplyResult(resource_version="", already_applied=True)
    _check_unchanged(target, snap, current, access.key)
    rv = current["metadata"]["resourceVersion"] if current else ""
    body = action_body(target, access.content, marker, rv)
    try:
        with api_errors(target.describe(), rejected=ChangeRejected):
            written = access.write(body, rv=rv, uid=snap.uid)
    except ApiException as err:
        if err.status != 409:
            raise
        return _settle_conflict(access, target, marker, err)
    return _result(written, access.key)


def _result(
    obj: dict[str, Any] | None, key: bytes, *, already_applied: bool = False
) -> ApplyResult:
    rv = obj["metadata"]["resourceVersion"] if obj else ""
    return ApplyResult(
        resource_version=rv, fingerprint=fingerprint(obj, key), already_applied=already_applied
    )


def _check_unchanged(
    target: ResolvedTarget, snap: Snapshot, current: dict[str, Any] | None, key: bytes
) -> None:
    """Refuse to write over a change made since the snapshot (status updates don't count)."""
    if (current is not None) == snap.exists and same(current, snap.fingerprint, key):
        return
    seen = f"resourceVersion {snap.resource_version}" if snap.exists else "absent"
    now = f"resourceVersion {current['metadata']['resourceVersion']}" if current else "absent"
    raise TargetConflict(
        f"{target.describe()} was changed by someone else after the snapshot "
        f"({seen} then, {now} now); not overwriting it"
    )


def _settle_conflict(
    access: TargetAccess, target: ResolvedTarget, marker: str, err: ApiException
) -> ApplyResult:
    """A 409: our own earlier write (fine) or someone else's (a conflict)."""
    current = access.read()
    if current is not None and marker_of(current) == marker:
        return _result(current, access.key, already_applied=True)
    raise TargetConflict(
        f"{target.describe()} was changed by someone else while committing; not overwriting it"
    ) from err


def undo_change(
    access: TargetAccess, ref: TransactionRef, request: UndoStep, stored: dict[str, Any] | None
) -> UndoResult:
    """Put the target back to its snapshot, unless someone else wrote after us."""
    target = request.target
    current = access.read()
    ours = marker_of(current) == marker_for(ref, target.index)
    if target.change_type == ChangeType.CREATE:
        return _undo_create(access, ref, request, current, ours)
    assert stored is not None, "Update, Patch and Delete always have a snapshot"
    if current is None:
        if request.action_failed and target.change_type != ChangeType.DELETE:
            return _never_ours()
        return _recreate(access, ref, request, stored)
    if ours:
        if not _untouched_since(request, current, access.key):
            return _modified_by_others(target, current)
        with api_errors(f"undo of {target.describe()}", rejected=ChangeRejected):
            access.dyn.replace(
                access.resource,
                body=replacement(stored, current),
                name=target.name,
                namespace=target.namespace,
                field_manager=FIELD_MANAGER,
            )
        return UndoResult(outcome=UndoOutcome.RESTORED)
    if request.action_failed:
        # Our write never landed (it would carry our marker): whatever is there is
        # the snapshot, or someone else's change made since. Nothing of ours to undo.
        return _never_ours()
    if same(current, request.snapshot.fingerprint, access.key):
        return UndoResult(outcome=UndoOutcome.RESTORED, message="already as before")
    return _modified_by_others(target, current)


def _never_ours() -> UndoResult:
    return UndoResult(
        outcome=UndoOutcome.NOTHING_TO_UNDO,
        message="this transaction never changed it; left as it is",
    )


def _untouched_since(request: UndoStep, current: dict[str, Any], key: bytes) -> bool:
    """Nobody changed what a user sees since our write (a status update is fine)."""
    applied = request.applied
    return applied is None or same(current, applied.fingerprint, key)


def _undo_create(
    access: TargetAccess,
    ref: TransactionRef,
    request: UndoStep,
    current: dict[str, Any] | None,
    ours: bool,
) -> UndoResult:
    target = request.target
    if current is None:
        return UndoResult(outcome=UndoOutcome.NOTHING_TO_UNDO, message="not there")
    if not ours:
        return UndoResult(
            outcome=UndoOutcome.NOTHING_TO_UNDO,
            message="the object there was not created by this transaction",
        )
    if not _untouched_since(request, current, access.key):
        return _modified_by_others(target, current)
    meta = current["metadata"]
    try:
        with api_errors(f"undo of {target.describe()}", rejected=ChangeRejected, expected=(404,)):
            access.dyn.delete(
                access.resource,
                name=target.name,
                namespace=target.namespace,
                body={
                    "preconditions": {
                        "resourceVersion": meta["resourceVersion"],
                        "uid": meta["uid"],
                    }
                },
            )
    except ApiException as err:
        if err.status == 404:  # gone meanwhile: nothing left to remove
            return UndoResult(outcome=UndoOutcome.RESTORED)
        if err.status == 409:  # written since we looked: decide again
            return undo_change(access, ref, request, None)
        raise
    return UndoResult(outcome=UndoOutcome.RESTORED)


def _recreate(
    access: TargetAccess, ref: TransactionRef, request: UndoStep, stored: dict[str, Any]
) -> UndoResult:
    target = request.target
    if target.change_type != ChangeType.DELETE:
        return UndoResult(
            outcome=UndoOutcome.MODIFIED_BY_OTHERS,
            message="deleted by someone else after this transaction changed it; not recreating",
        )
    try:
        with api_errors(f"undo of {target.describe()}", rejected=ChangeRejected):
            access.dyn.create(
                access.resource,
                body=recreatable(stored),
                namespace=target.namespace,
                field_manager=FIELD_MANAGER,
            )
    except ApiException as err:
        if err.status == 409:  # recreated meanwhile (by an earlier attempt, or someone else)
            return undo_change(access, ref, request, stored)
        raise
    return UndoResult(outcome=UndoOutcome.RESTORED)


def _modified_by_others(target: ResolvedTarget, current: dict[str, Any]) -> UndoResult:
    rv = current["metadata"]["resourceVersion"]
    return UndoResult(
        outcome=UndoOutcome.MODIFIED_BY_OTHERS,
        message=f"changed by someone else after this transaction (now resourceVersion {rv}); "
        "left as they wrote it, not restored",
    )


def refuse_written_by(
    ref: TransactionRef, target: ResolvedTarget, current: dict[str, Any] | None
) -> None:
    """A snapshot is taken before the transaction's first write, never after: a stale
    attempt (a worker that stalled past its workflow task) must not record our own
    write as the state to restore."""
    marker = marker_of(current)
    if marker is not None and marker.startswith(f"{ref.uid}/"):
        raise TargetConflict(
            f"{target.describe()} already carries a write of this transaction; "
            "not snapshotting it again"
        )


def verify_and_dry_run(access: TargetAccess, snap_current: dict[str, Any] | None) -> None:
    """Before any write: the target is in the state the change needs, and the server
    accepts the change (server-side dry run, as the transaction's identity)."""
    target = access.target
    exists = snap_current is not None
    if target.change_type == ChangeType.CREATE and exists:
        raise InvalidTransaction(
            f"{target.describe()}: already exists; use Update or Patch, or delete it first"
        )
    if target.change_type != ChangeType.CREATE and not exists:
        raise InvalidTransaction(
            f"{target.describe()}: not found; {target.change_type.value} needs an existing "
            "object (use Create to make a new one)"
        )
    rv = snap_current["metadata"]["resourceVersion"] if snap_current else ""
    uid = snap_current["metadata"]["uid"] if snap_current else ""
    with api_errors(target.describe(), rejected=InvalidTransaction):
        access.write(action_body(target, access.content, None, rv), dry_run=True, rv=rv, uid=uid)
