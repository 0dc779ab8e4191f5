"""Patch: merge the content into the object; undone as an Update is (the snapshot back).

Built-in kinds take a strategic merge patch, custom resources a JSON merge
patch. Restoring the snapshot replaces the whole object, so the undo needs the
``update`` verb as well as the action's ``patch``.
"""

from __future__ import annotations

from typing import Any

from activities.kinds.base import Body, Request, Verbs
from activities.kinds.target import FIELD_MANAGER, TargetAccess, named_body
from activities.kinds.update import Update, keeping_finalizers_added, preconditioned
from janus.contract.operations import ResolvedTarget

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"


class Patch(Update):
    verbs = Verbs(action="patch", undo="update")

    def body(self, target: ResolvedTarget, content: Body, request: Request) -> Body:
        # A patch names only what it changes: no apiVersion or kind of its own.
        return preconditioned(named_body(target, content, request.marker), request)

    def over_bookkeeping(
        self, access: TargetAccess, body: dict[str, Any], current: dict[str, Any]
    ) -> dict[str, Any]:
        # A patch naming no finalizers keeps them all, and a strategic merge patch
        # merges the ones it names; only a JSON merge patch's list replaces theirs.
        if access.target.builtin or "finalizers" not in body["metadata"]:
            return body
        return keeping_finalizers_added(body, current, access.stored)

    def send(self, access: TargetAccess, body: Body, request: Request) -> Body:
        t = access.target
        patched = access.dyn.patch(
            access.resource,
            body=body,
            name=t.name,
            namespace=t.namespace,
            content_type=STRATEGIC_MERGE_PATCH if t.builtin else MERGE_PATCH,
            field_manager=FIELD_MANAGER,
            **request.options,
        )
        return patched.to_dict()
