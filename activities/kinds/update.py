"""Update: replace the whole object; its undo puts the snapshot back.

The object must exist. The undo restores the snapshot only while nobody else
wrote the target after us, keeping what controllers own (``base.restoration``);
a target found deleted after our write is not recreated (someone else removed
it), and when our action failed, whatever is there is not ours to undo.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from activities.kinds.base import (
    Body,
    ChangeKind,
    Request,
    UndoDecision,
    UndoFacts,
    Verbs,
    decide_when_there,
    never_ours,
)
from activities.kinds.target import FIELD_MANAGER, TargetAccess, named_body, typed
from janus.contract.operations import ResolvedTarget, UndoOutcome, UndoResult


def decide_undo(facts: UndoFacts) -> UndoDecision:
    if facts.exists:
        return decide_when_there(facts)
    if facts.action_failed:
        return never_ours()
    return UndoResult(
        outcome=UndoOutcome.MODIFIED_BY_OTHERS,
        message="deleted by someone else after this transaction changed it; not recreating",
    )


class Update(ChangeKind):
    verbs = Verbs(action="update", undo="update")
    needs_lasting_object = True

    decide_undo = staticmethod(decide_undo)

    def body(self, target: ResolvedTarget, content: Body, request: Request) -> Body:
        return preconditioned(typed(named_body(target, content, request.marker), target), request)

    def over_bookkeeping(
        self, access: TargetAccess, body: dict[str, Any], current: dict[str, Any]
    ) -> dict[str, Any]:
        return keeping_finalizers_added(body, current, access.stored)

    def send(self, access: TargetAccess, body: Body, request: Request) -> Body:
        t = access.target
        replaced = access.dyn.replace(
            access.resource,
            body=body,
            name=t.name,
            namespace=t.namespace,
            field_manager=FIELD_MANAGER,
            **request.options,
        )
        return replaced.to_dict()


def preconditioned(body: dict[str, Any], request: Request) -> dict[str, Any]:
    """Guard a write by the resourceVersion it was decided on."""
    if request.rv:
        body["metadata"]["resourceVersion"] = request.rv
    return body


def keeping_finalizers_added(
    body: dict[str, Any], current: dict[str, Any], stored: Callable[[], dict[str, Any] | None]
) -> dict[str, Any]:
    """An Update replaces the whole object, but not finalizers others added since the snapshot.

    A write of nothing but finalizers is a controller's bookkeeping, not a change
    to refuse (the apply lets it through, as a rollback does); dropping the
    finalizer would let an object go that its controller still guards. The
    content's own finalizers are what the user asked for; those the snapshot
    already had are the user's to keep or drop, as the content says."""
    meta = body["metadata"]
    wanted = list(meta.get("finalizers") or [])
    extra = [f for f in current["metadata"].get("finalizers") or [] if f not in wanted]
    if not extra:
        return body
    before = ((stored() or {}).get("metadata") or {}).get("finalizers") or []
    added = [f for f in extra if f not in before]
    if added:
        meta["finalizers"] = wanted + added
    return body
