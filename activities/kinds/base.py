"""What every change kind provides: its action, its undo, its verbs, its input's shape.

The saga's model (steno's Action and Undo): a change is an *action* paired with
the *undo* that takes it back. Each kind (``create``, ``update``, ``patch``,
``delete``) is one module pairing the two, with what they need around them:

- the request the action sends (and the same as a server-side dry run), and the
  state of the target the action needs before it (absent for a Create);
- the RBAC verbs of its action and of its undo, checked before any write;
- the shape of its input (a Delete has no content, the others need one);
- its undo *decision*, a pure function of what the undo found (``UndoFacts``):
  restore, recreate or remove, or leave the target alone, saying why (changed by
  someone else since, never changed by us, not there);
- the undo write that decision calls for.

The protocol around every kind (markers, preconditions, conflicts, fencing) is
``activities.changes``; it reaches a kind only through this interface, picked
from the registry ``activities.kinds.KINDS``.
"""

from __future__ import annotations

import copy
import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

from activities import ownership
from activities.cluster import api_errors
from activities.kinds.target import FIELD_MANAGER, TargetAccess, marker_of
from janus.contract.errors import ChangeRejected, InvalidTransaction
from janus.contract.models import Change, TransactionRef
from janus.contract.operations import (
    ApplyResult,
    ResolvedTarget,
    Snapshot,
    UndoOutcome,
    UndoResult,
    UndoStep,
    marker_for,
)

#: An object as the API server returns it, or None (absent; or no body to send).
Body = dict[str, Any] | None


@dataclass(frozen=True)
class Request:
    """One request of a change's action: its marker (None for a dry run, which leaves
    none), and the resourceVersion and uid it is preconditioned on ('' for none)."""

    marker: str | None
    rv: str = ""
    uid: str = ""
    dry_run: bool = False

    @property
    def options(self) -> dict[str, Any]:
        """The request's query options: a dry run's."""
        return {"dry_run": "All"} if self.dry_run else {}


@dataclass(frozen=True)
class Found:
    """What an undo write goes by: the target as the undo found it, its snapshot, and
    other managers' writes since."""

    current: Body
    stored: Body
    writes: ownership.Writes


class Verbs(NamedTuple):
    """The RBAC verbs a change needs besides ``get``."""

    action: str
    undo: str


@dataclass(frozen=True)
class UndoFacts:
    """What an undo found, the whole input of its decision (read just before it).

    ``written_by_others`` and ``writers`` mean something only for a target that
    carries our marker: whether someone else wrote it after our write, and which
    field managers did (empty when only its fingerprint says so).
    """

    #: The target is there now.
    exists: bool
    #: It carries this change's marker: our write landed on it.
    ours: bool = False
    #: Our action ended in an error (so it never landed: every write of ours is marked).
    action_failed: bool = False
    written_by_others: bool = False
    writers: tuple[str, ...] = ()
    #: What a user sees of it equals the snapshot.
    as_before: bool = False
    #: Its resourceVersion now, for messages.
    resource_version: str = ""
    #: It is gone, and by our own action (a Delete's, which leaves no marker).
    gone_by_us: bool = False
    #: It is there but being deleted, since the snapshot (how: ``deletion_pending``);
    #: held by a finalizer, it goes once that finalizer's owner removes it.
    deleting: str = ""
    #: That deletion is our own action's (a Delete's that began, and did not fail).
    deleting_by_us: bool = False


class UndoWrite(enum.Enum):
    """The write an undo decided on."""

    #: Delete the object our Create made.
    REMOVE = "remove"
    #: Replace the object with its snapshot, keeping what controllers own.
    RESTORE = "restore"
    #: Create the snapshot again (the object our Delete removed).
    RECREATE = "recreate"
    #: Create the snapshot again once the object our Delete began deleting is gone
    #: (nothing can clear a deletionTimestamp): the undo waits for it, bounded.
    RECREATE_WHEN_GONE = "recreateWhenGone"


#: An undo's decision: the write to make, or the outcome with nothing to write.
UndoDecision = UndoWrite | UndoResult


