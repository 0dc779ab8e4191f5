"""A cluster made of the saga's seven activities, faked under their real names.

The workflow calls activities by name with the models of ``janus.contract.operations``, so
these stand in for ``activities.registry`` with no server behind them: each one
records what the workflow asked for and answers as the test scripted it. Left
unscripted, every lease is free, every target exists, every change applies and
every undo restores its target. Failures take the shapes the real activities
give them: a ``StepFailure`` in a batch result for a change the API server
refused, an ``ApplicationError`` named after a ``janus.contract.errors`` class for an
activity that failed as a whole.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from janus.contract import operations as ops

M = TypeVar("M", bound=BaseModel)

#: The lease namespace the fake resolves every target's lease into.
LEASE_NAMESPACE = "janus-system"

#: When the fake says it took or renewed the leases: a second later on each call,
#: so a test can tell which call's time an activity input carries.
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class Call:
    """One activity attempt as the workflow scheduled it."""

    name: str
    request: BaseModel
    #: The test server's (skipped) clock when the attempt was scheduled; the local
    #: activities (all but apply and undo) carry the worker's clock instead.
    scheduled: datetime
    attempt: int


@dataclass
class Contender:
    """Another transaction holding a lease, for the next ``acquires`` tries (None: always)."""

    lease_index: int
    identity: str = "other/txn/uid-other"
    acquires: int | None = None


@dataclass
class FakeCluster:
    """The scripts (what goes wrong) and the record (what the workflow asked)."""

    #: Raised by target resolution (a bad Transaction) and by the snapshot step.
    resolve_error: Exception | None = None
    snapshot_error: Exception | None = None
    #: Change index -> the failure an apply batch reports at that change; a retryable
    #: one (a passing fault) only once.
    apply_failures: dict[int, ops.StepFailure] = field(default_factory=dict)
    #: Raised by the apply attempts in turn (one per attempt) before they succeed.
    apply_errors: list[Exception] = field(default_factory=list)
    #: At most this many changes per apply attempt (its time budget running out).
    apply_budget: int | None = None
    #: An apply attempt containing this change waits for ``release_apply`` first.
    apply_hold: int | None = None
    #: An undo batch containing one of these changes fails as a whole (a hung
    #: request past the attempt's deadline, a crash): nothing of it is reported.
    undo_breaks: set[int] = field(default_factory=set)
    #: Change index -> the result its undo reports. Default: restored when the action
    #: ran; nothing to undo when it failed (the target carries no marker of ours).
    undo_results: dict[int, ops.UndoResult] = field(default_factory=dict)
    #: Change index -> how many undo batches refuse it because its lease is held by
    #: another transaction (the fenced undo writes nothing, and says LeaseLost).
    undo_refusals: dict[int, int] = field(default_factory=dict)
    #: A lease another transaction holds while the saga tries to take them.
    holder: Contender | None = None
    #: Renewals from this many on find a lease taken over by another transaction.
    renewals_lost_from: int | None = None
    #: Raised by every renewal (a retake of the leases to roll back included): its
    #: local activity gives up.
    renewal_error: Exception | None = None

    calls: list[Call] = field(default_factory=list)
    mirrored: list[ops.MirrorStatusInput] = field(default_factory=list)
    apply_held: asyncio.Event = field(default_factory=asyncio.Event)
    release_apply: asyncio.Event = field(default_factory=asyncio.Event)

    def activities(self) -> list[Callable[..., object]]:
        return [
            self.resolve_targets,
            self.acquire_leases,
            self.release_leases,
            self.snapshot_targets,
            self.apply_changes,
            self.undo_changes,
            self.mirror_status,
        ]

    # -- what the workflow asked ------------------------------------------------

    def applies(self) -> list[ops.ApplyInput]:
        return self._of(ops.ApplyInput)

    def applied_batches(self) -> list[list[int]]:
        """The changes of each apply attempt, in the order they were asked for."""
        return [[t.index for t, _s in r.steps] for r in self.applies()]

    def undo_batches(self) -> list[list[int]]:
        """The changes of each undo attempt, in the order they were asked for."""
        return [[s.target.index for s in r.steps] for r in self._of(ops.UndoInput)]

    def undo_steps(self) -> dict[int, ops.UndoStep]:
        """The last undo step the workflow sent for each change."""
        return {s.target.index: s for r in self._of(ops.UndoInput) for s in r.steps}

    def acquires(self) -> list[ops.AcquireLeasesInput]:
        return self._of(ops.AcquireLeasesInput)

    def releases(self) -> list[ops.ReleaseLeasesInput]:
        return self._of(ops.ReleaseLeasesInput)

    def phases(self) -> list[str]:
        """The phases the status went through, as mirrored (repeats folded)."""
        shown: list[str] = []
        for mirror in self.mirrored:
            if not shown or shown[-1] != mirror.status.phase.value:
                shown.append(mirror.status.phase.value)
        return shown

    def messages(self) -> list[str]:
        return [m.status.message for m in self.mirrored]

    def scheduled(self, name: str) -> list[datetime]:
        return [c.scheduled for c in self.calls if c.name == name]

    def _of(self, model: type[M]) -> list[M]:
        return [c.request for c in self.calls if isinstance(c.request, model)]

    def _record(self, name: str, request: BaseModel) -> int:
        info = activity.info()
        self.calls.append(Call(name, request, info.current_attempt_scheduled_time, info.attempt))
        return info.attempt

    # -- the activities ---------------------------------------------------------

    @activity.defn(name=ops.RESOLVE_TARGETS)
    async def resolve_targets(self, request: ops.ResolveInput) -> ops.ResolveResult:
        self._record(ops.RESOLVE_TARGETS, request)
        if self.resolve_error is not None:
            raise self.resolve_error
        return ops.ResolveResult(
            targets=[
                ops.ResolvedTarget(
                    index=i,
                    change_type=change.type,
                    api_version=change.target.api_version,
                    kind=change.target.kind,
                    resource=f"{change.target.kind.lower()}s",
                    name=change.target.name,
                    namespace=change.target.namespace or request.ref.namespace,
                    lease_name=lease_of(i),
                    lease_namespace=LEASE_NAMESPACE,
                    content=change.content,
                )
                for i, change in enumerate(request.spec.changes)
            ]
        )

    @activity.defn(name=ops.ACQUIRE_LEASES)
    async def acquire_leases(self, request: ops.AcquireLeasesInput) -> ops.AcquireLeasesResult:
        self._record(ops.ACQUIRE_LEASES, request)
        renewed_at = renewed_at_call(len(self.acquires()))
        if request.renewal and self.renewal_error is not None:
            raise self.renewal_error
        if request.renewal:
            renewals = sum(1 for a in self.acquires() if a.renewal)
            if self.renewals_lost_from is not None and renewals >= self.renewals_lost_from:
                lost = request.leases[0]
                return ops.AcquireLeasesResult(
                    acquired=[lease.name for lease in request.leases[1:]],
                    blocked_by=ops.Holder(lease=lost, identity="other/txn/uid-other"),
                )
            return ops.AcquireLeasesResult(
                acquired=[lease.name for lease in request.leases], renewed_at=renewed_at
            )
        acquired: list[str] = []
        for lease in request.leases:
            if self._held_by_other(lease):
                assert self.holder is not None
                if self.holder.acquires is not None:
                    self.holder.acquires -= 1
                return ops.AcquireLeasesResult(
                    acquired=acquired,
                    blocked_by=ops.Holder(lease=lease, identity=self.holder.identity),
                )
            acquired.append(lease.name)
        return ops.AcquireLeasesResult(acquired=acquired, renewed_at=renewed_at)

    def _held_by_other(self, lease: ops.LeaseRef) -> bool:
        holder = self.holder
        if holder is None or lease.name != lease_of(holder.lease_index):
            return False
        return holder.acquires is None or holder.acquires > 0

    @activity.defn(name=ops.RELEASE_LEASES)
    async def release_leases(self, request: ops.ReleaseLeasesInput) -> None:
        self._record(ops.RELEASE_LEASES, request)

    @activity.defn(name=ops.SNAPSHOT_TARGETS)
    async def snapshot_targets(self, request: ops.SnapshotInput) -> ops.SnapshotResult:
        self._record(ops.SNAPSHOT_TARGETS, request)
        if self.snapshot_error is not None:
            raise self.snapshot_error
        return ops.SnapshotResult(
            snapshots=[
                ops.Snapshot(index=t.index, exists=True, resource_version=f"{t.index}00")
                for t in request.targets
            ]
        )

    @activity.defn(name=ops.APPLY_CHANGES)
    async def apply_changes(self, request: ops.ApplyInput) -> ops.ApplyBatchResult:
        attempt = self._record(ops.APPLY_CHANGES, request)
        if self.apply_hold in {t.index for t, _s in request.steps}:
            self.apply_held.set()
            await self.release_apply.wait()
        if self.apply_errors:
            raise self.apply_errors.pop(0)
        applied: list[ops.ApplyResult] = []
        for target, _snapshot in request.steps:
            failure = self.apply_failures.get(target.index)
            if failure is not None:
                if failure.retryable:
                    del self.apply_failures[target.index]
                return ops.ApplyBatchResult(applied=applied, failure=failure, attempt=attempt)
            if self.apply_budget is not None and len(applied) == self.apply_budget:
                break
            applied.append(ops.ApplyResult(resource_version=f"{target.index}01"))
        return ops.ApplyBatchResult(applied=applied, attempt=attempt)

    @activity.defn(name=ops.UNDO_CHANGES)
    async def undo_changes(self, request: ops.UndoInput) -> ops.UndoBatchResult:
        self._record(ops.UNDO_CHANGES, request)
        indices = [s.target.index for s in request.steps]
        broken = self.undo_breaks.intersection(indices)
        if broken:
            raise ApplicationError(
                f"undo attempt of changes {indices} died at change {min(broken)}",
                type="RuntimeError",
                non_retryable=True,
            )
        done: list[ops.UndoResult] = []
        for step in request.steps:
            index = step.target.index
            if self.undo_refusals.get(index, 0) > 0:
                self.undo_refusals[index] -= 1
                failure = ops.StepFailure(
                    index=index,
                    type="LeaseLost",
                    message=f"lease {lease_of(index)} is held by transaction other/txn",
                    retryable=False,
                )
                return ops.UndoBatchResult(done=done, failure=failure)
            untouched = ops.UndoResult(outcome=ops.UndoOutcome.NOTHING_TO_UNDO)
            restored = untouched if step.action_failed else ops.UndoResult(outcome=RESTORED)
            done.append(self.undo_results.get(index, restored))
        return ops.UndoBatchResult(done=done)

    @activity.defn(name=ops.MIRROR_STATUS)
    async def mirror_status(self, request: ops.MirrorStatusInput) -> None:
        self._record(ops.MIRROR_STATUS, request)
        self.mirrored.append(request)


RESTORED = ops.UndoOutcome.RESTORED


def lease_of(index: int) -> str:
    """The lease the fake names for change ``index``'s target."""
    return f"janus-target-{index}"


def renewed_at_call(number: int) -> datetime:
    """The time the fake's ``number``-th lease call (from 1) says it renewed at."""
    return EPOCH + timedelta(seconds=number)


def refused(index: int, message: str = "the API server refused it") -> ops.StepFailure:
    """What an apply batch reports for a change the API server rejected."""
    return ops.StepFailure(index=index, type="ChangeRejected", message=message, retryable=False)
