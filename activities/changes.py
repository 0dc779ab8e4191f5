"""Prepare, apply and undo one change: the only code that writes a transaction's targets.

Each function is safe to run twice, and safe after a crash between the API call
and the recording of its result:

- *apply* writes a marker annotation (``backup.janus.io/change``) with every
  create, update and patch, and carries the snapshot's resourceVersion as a
  precondition; a repeated apply that finds its own marker returns the earlier
  result instead of writing again, and one that finds a stranger's write stops
  with a conflict instead of overwriting it.
- a *Delete* carries no marker (the object goes), so before its first request
  it leaves a note (a ConfigMap ``janus-del-<uid>-<index>`` beside the
  snapshots, in the system namespace): an object found gone with no note was
  deleted by someone else, before our Delete ran; that is a conflict, and its
  undo recreates nothing.
- *undo* restores the snapshot only while nobody else wrote the target after us
  (``ownership``: other field managers' entries since the snapshot; the
  fingerprint for snapshots without them); a target already back to its
  snapshot counts as restored; a target someone else changed after us is
  reported, never overwritten; and when our action failed (so it never landed:
  every write of ours carries the marker), a change someone else made there is
  theirs, with nothing of ours to undo. The restore keeps what controllers own:
  finalizers others added, the status of a custom resource without a status
  subresource, and the replicas an autoscaler set through ``scale``.
- every undo write is fenced by the target's lease (``fence``), when the
  workflow asks for it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.resource import Resource

from activities import ownership, redact
from activities.cluster import Cluster, api_errors, get_object
from activities.fingerprint import fingerprint, same
from activities.snapshots import labels_of as snapshot_labels
from janus.contract.errors import ChangeRejected, InvalidTransaction, JanusError, TargetConflict
from janus.contract.models import ChangeType, TransactionRef, group_of
from janus.contract.operations import (
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

FIELD_MANAGER = ownership.FIELD_MANAGER
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
        self.cluster = cluster
        self.target = target
        #: The fingerprint key (``activities.keys``).
        self.key = key
        self.content = content
        #: Called before every undo write: raises when the target's lease is not ours.
        self.fence: Callable[[], None] = lambda: None
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


def apply_change(
    access: TargetAccess,
    ref: TransactionRef,
    snap: Snapshot,
    stored: Callable[[], dict[str, Any] | None] = lambda: None,
) -> ApplyResult:
    """Run the action once, guarded by the target's resourceVersion.

    The first try writes at once, preconditioned on the snapshot's resourceVersion
    (a Create on the object's absence): when nobody wrote since the snapshot,
    that is the only request. A conflict or a missing object means someone did,
    or an earlier attempt of ours: then read the target and decide (``stored``
    loads the snapshot, for what an Update must keep of a bookkeeping write).
    """
    marker = marker_for(ref, access.target.index)
    noted_before = False
    if access.target.change_type == ChangeType.DELETE:
        noted_before = note_deletion(access, ref)
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
        return _apply_after_reading(access, ref, marker, snap, noted_before, stored)
    return _result(written, access.key)


def _apply_after_reading(
    access: TargetAccess,
    ref: TransactionRef,
    marker: str,
    snap: Snapshot,
    noted_before: bool,
    stored: Callable[[], dict[str, Any] | None],
) -> ApplyResult:
    """The target moved since the snapshot: our own earlier write, a status update
    (the action is still due), or someone else's change (a conflict)."""
    target = access.target
    current = access.read()
    if current is not None and marker_of(current) == marker:
        return _result(current, access.key, already_applied=True)
    if target.change_type == ChangeType.DELETE and current is None and snap.exists:
        if noted_before:  # an earlier attempt of ours was deleting it
            return ApplyResult(resource_version="", already_applied=True)
        forget_deletion(access, ref)
        raise TargetConflict(
            f"{target.describe()} was deleted by someone else after the snapshot, before "
            "this transaction's Delete ran; not counting it as ours"
        )
    _check_unchanged(target, snap, current, access.key)
    rv = current["metadata"]["resourceVersion"] if current else ""
    body = action_body(target, access.content, marker, rv)
    if body is not None and current is not None and target.change_type == ChangeType.UPDATE:
        _keep_added_finalizers(body, current, stored())
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
        if target.change_type == ChangeType.DELETE:
            return _undo_delete(access, ref, request, stored)
        if request.action_failed:
            return _never_ours()
        return _recreate(access, ref, request, stored)
    if ours:
        writes = ownership.since(request.snapshot.managers, current)
        if _written_by_others(request, current, writes, access.key):
            return _modified_by_others(target, current, writes.conflicting)
        access.fence()
        with api_errors(f"undo of {target.describe()}", rejected=ChangeRejected):
            access.dyn.replace(
                access.resource,
                body=restoration(stored, current, writes),
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


def restoration(
    stored: dict[str, Any], current: dict[str, Any], writes: ownership.Writes
) -> dict[str, Any]:
    """The snapshot as an update of the current object, keeping what controllers own.

    Finalizers someone else added since the snapshot stay (removing one would let
    an object its controller still guards go); so does the status, unless our own
    write set it (a custom resource without a status subresource keeps its
    controller's report; with one, the API server ignores it anyway); and the
    replicas an autoscaler set through the scale subresource."""
    body = replacement(stored, current)
    meta, before = body["metadata"], list(stored["metadata"].get("finalizers") or [])
    finalizers = before + finalizers_added(before, current)
    if finalizers:
        meta["finalizers"] = finalizers
    else:
        meta.pop("finalizers", None)
    if "status" in current and not ownership.owned_by_janus(current, "status"):
        body["status"] = current["status"]
    replicas = (current.get("spec") or {}).get("replicas")
    if writes.scaled and replicas is not None:
        body.setdefault("spec", {})["replicas"] = replicas
    return body


def finalizers_added(before: list[str], current: dict[str, Any]) -> list[str]:
    """The finalizers another manager put on ``current`` that ``before`` lacks, in order."""
    added = [f for f in ownership.foreign_finalizers(current) if f not in before]
    return [f for f in (current["metadata"].get("finalizers") or []) if f in added]


def _keep_added_finalizers(
    body: dict[str, Any], current: dict[str, Any], stored: dict[str, Any] | None
) -> None:
    """An Update sent over an object whose finalizers others changed since the snapshot
    (bookkeeping: no conflict) keeps the ones they added; the content replaces the rest.

    Removing a finalizer a controller added mid-transaction would let an object it
    still guards go. Without the snapshot's list, every finalizer another manager
    owns counts as added (none is dropped)."""
    before = list(((stored or {}).get("metadata") or {}).get("finalizers") or [])
    meta = body["metadata"]
    wanted = list(meta.get("finalizers") or [])
    kept = wanted + [f for f in finalizers_added(before, current) if f not in wanted]
    if kept:
        meta["finalizers"] = kept


def _deletion_note_name(ref: TransactionRef, target: ResolvedTarget) -> str:
    return f"janus-del-{ref.uid}-{target.index}"


_NOT_OURS = "notOurs"


def _note_namespace(access: TargetAccess) -> str:
    """Notes live beside the snapshots, in the system namespace (the lease namespace),
    labelled with the Transaction's uid: the bridge deletes them with the snapshots."""
    return access.target.lease_namespace


def _deletion_note(access: TargetAccess, ref: TransactionRef) -> k8s.V1ConfigMap:
    return k8s.V1ConfigMap(
        metadata=k8s.V1ObjectMeta(
            name=_deletion_note_name(ref, access.target),
            namespace=_note_namespace(access),
            labels=snapshot_labels(ref),
        ),
        data={"target": access.target.key()},
    )


def note_deletion(access: TargetAccess, ref: TransactionRef) -> bool:
    """Before our Delete's first request: note it. Return whether an earlier attempt had."""
    name, namespace = _deletion_note_name(ref, access.target), _note_namespace(access)
    try:
        with api_errors(f"deletion note {namespace}/{name}", rejected=JanusError, expected=(409,)):
            access.cluster.core.create_namespaced_config_map(namespace, _deletion_note(access, ref))
    except ApiException:  # an earlier attempt noted it, unless it found it not ours
        return deletion_noted(access, ref)
    return False


def deletion_noted(access: TargetAccess, ref: TransactionRef) -> bool:
    """Whether our Delete had started (and was not found to be someone else's)."""
    name, namespace = _deletion_note_name(ref, access.target), _note_namespace(access)
    try:
        with api_errors(f"deletion note {namespace}/{name}", rejected=JanusError, expected=(404,)):
            note = access.cluster.core.read_namespaced_config_map(name, namespace)
    except ApiException:
        return False
    return (note.data or {}).get(_NOT_OURS) is None


def forget_deletion(access: TargetAccess, ref: TransactionRef) -> None:
    """Our Delete found the object gone, deleted by someone else: it was never ours.

    The note stays, saying so; the bridge deletes it with the snapshots."""
    name, namespace = _deletion_note_name(ref, access.target), _note_namespace(access)
    body = _deletion_note(access, ref)
    body.data = {**(body.data or {}), _NOT_OURS: "deleted by someone else first"}
    with api_errors(f"deletion note {namespace}/{name}", rejected=JanusError):
        access.cluster.core.replace_namespaced_config_map(name, namespace, body)


def _undo_delete(
    access: TargetAccess, ref: TransactionRef, request: UndoStep, stored: dict[str, Any]
) -> UndoResult:
    """A Delete's target is gone: recreate it only if the delete was ours.

    Ours for sure when our delete request returned (a recorded result that did not
    find it gone); else ours only if our Delete had started (its note is there).
    An object someone else deleted before our Delete ran stays deleted."""
    applied = request.applied
    certain = applied is not None and not applied.already_applied
    if certain or deletion_noted(access, ref):
        return _recreate(access, ref, request, stored)
    return UndoResult(
        outcome=UndoOutcome.NOTHING_TO_UNDO,
        foreign=True,
        message="deleted by someone else before this transaction's Delete ran; not recreated",
    )


def _never_ours() -> UndoResult:
    return UndoResult(
        outcome=UndoOutcome.NOTHING_TO_UNDO,
        message="this transaction never changed it; left as it is",
    )


def _untouched_since(request: UndoStep, current: dict[str, Any], key: bytes) -> bool:
    """Nobody changed what a user sees since our write (a status update is fine)."""
    applied = request.applied
    return applied is None or same(current, applied.fingerprint, key)


def _written_by_others(
    request: UndoStep, current: dict[str, Any], writes: ownership.Writes, key: bytes
) -> bool:
    """Someone else wrote the target after our write (which carries our marker).

    Another field manager's entry newer than the snapshot says so, even when the
    writer kept our marker and our result was never recorded (a crash). What a
    user sees changing since our recorded write says so too, unless an
    autoscaler's write through ``scale`` explains it. Without managedFields to
    go by, only the latter counts (as in 0.1.0)."""
    if writes.conflicting:
        return True
    if not writes.known or not writes.scaled:
        return not _untouched_since(request, current, key)
    return False


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
    writes = ownership.since(request.snapshot.managers, current)
    if _written_by_others(request, current, writes, access.key):
        return _modified_by_others(target, current, writes.conflicting)
    meta = current["metadata"]
    access.fence()
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
    access.fence()
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


def _modified_by_others(
    target: ResolvedTarget, current: dict[str, Any], writers: list[str] | None = None
) -> UndoResult:
    rv = current["metadata"]["resourceVersion"]
    by = f", written by {', '.join(sorted(set(writers)))}" if writers else ""
    return UndoResult(
        outcome=UndoOutcome.MODIFIED_BY_OTHERS,
        message=f"changed by someone else after this transaction (now resourceVersion "
        f"{rv}{by}); left as they wrote it, not restored",
    )


def applied_by_earlier_run(
    access: TargetAccess, ref: TransactionRef, current: dict[str, Any] | None
) -> bool:
    """Whether this change of this Transaction already landed on the target: a reset
    run (same uid) finds its own marker there, or for a Delete the object gone after
    our deletion note. Its snapshot is then the one the earlier run stored."""
    if access.target.change_type == ChangeType.DELETE:
        return current is None and deletion_noted(access, ref)
    return marker_of(current) == marker_for(ref, access.target.index)


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
