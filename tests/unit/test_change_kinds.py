"""Each change kind's undo decision, input shape, verbs and bodies, as tables: no servers.

A kind's undo decision is a pure function of what the undo found (``UndoFacts``);
these tables are the undo rules of the README, one row per situation.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

import pytest

from activities.kinds import (
    KINDS,
    Request,
    TargetAccess,
    UndoDecision,
    UndoFacts,
    UndoWrite,
    delete,
    kind_of,
)
from janus.contract.errors import InvalidTransaction, TargetConflict
from janus.contract.models import Change, ChangeType
from janus.contract.operations import CHANGE_MARKER, ResolvedTarget, UndoOutcome

RESTORED, NOTHING, MODIFIED = (
    UndoOutcome.RESTORED,
    UndoOutcome.NOTHING_TO_UNDO,
    UndoOutcome.MODIFIED_BY_OTHERS,
)

GONE = UndoFacts(exists=False)
GONE_AFTER_FAILURE = UndoFacts(exists=False, action_failed=True)
GONE_BY_US = UndoFacts(exists=False, gone_by_us=True)
OURS = UndoFacts(exists=True, ours=True, resource_version="7")
OURS_THEN_KUBECTL = UndoFacts(
    exists=True, ours=True, written_by_others=True, writers=("kubectl",), resource_version="8"
)
OURS_THEN_CHANGED = UndoFacts(exists=True, ours=True, written_by_others=True, resource_version="8")
NOT_OURS_AS_BEFORE = UndoFacts(exists=True, as_before=True, resource_version="3")
NOT_OURS_CHANGED = UndoFacts(exists=True, writers=("kubectl",), resource_version="9")
NEVER_LANDED = UndoFacts(exists=True, action_failed=True, resource_version="9")
# Still there, held by another writer's finalizer, since the snapshot; as_before,
# since what a user sees (the fingerprint) does not show a deletionTimestamp.
HELD = "being deleted since 2026-12-01T14:00:00Z, held by finalizers: example.com/guard"
DELETING_BY_US = UndoFacts(
    exists=True, as_before=True, resource_version="5", deleting=HELD, deleting_by_us=True
)
DELETING_BY_OTHERS = UndoFacts(exists=True, as_before=True, resource_version="5", deleting=HELD)

Expected = UndoWrite | tuple[UndoOutcome, str]

NEVER_CHANGED = (NOTHING, "this transaction never changed it; left as it is")
KUBECTL_WROTE_8 = (
    MODIFIED,
    "changed by someone else after this transaction (now resourceVersion 8, written by "
    "kubectl); left as they wrote it, not restored",
)
CHANGED_AT = {
    rv: (
        MODIFIED,
        f"changed by someone else after this transaction (now resourceVersion {rv}); left as "
        "they wrote it, not restored",
    )
    for rv in ("8", "9")
}
DELETED_FIRST = (
    NOTHING,
    "deleted by someone else before this transaction's Delete ran; not recreated",
)


def outcome(decision: UndoDecision) -> Expected:
    """A decision as a table cell: the write, or the outcome and its message."""
    if isinstance(decision, UndoWrite):
        return decision
    return decision.outcome, decision.message


# What the undo does when it finds the target so; the same for Update and Patch.
REWRITE_TABLE: list[tuple[UndoFacts, Expected]] = [
    (OURS, UndoWrite.RESTORE),
    (OURS_THEN_KUBECTL, KUBECTL_WROTE_8),
    (OURS_THEN_CHANGED, CHANGED_AT["8"]),
    (NOT_OURS_AS_BEFORE, (RESTORED, "already as before")),
    # The writers are named only for a target that carries our marker.
    (NOT_OURS_CHANGED, CHANGED_AT["9"]),
    (NEVER_LANDED, NEVER_CHANGED),
    (GONE, (MODIFIED, "deleted by someone else after this transaction changed it; not recreating")),
    (GONE_AFTER_FAILURE, NEVER_CHANGED),
]


@pytest.mark.parametrize(("facts", "expected"), REWRITE_TABLE)
def test_update_undo_restores_only_what_is_still_ours(facts: UndoFacts, expected: Expected) -> None:
    assert outcome(KINDS[ChangeType.UPDATE].decide_undo(facts)) == expected


@pytest.mark.parametrize(("facts", "expected"), REWRITE_TABLE)
def test_patch_undo_decides_as_update(facts: UndoFacts, expected: Expected) -> None:
    assert outcome(KINDS[ChangeType.PATCH].decide_undo(facts)) == expected


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        (OURS, UndoWrite.REMOVE),
        (OURS_THEN_KUBECTL, KUBECTL_WROTE_8),
        (GONE, (NOTHING, "not there")),
        (GONE_AFTER_FAILURE, (NOTHING, "not there")),
        (NOT_OURS_AS_BEFORE, (NOTHING, "the object there was not created by this transaction")),
        (NEVER_LANDED, (NOTHING, "the object there was not created by this transaction")),
    ],
)
def test_create_undo_removes_only_the_object_it_made(facts: UndoFacts, expected: Expected) -> None:
    assert outcome(KINDS[ChangeType.CREATE].decide_undo(facts)) == expected


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        (GONE_BY_US, UndoWrite.RECREATE),
        (GONE, DELETED_FIRST),
        (GONE_AFTER_FAILURE, DELETED_FIRST),
        (NOT_OURS_AS_BEFORE, (RESTORED, "already as before")),  # recreated meanwhile
        # Nothing clears a deletionTimestamp: wait for it to go, then re-create it.
        (DELETING_BY_US, UndoWrite.RECREATE_WHEN_GONE),
        (
            DELETING_BY_OTHERS,
            (MODIFIED, f"{HELD}: deleted by someone else after the snapshot; not recreated"),
        ),
        (NEVER_LANDED, NEVER_CHANGED),
        (NOT_OURS_CHANGED, CHANGED_AT["9"]),
    ],
)
def test_delete_undo_recreates_only_what_it_deleted(facts: UndoFacts, expected: Expected) -> None:
    assert outcome(KINDS[ChangeType.DELETE].decide_undo(facts)) == expected


def test_an_object_someone_else_deleted_first_is_reported_on_the_item() -> None:
    decision = KINDS[ChangeType.DELETE].decide_undo(GONE)
    assert not isinstance(decision, UndoWrite) and decision.foreign


def test_every_change_type_has_a_kind() -> None:
    assert set(KINDS) == set(ChangeType)


@pytest.mark.parametrize(
    ("change_type", "action", "undo"),
    [
        (ChangeType.CREATE, "create", "delete"),
        (ChangeType.UPDATE, "update", "update"),
        (ChangeType.PATCH, "patch", "update"),
        (ChangeType.DELETE, "delete", "create"),
    ],
)
def test_each_kind_names_the_verbs_of_its_action_and_its_undo(
    change_type: ChangeType, action: str, undo: str
) -> None:
    assert tuple(kind_of(change_type).verbs) == (action, undo)


def change(change_type: ChangeType, content: dict[str, Any] | None) -> Change:
    return Change.model_validate(
        {
            "target": {"apiVersion": "v1", "kind": "ConfigMap", "name": "c"},
            "type": change_type.value,
            "content": content,
        }
    )


@pytest.mark.parametrize(
    ("change_type", "content", "problem"),
    [
        (ChangeType.DELETE, {"data": {}}, "spec.changes[3]: content is forbidden for Delete"),
        (ChangeType.CREATE, None, "spec.changes[3]: content is required for Create"),
        (ChangeType.UPDATE, None, "spec.changes[3]: content is required for Update"),
        (ChangeType.PATCH, None, "spec.changes[3]: content is required for Patch"),
    ],
)
def test_a_kind_refuses_content_of_the_wrong_shape(
    change_type: ChangeType, content: dict[str, Any] | None, problem: str
) -> None:
    with pytest.raises(InvalidTransaction) as refused:
        kind_of(change_type).check_shape(3, change(change_type, content))
    assert refused.value.message == problem


@pytest.mark.parametrize(
    ("change_type", "content"),
    [
        (ChangeType.DELETE, None),
        (ChangeType.CREATE, {"data": {}}),
        (ChangeType.UPDATE, {"data": {}}),
        (ChangeType.PATCH, {"data": {}}),
    ],
)
def test_a_kind_accepts_content_of_its_shape(
    change_type: ChangeType, content: dict[str, Any] | None
) -> None:
    kind_of(change_type).check_shape(0, change(change_type, content))


def target(change_type: ChangeType) -> ResolvedTarget:
    return ResolvedTarget(
        index=2,
        change_type=change_type,
        api_version="v1",
        kind="ConfigMap",
        resource="configmaps",
        name="c",
        namespace="ns",
        lease_name="l",
        lease_namespace="janus-system",
    )


@pytest.mark.parametrize(
    ("change_type", "exists", "problem"),
    [
        (ChangeType.CREATE, True, "already exists; use Update or Patch, or delete it first"),
        (ChangeType.UPDATE, False, "not found; Update needs an existing object"),
        (ChangeType.PATCH, False, "not found; Patch needs an existing object"),
        (ChangeType.DELETE, False, "not found; Delete needs an existing object"),
    ],
)
def test_a_kind_needs_its_target_absent_or_there(
    change_type: ChangeType, exists: bool, problem: str
) -> None:
    kind_of(change_type).check_state(target(change_type), not exists)  # the right state passes
    with pytest.raises(InvalidTransaction, match=problem):
        kind_of(change_type).check_state(target(change_type), exists)


CONTENT: dict[str, Any] = {"data": {"k": "v"}, "metadata": {"labels": {"a": "b"}}}
MARKED = {
    "labels": {"a": "b"},
    "name": "c",
    "namespace": "ns",
    "annotations": {CHANGE_MARKER: "uid/2"},
}
WHOLE = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"k": "v"}}


@pytest.mark.parametrize(
    ("change_type", "expected"),
    [
        # No resourceVersion: the object's absence is the precondition.
        (ChangeType.CREATE, {**WHOLE, "metadata": MARKED}),
        (ChangeType.UPDATE, {**WHOLE, "metadata": {**MARKED, "resourceVersion": "41"}}),
        # A patch names only what it changes.
        (ChangeType.PATCH, {"data": {"k": "v"}, "metadata": {**MARKED, "resourceVersion": "41"}}),
        (ChangeType.DELETE, None),
    ],
)
def test_each_kind_sends_its_content_named_marked_and_preconditioned(
    change_type: ChangeType, expected: dict[str, Any] | None
) -> None:
    content = None if change_type == ChangeType.DELETE else CONTENT
    request = Request("uid/2", rv="41")
    assert kind_of(change_type).body(target(change_type), content, request) == expected
    assert "annotations" not in CONTENT["metadata"]  # the change's content is left as it was


class HeldThenGone:
    """Stands in for a TargetAccess: the target is read as being deleted ``held``
    times (a finalizer holds it), then as gone."""

    def __init__(self, held: int) -> None:
        self.held, self.reads = held, 0

    def read(self) -> dict[str, Any] | None:
        self.reads += 1
        if self.reads > self.held:
            return None
        meta = {"deletionTimestamp": "2026-12-01T14:00:00Z", "finalizers": ["example.com/guard"]}
        return {"metadata": meta}


def test_the_undo_of_a_held_delete_waits_for_the_object_to_go(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(delete, "_POLL_SECONDS", 0.0)
    access = HeldThenGone(held=3)
    delete.wait_until_gone(cast(TargetAccess, access))
    assert access.reads == 4  # read until gone; then the undo decides again: re-create


def test_the_undo_of_a_delete_held_past_the_wait_fails_naming_the_finalizer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(delete, "HELD_DELETE_WAIT", timedelta(0))
    with pytest.raises(TargetConflict) as failed:
        delete.wait_until_gone(cast(TargetAccess, HeldThenGone(held=1)))
    assert failed.value.message == (
        f"{HELD}; this transaction's Delete cannot be undone while another writer's "
        "finalizer holds it (nothing clears a deletionTimestamp): once it is gone, re-create "
        "it or run `janus retry`"
    )
