"""Create: make a new object; its undo deletes it again, if it is still ours as we made it.

The object must be absent before (else the Transaction should Update or Patch
it). The undo deletes only the object our Create made (it carries our marker)
and nobody wrote since, preconditioned on what it just read; an object there
that is not ours, or not there at all, leaves nothing to undo.
"""

from __future__ import annotations

from typing import Any

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
    modified_by_others,
    preconditions,
)
from activities.kinds.target import FIELD_MANAGER, TargetAccess, named_body, typed
from janus.contract.errors import ChangeRejected, InvalidTransaction
from janus.contract.operations import ResolvedTarget, UndoOutcome, UndoResult


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
