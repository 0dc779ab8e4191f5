"""Delete: remove the object; its undo creates the snapshot again, if the delete was ours.

A Delete carries no marker (the object goes), so before its first request it
leaves a note (a ConfigMap ``janus-del-<uid>-<index>`` beside the snapshots, in
the system namespace) naming the uid of the object it deletes: an object found
gone with no note was deleted by someone else, before our Delete ran; that is a
conflict, and its undo recreates nothing. One found there with another uid after
our note was created again by someone else after our Delete: ours is applied, and
theirs is left alone (a reset's run must not delete it again).
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from activities.cluster import api_errors
from activities.kinds.base import (
    Body,
    ChangeKind,
    Found,
    Request,
    UndoDecision,
    UndoFacts,
    UndoWrite,
    Verbs,
    decide_when_there,
    preconditions,
)
from activities.kinds.target import FIELD_MANAGER, TargetAccess, deletion_pending
from activities.snapshots import labels_of as snapshot_labels
from janus.contract.errors import ChangeRejected, JanusError, TargetConflict
from janus.contract.models import TransactionRef
from janus.contract.operations import (
    ApplyResult,
    ResolvedTarget,
    Snapshot,
    UndoOutcome,
    UndoResult,
    UndoStep,
)

#: Metadata the API server sets: a recreated object must not carry it.
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

_NOT_OURS = "notOurs"
#: The note's key naming the uid of the object our Delete deletes (absent in notes
#: written before 0.2: then only an object found gone counts as deleted by us).
_DELETED_UID = "uid"

#: How long the undo of our Delete waits for an object another writer's finalizer
#: holds to go (inside one attempt's write window, ``ATTEMPT_WRITE_WINDOW``).
HELD_DELETE_WAIT = timedelta(seconds=10)
_POLL_SECONDS = 0.25


def decide_undo(facts: UndoFacts) -> UndoDecision:
    """Recreate the object only if the delete was ours (``Delete.gone_by_us``).

    An object someone else deleted before our Delete ran stays deleted. One our
    Delete began deleting and a finalizer still holds cannot be restored (nothing
    clears a deletionTimestamp): it is re-created once gone, never reported as
    already as before."""
    if facts.exists and facts.deleting:
        if facts.deleting_by_us:
            return UndoWrite.RECREATE_WHEN_GONE
        return UndoResult(
            outcome=UndoOutcome.MODIFIED_BY_OTHERS,
            foreign=True,
            message=f"{facts.deleting}: deleted by someone else after the snapshot; not recreated",
        )
    if facts.exists:
        return decide_when_there(facts)
    if facts.gone_by_us:
        return UndoWrite.RECREATE
    return UndoResult(
        outcome=UndoOutcome.NOTHING_TO_UNDO,
        foreign=True,
        message="deleted by someone else before this transaction's Delete ran; not recreated",
    )


class Delete(ChangeKind):
    verbs = Verbs(action="delete", undo="create")
    takes_content = False

    decide_undo = staticmethod(decide_undo)

    def body(self, target: ResolvedTarget, content: Body, request: Request) -> Body:
        return None  # the object goes: no content, no marker

    def send(self, access: TargetAccess, body: Body, request: Request) -> Body:
        # With a body, the API server reads DeleteOptions from it and ignores the
        # dryRun query parameter: a dry run must say so in the body.
        options = preconditions(request.rv, request.uid)
        if request.dry_run:
            options["dryRun"] = ["All"]
        t = access.target
        access.dyn.delete(
            access.resource, name=t.name, namespace=t.namespace, body=options, **request.options
        )
        return None

    def before_action(self, access: TargetAccess, ref: TransactionRef, snap: Snapshot) -> bool:
        return note_deletion(access, ref, snap.uid)

    def settle_gone(
        self, access: TargetAccess, ref: TransactionRef, begun_before: bool
    ) -> ApplyResult:
        if begun_before:  # an earlier attempt of ours was deleting it
            return ApplyResult(resource_version="", already_applied=True)
        forget_deletion(access, ref)
        raise TargetConflict(
            f"{access.target.describe()} was deleted by someone else after the snapshot "
            "(and may have been created again), before this transaction's Delete ran; "
            "not counting it as ours"
        )

    def applied_by_earlier_run(
        self, access: TargetAccess, ref: TransactionRef, current: Body
    ) -> bool:
        """Gone after our note, or there again as another object (another uid than the
        one our note names: someone else created it after our Delete)."""
        deleted = noted_uid(access, ref)
        if deleted is None:
            return False
        return current is None or (bool(deleted) and current["metadata"]["uid"] != deleted)

    def gone_by_us(self, access: TargetAccess, ref: TransactionRef, request: UndoStep) -> bool:
        """Ours for sure when our delete request returned (a recorded result that did not
        find it gone); else ours only if our Delete had started (its note is there)."""
        applied = request.applied
        certain = applied is not None and not applied.already_applied
        return certain or deletion_noted(access, ref)

    def write_undo(self, access: TargetAccess, write: UndoWrite, found: Found) -> UndoResult | None:
        if write == UndoWrite.RECREATE_WHEN_GONE:
            wait_until_gone(access)
            return None  # gone: decide again (re-create it)
        if write != UndoWrite.RECREATE:
            return super().write_undo(access, write, found)
        assert found.stored is not None, "a Delete always has a snapshot"
        return recreate(access, found.stored)


def wait_until_gone(access: TargetAccess) -> None:
    """Wait (at most HELD_DELETE_WAIT) for an object our Delete began deleting to go.

    A finalizer's owner often removes it within seconds (its cleanup done); one that
    holds it longer ends the rollback Failed, naming it: the wait stays inside one
    attempt's write window, and never holds the transaction for another writer."""
    deadline = time.monotonic() + HELD_DELETE_WAIT.total_seconds()
    while (current := access.read()) is not None and deletion_pending(current):
        if time.monotonic() >= deadline:
            raise TargetConflict(still_deleting(current))
        time.sleep(_POLL_SECONDS)


