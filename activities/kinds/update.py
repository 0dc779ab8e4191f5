"""Update: replace the whole object; its undo puts the snapshot back.

The object must exist. The undo restores the snapshot only while nobody else
wrote the target after us, keeping what controllers own (``base.restoration``);
a target found deleted after our write is not recreated (someone else removed
it), and when our action failed, whatever is there is not ours to undo.
"""

from __future__ import annotations

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

    decide_undo = staticmethod(decide_undo)

    def body(self, target: ResolvedTarget, content: Body, request: Request) -> Body:
        return preconditioned(typed(named_body(target, content, request.marker), target), request)

    def send(self, access: TargetAccess, request: Request) -> Body:
        t = access.target
        replaced = access.dyn.replace(
            access.resource,
            body=self.body(t, access.content, request),
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
