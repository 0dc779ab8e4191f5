"""Create: make a new object; its undo deletes it again, if it is still ours as we made it.

The object must be absent before (else the Transaction should Update or Patch
it). The undo deletes only the object our Create made (it carries our marker)
and nobody wrote since, preconditioned on what it just read; an object there
that is not ours, or not there at all, leaves nothing to undo.

A retried attempt that finds the object absent cannot tell from the object
whether an earlier attempt created it (someone else then deleting it) or never
got that far. The API server's history can: the snapshot notes the collection's
resourceVersion with the object absent (``absent_since``), and a retry watches
the name's events from there. Our marker among them means our object was there
and someone else deleted it: a conflict, not created again (fault explorer,
seed 20261203 trial 2). The account needs ``list`` and ``watch`` for this; without
them, or once that history is compacted away, the retry creates as before.
"""

from __future__ import annotations

from typing import Any

from kubernetes.client.exceptions import ApiException
from temporalio import activity

from activities.cluster import api_errors, translate
from activities.kinds.base import (
    Body,
    ChangeKind,
    Found,
    Request,
    UndoDecision,
    UndoFacts,
    UndoWrite,
    Verbs,
    modified_by_others,
    preconditions,
)
from activities.kinds.target import FIELD_MANAGER, TargetAccess, marker_of, named_body, typed
from janus.contract.errors import ChangeRejected, InvalidTransaction, TargetConflict
from janus.contract.models import TransactionRef
from janus.contract.operations import (
    ResolvedTarget,
    Snapshot,
    UndoOutcome,
    UndoResult,
    marker_for,
)

#: How long a retried attempt watches a target's history for an earlier attempt's object.
HISTORY_WATCH_SECONDS = 1


def decide_undo(facts: UndoFacts) -> UndoDecision:
    if not facts.exists:
        return UndoResult(outcome=UndoOutcome.NOTHING_TO_UNDO, message="not there")
    if not facts.ours:
        return UndoResult(
            outcome=UndoOutcome.NOTHING_TO_UNDO,
            message="the object there was not created by this transaction",
        )
    if facts.written_by_others:
        return modified_by_others(facts, name_writers=True)
    return UndoWrite.REMOVE


class Create(ChangeKind):
    verbs = Verbs(action="create", undo="delete")

    decide_undo = staticmethod(decide_undo)

    def check_state(self, target: ResolvedTarget, exists: bool) -> None:
        if exists:
            raise InvalidTransaction(
                f"{target.describe()}: already exists; use Update or Patch, or delete it first"
            )

    def body(self, target: ResolvedTarget, content: Body, request: Request) -> Body:
        # No resourceVersion: the object's absence is the precondition.
        return typed(named_body(target, content, request.marker), target)

    def send(self, access: TargetAccess, body: Body, request: Request) -> Body:
        created = access.dyn.create(
            access.resource,
            body=body,
            namespace=access.target.namespace,
            field_manager=FIELD_MANAGER,
            **request.options,
        )
        return created.to_dict()

    def absent_before(self) -> bool:
        return True

    def absent_since(self, access: TargetAccess) -> str:
        return absent_since(access)

    def before_action(self, access: TargetAccess, ref: TransactionRef, snap: Snapshot) -> bool:
        """A retried attempt: refuse to create again what an earlier attempt created and
        someone else deleted since."""
        if not snap.absent_at or not activity.in_activity() or activity.info().attempt < 2:
            return False
        marker = marker_for(ref, access.target.index)
        if created_since(access, snap.absent_at, marker) and access.read() is None:
            raise TargetConflict(
                f"{access.target.describe()} was created by an earlier attempt of this "
                "transaction and deleted by someone else since; not creating it again"
            )
        return False

    def write_undo(self, access: TargetAccess, write: UndoWrite, found: Found) -> UndoResult | None:
        assert write == UndoWrite.REMOVE and found.current is not None
        return remove(access, found.current)


def remove(access: TargetAccess, current: dict[str, Any]) -> UndoResult | None:
    """Delete the object we created, as it was just read (None: it moved meanwhile)."""
    target, meta = access.target, current["metadata"]
    access.fence()
    try:
        with api_errors(f"undo of {target.describe()}", rejected=ChangeRejected, expected=(404,)):
            access.dyn.delete(
                access.resource,
                name=target.name,
                namespace=target.namespace,
                body=preconditions(meta["resourceVersion"], meta["uid"]),
            )
    except ApiException as err:
        if err.status == 404:  # gone meanwhile: nothing left to remove
            return UndoResult(outcome=UndoOutcome.RESTORED)
        if err.status == 409:  # written since we looked: decide again
            return None
        raise
    return UndoResult(outcome=UndoOutcome.RESTORED)


def absent_since(access: TargetAccess) -> str:
    """The resourceVersion of the target's collection, the target absent ('' when the
    account may not list it, or it is there by now: the create then finds it)."""
    target = access.target
    try:
        listed = access.dyn.get(
            access.resource,
            namespace=target.namespace,
            field_selector=f"metadata.name={target.name}",
        )
    except ApiException as err:
        if err.status == 403:
            return ""
        raise translate(err, target.describe(), rejected=InvalidTransaction) from err
    if listed.items:
        return ""
    return str(listed.metadata.resourceVersion or "")


def created_since(access: TargetAccess, version: str, marker: str) -> bool:
    """Whether the target's history since ``version`` holds an object carrying
    ``marker`` (False too when that history cannot be read: forbidden, compacted)."""
    target = access.target
    try:
        for event in access.dyn.watch(
            access.resource,
            namespace=target.namespace,
            name=target.name,
            resource_version=version,
            timeout=HISTORY_WATCH_SECONDS,
        ):
            if event["type"] == "ERROR":  # the history is gone (410: compacted)
                return False
            if marker_of(event["raw_object"]) == marker:
                return True
    except ApiException as err:
        if err.status in (403, 410):
            return False
        raise translate(err, target.describe(), rejected=InvalidTransaction) from err
    return False
