"""Prepare, apply and undo one change: the only code that writes a transaction's targets.

What each kind of change sends, and how its undo decides, is its module in
``activities.kinds``; this is the protocol around all of them. Each function
is safe to run twice, and safe after a crash between the API call and the
recording of its result:

- *apply* writes a marker annotation (``backup.janus.io/change``) with every
  create, update and patch, and carries the snapshot's resourceVersion as a
  precondition; a repeated apply that finds its own marker returns the earlier
  result instead of writing again, and one that finds a stranger's write stops
  with a conflict instead of overwriting it. A Delete carries no marker (the
  object goes): it leaves a note instead (``activities.kinds.delete``).
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

import dataclasses
from typing import Any

from kubernetes.client.exceptions import ApiException

from activities import ownership
from activities.cluster import api_errors
from activities.fingerprint import fingerprint, same
from activities.kinds import Found, Request, TargetAccess, UndoFacts, kind_of
from activities.kinds.target import deletion_pending, marker_of
from janus.contract.errors import ChangeRejected, InvalidTransaction, TargetConflict
from janus.contract.models import TransactionRef
from janus.contract.operations import (
    ApplyResult,
    ResolvedTarget,
    Snapshot,
    UndoResult,
    UndoStep,
    marker_for,
)


def apply_change(access: TargetAccess, ref: TransactionRef, snap: Snapshot) -> ApplyResult:
    """Run the action once, guarded by the target's resourceVersion.

    The first try writes at once, preconditioned on the snapshot's resourceVersion
    (a Create on the object's absence): when nobody wrote since the snapshot,
    that is the only request. A conflict or a missing object means someone did,
    or an earlier attempt of ours: then read the target and decide.
    """
    kind = kind_of(access.target.change_type)
    marker = marker_for(ref, access.target.index)
    begun_before = kind.before_action(access, ref, snap)
    request = Request(marker, snap.resource_version, snap.uid)
    body = kind.body(access.target, access.content, request)
    try:
        with api_errors(access.target.describe(), rejected=ChangeRejected, expected=(404, 409)):
            written = kind.send(access, body, request)
    except ApiException as err:
        if err.status not in (404, 409):
            raise
        return _apply_after_reading(access, ref, marker, snap, begun_before)
    return _result(written, access.key)


def _apply_after_reading(
    access: TargetAccess, ref: TransactionRef, marker: str, snap: Snapshot, begun_before: bool
) -> ApplyResult:
    """The target moved since the snapshot: our own earlier write, a status update
    (the action is still due), or someone else's change (a conflict)."""
    target, kind = access.target, kind_of(access.target.change_type)
    current = access.read()
    if current is not None and marker_of(current) == marker:
        return _result(current, access.key, already_applied=True)
    if snap.exists and _gone_since(snap, current):
        settled = kind.settle_gone(access, ref, begun_before)
        if settled is not None:
            return settled
    going = deletion_pending(current)
    if kind.needs_lasting_object and going:
        raise TargetConflict(
            f"{target.describe()} was deleted by someone else after the snapshot ({going}); "
            "not changing it"
        )
    _check_unchanged(target, snap, current, access.key)
    rv = current["metadata"]["resourceVersion"] if current else ""
    request = Request(marker, rv, snap.uid)
    body = kind.body(target, access.content, request)
    if body is not None and current is not None:
        body = kind.over_bookkeeping(access, body, current)
    try:
        with api_errors(target.describe(), rejected=ChangeRejected):
            written = kind.send(access, body, request)
    except ApiException as err:
        if err.status != 409:
            raise
        return _settle_conflict(access, target, marker, err)
    return _result(written, access.key)


def _gone_since(snap: Snapshot, current: dict[str, Any] | None) -> bool:
    """The snapshot's object is gone: absent, or replaced by another of its name."""
    return current is None or bool(snap.uid and current["metadata"]["uid"] != snap.uid)


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
    """Put the target back to its snapshot, unless someone else wrote after us.

    Read the target, let its kind decide, make the write decided on; a write
    that finds the target moved meanwhile (a 409) reads and decides again."""
    kind = kind_of(request.target.change_type)
    while True:
        current = access.read()
        writes = ownership.since(request.snapshot.managers, current)
        facts = undo_facts(access, ref, request, current, writes)
        if deletion_pending(current) and not deletion_pending(stored):  # since the snapshot
            facts = _deleting(facts, kind.gone_by_us(access, ref, request), current)
        decision = kind.decide_undo(facts)
        if isinstance(decision, UndoResult):
            return decision
        result = kind.write_undo(access, decision, Found(current, stored, writes))
        if result is not None:
            return result


def undo_facts(
    access: TargetAccess,
    ref: TransactionRef,
    request: UndoStep,
    current: dict[str, Any] | None,
    writes: ownership.Writes,
) -> UndoFacts:
    """What the undo's decision goes by, from the target as it is now."""
    if current is None:
        gone_by_us = kind_of(request.target.change_type).gone_by_us(access, ref, request)
        return UndoFacts(exists=False, action_failed=request.action_failed, gone_by_us=gone_by_us)
    ours = marker_of(current) == marker_for(ref, request.target.index)
    return UndoFacts(
        exists=True,
        ours=ours,
        action_failed=request.action_failed,
        written_by_others=ours and _written_by_others(request, current, writes, access.key),
        writers=tuple(writes.conflicting),
        as_before=same(current, request.snapshot.fingerprint, access.key),
        resource_version=current["metadata"]["resourceVersion"],
    )


def _deleting(facts: UndoFacts, by_us: bool, current: dict[str, Any] | None) -> UndoFacts:
    """The facts of a target whose deletion began after its snapshot."""
    return dataclasses.replace(
        facts,
        deleting=deletion_pending(current),
        deleting_by_us=by_us and not facts.action_failed,
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


def applied_by_earlier_run(
    access: TargetAccess, ref: TransactionRef, current: dict[str, Any] | None
) -> bool:
    """Whether this change of this Transaction already landed on the target: a reset
    run (same uid) finds its own marker there, or for a Delete the object gone after
    our deletion note. Its snapshot is then the one the earlier run stored."""
    return kind_of(access.target.change_type).applied_by_earlier_run(access, ref, current)


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
    target, kind = access.target, kind_of(access.target.change_type)
    kind.check_state(target, snap_current is not None)
    going = deletion_pending(snap_current)
    if kind.needs_lasting_object and going:
        raise InvalidTransaction(
            f"{target.describe()}: {going}; {target.change_type.value} needs an object that is "
            "not being deleted (the change would go with it)"
        )
    rv = snap_current["metadata"]["resourceVersion"] if snap_current else ""
    uid = snap_current["metadata"]["uid"] if snap_current else ""
    with api_errors(target.describe(), rejected=InvalidTransaction):
        request = Request(None, rv, uid, dry_run=True)
        kind.send(access, kind.body(target, access.content, request), request)