def still_deleting(current: dict[str, Any]) -> str:
    """Why the undo of our Delete gave up, and what to do (the workflow names the target)."""
    return (
        f"{deletion_pending(current)}; this transaction's Delete "
        "cannot be undone while another writer's finalizer holds it (nothing clears a "
        "deletionTimestamp): once it is gone, re-create it or run `janus retry`"
    )


def recreatable(stored: dict[str, Any]) -> dict[str, Any]:
    """A snapshot of a deleted object, fit to create again."""
    body = {k: v for k, v in stored.items() if k != "status"}
    body["metadata"] = {k: v for k, v in stored["metadata"].items() if k not in _SERVER_SET}
    return body


def recreate(access: TargetAccess, stored: dict[str, Any]) -> UndoResult | None:
    """Create the deleted object again (None: something is there meanwhile, decide again)."""
    target = access.target
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
            return None
        raise
    return UndoResult(outcome=UndoOutcome.RESTORED)


def _deletion_note_name(ref: TransactionRef, target: ResolvedTarget) -> str:
    return f"janus-del-{ref.uid}-{target.index}"


def _note_namespace(access: TargetAccess) -> str:
    """Notes live beside the snapshots, in the system namespace (the lease namespace),
    labelled with the Transaction's uid: the bridge deletes them with the snapshots."""
    return access.target.lease_namespace


def _deletion_note(access: TargetAccess, ref: TransactionRef, uid: str) -> k8s.V1ConfigMap:
    return k8s.V1ConfigMap(
        metadata=k8s.V1ObjectMeta(
            name=_deletion_note_name(ref, access.target),
            namespace=_note_namespace(access),
            labels=snapshot_labels(ref),
        ),
        data={"target": access.target.key(), _DELETED_UID: uid},
    )


def note_deletion(access: TargetAccess, ref: TransactionRef, uid: str) -> bool:
    """Before our Delete's first request (of the object ``uid``): note it. Return
    whether an earlier attempt had."""
    name, namespace = _deletion_note_name(ref, access.target), _note_namespace(access)
    note = _deletion_note(access, ref, uid)
    try:
        with api_errors(f"deletion note {namespace}/{name}", rejected=JanusError, expected=(409,)):
            access.cluster.core.create_namespaced_config_map(namespace, note)
    except ApiException:  # an earlier attempt noted it, unless it found it not ours
        return deletion_noted(access, ref)
    return False


def deletion_noted(access: TargetAccess, ref: TransactionRef) -> bool:
    """Whether our Delete had started (and was not found to be someone else's)."""
    return noted_uid(access, ref) is not None


def noted_uid(access: TargetAccess, ref: TransactionRef) -> str | None:
    """The uid our Delete's note names ('' in a note without one); None when there is
    no note, or it says the object was someone else's."""
    name, namespace = _deletion_note_name(ref, access.target), _note_namespace(access)
    try:
        with api_errors(f"deletion note {namespace}/{name}", rejected=JanusError, expected=(404,)):
            note = access.cluster.core.read_namespaced_config_map(name, namespace)
    except ApiException:
        return None
    data = note.data or {}
    return None if data.get(_NOT_OURS) is not None else data.get(_DELETED_UID, "")


def forget_deletion(access: TargetAccess, ref: TransactionRef) -> None:
    """Our Delete found the object gone, deleted by someone else: it was never ours.

    The note stays, saying so; the bridge deletes it with the snapshots."""
    name, namespace = _deletion_note_name(ref, access.target), _note_namespace(access)
    body = _deletion_note(access, ref, "")
    body.data = {**(body.data or {}), _NOT_OURS: "deleted by someone else first"}
    with api_errors(f"deletion note {namespace}/{name}", rejected=JanusError):
        access.cluster.core.replace_namespaced_config_map(name, namespace, body)