class ChangeKind(ABC):
    """One kind of change: its action and its undo, and what they need."""

    verbs: ClassVar[Verbs]
    #: Whether its input carries content (the object, or the patch).
    takes_content: ClassVar[bool] = True
    #: Whether its action changes an object that stays: one being deleted would
    #: take the change with it (or our write, dropping its finalizers, delete it).
    needs_lasting_object: ClassVar[bool] = False

    def check_shape(self, index: int, change: Change) -> None:
        """The admission rule on content, again: a Transaction may come from an older CRD."""
        kind = change.type.value
        if not self.takes_content and change.content is not None:
            raise InvalidTransaction(f"spec.changes[{index}]: content is forbidden for {kind}")
        if self.takes_content and change.content is None:
            raise InvalidTransaction(f"spec.changes[{index}]: content is required for {kind}")

    def check_state(self, target: ResolvedTarget, exists: bool) -> None:
        """Before any write: the target is in the state the action needs."""
        if not exists:
            raise InvalidTransaction(
                f"{target.describe()}: not found; {target.change_type.value} needs an existing "
                "object (use Create to make a new one)"
            )

    @abstractmethod
    def body(self, target: ResolvedTarget, content: Body, request: Request) -> Body:
        """What the action sends: the content, named, marked and preconditioned."""

    @abstractmethod
    def send(self, access: TargetAccess, body: Body, request: Request) -> Body:
        """Send the action's ``body``; return the object after it (None when gone)."""

    def over_bookkeeping(
        self, access: TargetAccess, body: dict[str, Any], current: dict[str, Any]
    ) -> dict[str, Any]:
        """The action's body to write over ``current``, which moved since the snapshot
        only in what is no conflict (a status, a finalizer): by default, unchanged."""
        return body

    def before_action(self, access: TargetAccess, ref: TransactionRef, snap: Snapshot) -> bool:
        """Called before the action's first request; whether an earlier attempt had begun it."""
        return False

    def settle_gone(
        self, access: TargetAccess, ref: TransactionRef, begun_before: bool
    ) -> ApplyResult | None:
        """The target vanished since its snapshot (or is another object of its name, with
        another uid): the action's result, if that is ours (None: someone else's
        change, a conflict)."""
        return None

    def applied_by_earlier_run(
        self, access: TargetAccess, ref: TransactionRef, current: Body
    ) -> bool:
        """Whether this change already landed (an earlier run of the same Transaction)."""
        return marker_of(current) == marker_for(ref, access.target.index)

    def absent_since(self, access: TargetAccess) -> str:
        """For a target the snapshot finds absent: a resourceVersion to watch its history
        from ('' when none is needed, or the account may not list)."""
        return ""

    def absent_before(self) -> bool:
        """Whether its target's state before an applied action is known without a
        snapshot: absent (a Create that succeeded)."""
        return False

    def gone_by_us(self, access: TargetAccess, ref: TransactionRef, request: UndoStep) -> bool:
        """For a target found gone at undo: whether our own action removed it."""
        return False

    @staticmethod
    @abstractmethod
    def decide_undo(facts: UndoFacts) -> UndoDecision:
        """The undo's decision from what it found: pure, so it can be tested on a table."""

    def write_undo(self, access: TargetAccess, write: UndoWrite, found: Found) -> UndoResult | None:
        """Make the undo's write; None when the target moved meanwhile (decide again)."""
        assert write == UndoWrite.RESTORE and found.current is not None and found.stored
        return restore(access, found.current, found.stored, found.writes)


def never_ours() -> UndoResult:
    return UndoResult(
        outcome=UndoOutcome.NOTHING_TO_UNDO,
        message="this transaction never changed it; left as it is",
    )


def modified_by_others(facts: UndoFacts, *, name_writers: bool = False) -> UndoResult:
    writers = facts.writers if name_writers else ()
    by = f", written by {', '.join(sorted(set(writers)))}" if writers else ""
    return UndoResult(
        outcome=UndoOutcome.MODIFIED_BY_OTHERS,
        message=f"changed by someone else after this transaction (now resourceVersion "
        f"{facts.resource_version}{by}); left as they wrote it, not restored",
    )


def decide_when_there(facts: UndoFacts) -> UndoDecision:
    """A target that is there, and had a snapshot: restore it while it is as we left it."""
    if facts.ours:
        if facts.written_by_others:
            return modified_by_others(facts, name_writers=True)
        return UndoWrite.RESTORE
    if facts.action_failed:
        # Our write never landed (it would carry our marker): whatever is there is
        # the snapshot, or someone else's change made since. Nothing of ours to undo.
        return never_ours()
    if facts.as_before:
        return UndoResult(outcome=UndoOutcome.RESTORED, message="already as before")
    return modified_by_others(facts)


def restore(
    access: TargetAccess,
    current: dict[str, Any],
    stored: dict[str, Any],
    writes: ownership.Writes,
) -> UndoResult:
    """Put the snapshot back over the current object (guarded by its resourceVersion)."""
    target = access.target
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


def replacement(stored: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """A snapshot as an update of the current object (guarded by its resourceVersion)."""
    body = copy.deepcopy(stored)
    body["metadata"] = {
        k: v for k, v in stored["metadata"].items() if k not in ("managedFields", "generation")
    }
    body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
    return body


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
    added = [f for f in ownership.foreign_finalizers(current) if f not in before]
    finalizers = before + [f for f in (current["metadata"].get("finalizers") or []) if f in added]
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


def preconditions(rv: str, uid: str) -> dict[str, Any]:
    """DeleteOptions that delete only the object as it was seen (none without an rv)."""
    return {"preconditions": {"resourceVersion": rv, "uid": uid} if rv else {}}
