"""TransactionWorkflow: one Transaction, run as a saga.

Prepare takes a Lease per target in one canonical order (so two transactions can
never wait on each other in a cycle), waiting with backoff up to ``lockTimeout``,
then snapshots every target into the cluster. These short steps are local
activities: they cost no round trip through the server, and they are recorded
before the first write is scheduled. Commit walks the changes in spec order, in
batches; it registers the undo of every change of a batch *before* running it,
so an action whose result was lost to a crash is still undone. On a failure or a
cancel the registered undos run in reverse, shielded from further cancellation,
fenced like the commit: the leases are held again first (``janus retry`` comes
after they were released), and an undo refused for a lease another transaction
holds waits for it, up to ``lockTimeout``. Every terminal phase releases every
lease.

The workflow is deterministic: all I/O is in activities, called by name with the
models of ``janus.contract.operations``; time is ``workflow.now()``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError

with workflow.unsafe.imports_passed_through():
    from janus.contract import operations as ops
    from janus.contract import search_attributes
    from janus.contract.errors import LeaseLost, LockTimeout, SnapshotLost
    from janus.contract.models import (
        LeaseWait,
        Phase,
        TransactionInput,
        TransactionStatus,
        parse_duration,
    )
    from workflows.policies import (
        BATCH_BUDGET,
        COMMIT_POINT_TIMER,
        FORWARD,
        LOCAL,
        LOCAL_UNDO,
        MAX_BATCH,
        MIRROR_EVERY_STEP_UP_TO,
        SNAPSHOT_BATCH,
        UNDO,
        failing_index,
        failure_text,
        failure_type,
        is_cancellation,
        lease_duration,
        progress_every,
    )
    from workflows.status import StatusBook, rollback_incomplete


@dataclass
class _Undo:
    """A registered undo: enough to put one target back."""

    target: ops.ResolvedTarget
    snapshot: ops.Snapshot
    applied: ops.ApplyResult | None = None
    #: No result is recorded for the action: it failed, was never tried, or its
    #: outcome is unknown. Every write of ours carries our marker, so what is
    #: there without it is not ours.
    unrecorded: bool = True


def _describe(batch: list[_Undo]) -> str:
    """How the UI names a batch: its one change, or the range of changes."""
    first, last = batch[0].target, batch[-1].target
    return first.describe() if first is last else f"changes {first.index}..{last.index}"


@workflow.defn
class TransactionWorkflow:
    def __init__(self) -> None:
        self._book: StatusBook | None = None
        self._targets: list[ops.ResolvedTarget] = []
        self._snapshots: dict[int, ops.Snapshot] = {}
        self._undos: list[_Undo] = []
        self._held: list[ops.LeaseRef] = []
        self._last_renewal: datetime | None = None
        self._renewed_at: datetime | None = None
        self._last_mirror: datetime | None = None
        self._events: list[ops.PhaseEvent] = []
        self._fenced = False
        #: Who held the leases the last retake before undoing could not take.
        self._blockers: dict[str, ops.Holder] = {}
        #: Until when an apply attempt that timed out may still write (see _apply).
        self._late_writes_until: datetime | None = None

    @workflow.query
    def status(self) -> TransactionStatus | None:
        return self._book.status if self._book else None

    @workflow.run
    async def run(self, txn: TransactionInput) -> TransactionStatus:
        self._txn = txn
        self._lease_duration = lease_duration(len(txn.spec.changes))
        self._book = StatusBook(txn, workflow_id=workflow.info().workflow_id, now=workflow.now())
        self._deadline = (
            workflow.now() + parse_duration(txn.spec.timeout) if txn.spec.timeout else None
        )
        await self._enter(
            Phase.PREPARING, "Taking leases and snapshotting targets", mirror=not self._small
        )
        try:
            await self._prepare()
            await self._commit()
        except (ActivityError, ApplicationError, CancelledError, asyncio.CancelledError) as err:
            await self._shielded(self._abort(err))
            if is_cancellation(err):
                raise asyncio.CancelledError("transaction cancelled and rolled back") from err
            raise ApplicationError(
                self._book.status.message, type=self._book.status.phase.value, non_retryable=True
            ) from err
        if workflow.patched("no-rollback-after-commit-point"):
            await self._shielded(self._past_commit_point())
        await self._release_leases()
        await self._enter(Phase.COMMITTED, f"All {len(self._targets)} changes committed")
        return self._book.status

    # -- prepare ---------------------------------------------------------------

    async def _prepare(self) -> None:
        resolved: ops.ResolveResult = await workflow.execute_local_activity(
            ops.RESOLVE_TARGETS,
            ops.ResolveInput(ref=self._txn.ref, spec=self._txn.spec, withheld=self._txn.withheld),
            result_type=ops.ResolveResult,
            summary=f"resolve {len(self._txn.spec.changes)} targets through discovery",
            **LOCAL,
        )
        self._targets = resolved.targets
        for target in self._targets:
            self.book.set_target(target.index, target.key())
        await self._acquire_all_leases()
        await self._snapshot_all()
        await self._enter(Phase.PREPARED, f"Prepared {len(self._targets)} changes", mirror=False)

    def _lease_order(self) -> list[ops.LeaseRef]:
        """The canonical order every transaction takes leases in."""
        refs = {
            (t.lease_namespace, t.lease_name): ops.LeaseRef(
                name=t.lease_name, namespace=t.lease_namespace, target=t.key()
            )
            for t in self._targets
        }
        return [refs[k] for k in sorted(refs)]

    async def _acquire_all_leases(self) -> None:
        order = self._lease_order()
        deadline = workflow.now() + parse_duration(self._txn.spec.lock_timeout)
        backoff = timedelta(milliseconds=250)
        while True:
            result = await self._acquire(order, summary=f"acquire {len(order)} leases in order")
            self._held = [r for r in order if r.name in set(result.acquired)]
            self._note_leases(result.acquired)
            if result.blocked_by is None:
                self.book.done_waiting()
                return
            holder = result.blocked_by
            waited_out = workflow.now() >= deadline
            message = (
                f"lease {holder.lease.namespace}/{holder.lease.name} for "
                f"{holder.lease.target} is held by transaction {holder.identity}"
            )
            self._note_wait(holder, gave_up=waited_out)
            if waited_out:
                raise ApplicationError(
                    f"{message}; gave up after lockTimeout {self._txn.spec.lock_timeout}",
                    type=LockTimeout.__name__,
                    non_retryable=True,
                )
            self.book.note(f"Waiting: {message}")
            await self._mirror()
            # The mirror takes time too: the deadline may have passed meanwhile (a
            # negative timer would fail the workflow task; the next try gives up).
            remaining = deadline - workflow.now()
            if remaining > timedelta(0):
                await workflow.sleep(min(backoff, remaining))
            backoff = min(backoff * 2, timedelta(seconds=5))

    def _note_wait(self, holder: ops.Holder, *, gave_up: bool, undo: bool = False) -> None:
        """Show the wait as ``status.waiting`` (since 0.2; before, only in the message)."""
        if not workflow.patched("status-waiting"):
            return
        lease = holder.lease
        self.book.wait_for(
            LeaseWait(
                lease=f"{lease.namespace}/{lease.name}",
                target=lease.target,
                holder=holder.identity,
                since=workflow.now(),
                undo=undo,
                gave_up=gave_up,
            )
        )

    async def _acquire(
        self, leases: list[ops.LeaseRef], *, summary: str, renewal: bool = False
    ) -> ops.AcquireLeasesResult:
        result: ops.AcquireLeasesResult = await workflow.execute_local_activity(
            ops.ACQUIRE_LEASES,
            ops.AcquireLeasesInput(
                holder=self._txn.ref.holder_identity(),
                leases=leases,
                duration_seconds=int(self._lease_duration.total_seconds()),
                renewal=renewal,
            ),
            result_type=ops.AcquireLeasesResult,
            summary=summary,
            **LOCAL,
        )
        self._last_renewal = workflow.now()
        if result.renewed_at is not None:
            self._renewed_at = result.renewed_at
        return result

    def _note_leases(self, acquired: list[str]) -> None:
        held = set(acquired)
        for target in self._targets:
            if target.lease_name in held:
                self.book.leased(target.index, target.lease_name)

    async def _snapshot_all(self) -> None:
        batches = [
            self._targets[i : i + SNAPSHOT_BATCH]
            for i in range(0, len(self._targets), SNAPSHOT_BATCH)
        ]
        # A run a reset started has each target's refusal reported, not the batch's:
        # the others get their snapshots, so the rollback undoes what an earlier run
        # applied to them (make chaos SEED=11 TRIAL=100: a target deleted by someone
        # else refused the batch, and RolledBack "0 changes" left the others applied).
        refuse_each = self._started_by_reset() and workflow.patched("undo-after-refused-prepare")
        results = await asyncio.gather(
            *(self._snapshot(batch, refuse_each=refuse_each) for batch in batches)
        )
        for result in results:
            for snap in result.snapshots:
                self._snapshots[snap.index] = snap
                self.book.prepared(snap.index, snap.resource_version)
        refused = sorted((f for r in results for f in r.refused), key=lambda f: f.index)
        if refused:
            first = refused[0]
            raise ApplicationError(first.message, first.index, type=first.type, non_retryable=True)
        if not self._small:
            await self._mirror()

    async def _snapshot(
        self, batch: list[ops.ResolvedTarget], *, refuse_each: bool
    ) -> ops.SnapshotResult:
        first, last = batch[0].index, batch[-1].index
        result: ops.SnapshotResult = await workflow.execute_local_activity(
            ops.SNAPSHOT_TARGETS,
            ops.SnapshotInput(
                ref=self._txn.ref, identity=self._identity(), targets=batch, refuse_each=refuse_each
            ),
            result_type=ops.SnapshotResult,
            summary=f"snapshot and dry-run changes {first}..{last}",
            **LOCAL,
        )
        return result

    # -- commit ----------------------------------------------------------------

    async def _commit(self) -> None:
        await self._enter(Phase.COMMITTING, f"Committing {len(self._targets)} changes")
        position = 0
        while position < len(self._targets):
            self._check_deadline()
            await self._renew_if_due()
            # Registered before the action: a change whose result was lost (a crash,
            # a retried batch that got less far) is undone too, by its marker.
            end = position + MAX_BATCH
            self._undos.extend(
                _Undo(target=t, snapshot=self._snapshots[t.index])
                for t in self._targets[len(self._undos) : end]
            )
            batch = self._undos[position:end]
            result = await self._settled(self._apply(batch), batch)
            position += len(result.applied)
            self.book.note(f"Committed {position}/{len(self._targets)}")
            if result.failure is not None and not result.failure.retryable:
                if not workflow.patched("keep-undos-of-unknown-outcome"):
                    # 0.1.0 dropped the undos after the failed change; but an earlier
                    # attempt of the batch may have got further than this one (its
                    # leases were fine then), so since 0.2 they stay: each undo whose
                    # outcome is unknown is decided by the target's marker.
                    del self._undos[position + 1 :]
                raise ApplicationError(
                    result.failure.message,
                    result.failure.index,
                    type=result.failure.type,
                    non_retryable=True,
                )
            await self._progress(more=position < len(self._targets))

    async def _apply(self, batch: list[_Undo]) -> ops.ApplyBatchResult:
        """Run one batch; note when an earlier attempt of it may still be writing.

        An attempt that failed or was retried may have timed out on the server
        while it still runs (a hung request, a worker cut off from Temporal). It
        sends nothing after its write window (``ATTEMPT_WRITE_WINDOW`` from its
        start, before this result came back), and the API server stores nothing
        of it after ``API_SERVER_SLACK`` more: the rollback waits that out first."""
        try:
            result = await self._apply_batch(batch)
        except ActivityError:
            self._expect_late_writes()
            raise
        if result.attempt > 1:
            self._expect_late_writes()
        return result

    def _expect_late_writes(self) -> None:
        self._late_writes_until = workflow.now() + ops.ATTEMPT_WRITE_WINDOW + ops.API_SERVER_SLACK

    async def _outwait_late_writes(self) -> None:
        """Before undoing: let every write a timed-out apply attempt may still make
        land first, so none lands behind the undo (a late Create would stay behind
        a RolledBack Transaction; a late Patch would re-apply over the restore)."""
        until = self._late_writes_until
        if until is None or not workflow.patched("outwait-late-writes"):
            return
        if workflow.now() < until:
            self.book.note("Rolling back: waiting out a timed-out attempt's last writes")
            await workflow.sleep(until - workflow.now())

    async def _apply_batch(self, batch: list[_Undo]) -> ops.ApplyBatchResult:
        result: ops.ApplyBatchResult = await workflow.execute_activity(
            ops.APPLY_CHANGES,
            ops.ApplyInput(
                ref=self._txn.ref,
                identity=self._identity(),
                steps=[(u.target, u.snapshot) for u in batch],
                lease_duration_seconds=int(self._lease_duration.total_seconds()),
                leases_renewed_at=self._renewed_at,
                budget_seconds=BATCH_BUDGET.total_seconds(),
            ),
            result_type=ops.ApplyBatchResult,
            summary=_describe(batch),
            **FORWARD,
        )
        return result

    async def _settled(
        self, write: Coroutine[Any, Any, ops.ApplyBatchResult], batch: list[_Undo]
    ) -> ops.ApplyBatchResult:
        """Let a batch of writes finish even when cancelled, so no undo races them.

        A cancel arriving mid-batch is re-raised once the batch has settled, with
        its results recorded for the undos.
        """
        task = asyncio.ensure_future(write)
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError:
            with contextlib.suppress(ActivityError):  # then every outcome stays unknown
                self._record(batch, await task)
            raise
        self._record(batch, result)
        return result

    async def _past_commit_point(self) -> None:
        """Make the commit point durable before Committed is shown; from then on a
        cancel is too late to roll back (the caller shields the rest).

        Without it, the workflow task that sees the last change applied also writes
        Committed (local activities) and closes the workflow; a cancel arriving
        meanwhile makes the server refuse that task, whose status write stays, and its
        replay sees the cancel first: Committed, then RolledBack (found in a
        fault-explorer record). A timer ends the task with the results recorded: a
        cancel now arrives after them."""
        await workflow.sleep(COMMIT_POINT_TIMER)

    def _record(self, batch: list[_Undo], result: ops.ApplyBatchResult) -> None:
        """Keep each applied change's result for its undo."""
        for undo, applied in zip(batch, result.applied, strict=False):
            undo.applied, undo.unrecorded = applied, False
            self.book.committed(undo.target.index)

    def _check_deadline(self) -> None:
        if self._deadline and workflow.now() > self._deadline:
            raise ApplicationError(
                f"spec.timeout {self._txn.spec.timeout} passed before all changes committed",
                type="Timeout",
                non_retryable=True,
            )

    async def _renew_if_due(self) -> None:
        """Long transactions keep every lease alive, and learn early if one was lost."""
        if self._last_renewal and workflow.now() - self._last_renewal < self._lease_duration / 3:
            return
        result = await self._acquire(
            self._held, summary=f"renew {len(self._held)} leases", renewal=True
        )
        if result.blocked_by is not None:
            raise ApplicationError(
                f"lease {result.blocked_by.lease.name} for {result.blocked_by.lease.target} "
                f"was taken over by {result.blocked_by.identity}",
                type=LeaseLost.__name__,
                non_retryable=True,
            )

    # -- abort: undo in reverse ------------------------------------------------

    async def _abort(self, err: BaseException) -> None:
        reason = "cancelled by request" if is_cancellation(err) else failure_text(err)
        self._blame(err)
        self._undo_what_earlier_runs_may_have_applied()
        await self._enter(
            Phase.ROLLING_BACK, f"Rolling back: {reason}", warning=True, mirror=bool(self._undos)
        )
        await self._outwait_late_writes()
        blocked = await self._run_undos()
        await self._release_leases()
        # A change an earlier run applied whose snapshot is gone (a reset after the
        # Transaction's snapshots went) cannot be restored: Failed, naming it.
        lost = failure_type(err) == SnapshotLost.__name__ and workflow.patched(
            "snapshot-lost-fails"
        )
        if blocked:
            if workflow.patched("status-fits-object"):
                message = rollback_incomplete(blocked)
            else:
                message = f"Rollback incomplete: {'; '.join(blocked)}"
            await self._enter(Phase.FAILED, message, warning=True)
        elif lost:
            await self._enter(Phase.FAILED, f"Not rolled back: {reason}", warning=True)
        else:
            undone = self.book.status.summary.rolled_back
            await self._enter(
                Phase.ROLLED_BACK, f"Rolled back {undone} changes: {reason}", warning=True
            )

    def _undo_what_earlier_runs_may_have_applied(self) -> None:
        """A run a reset started (``temporal workflow reset``, ``janus retry``) may roll
        back before it reaches changes an earlier run of this Transaction applied: the
        reset dropped that run's apply from the history, not its effect (found by the
        fault explorer, ``make chaos SEED=11 TRIAL=121``: RolledBack with every change
        still applied). So every prepared change it has not reached gets an undo of
        unknown outcome, which the target decides: our marker there (for a Delete, gone
        after our note) is an earlier run's write, undone; none, nothing to undo."""
        if not self._started_by_reset():
            return  # the first run: what it never reached, nobody applied
        unreached = [t for t in self._targets[len(self._undos) :] if t.index in self._snapshots]
        if not unreached or not workflow.patched("undo-earlier-runs-changes"):
            return
        self._undos.extend(_Undo(target=t, snapshot=self._snapshots[t.index]) for t in unreached)

    @staticmethod
    def _started_by_reset() -> bool:
        """Whether an earlier run of this Transaction may have applied changes."""
        info = workflow.info()
        return info.run_id != info.first_execution_run_id

    def _blame(self, err: BaseException) -> None:
        """Put the error on the item it names, else on the first change not committed."""
        if is_cancellation(err):
            return
        index = failing_index(err)
        if index is None:
            pending = (i.index for i in self.book.status.items if not i.committed)
            index = next(pending, None)
        if index is not None:
            self.book.failed(index, failure_text(err))

    async def _run_undos(self) -> list[str]:
        blocked: list[str] = []
        pending = list(reversed(self._undos))
        self._fenced = bool(pending) and workflow.patched("fence-undos")
        if not self._fenced:
            await self._undo_each(pending, blocked)
            return blocked
        # Fenced (since 0.2): hold the leases again first; an undo that must write a
        # target whose lease another transaction holds is refused by the activity,
        # writing nothing, and tried again once the lease is free, up to lockTimeout.
        deadline = workflow.now() + parse_duration(self._txn.spec.lock_timeout)
        backoff = timedelta(milliseconds=250)
        await self._retake_leases()
        while True:
            waiting = await self._undo_each(pending, blocked)
            if not waiting:
                self.book.done_waiting()
                return blocked
            undo, reason = waiting[0]
            if workflow.now() >= deadline:
                self._note_wait(self._blocker_of(undo), gave_up=True, undo=True)
                blocked += [self._undo_failed(undo, reason) for undo, reason in waiting]
                return blocked
            self._note_wait(self._blocker_of(undo), gave_up=False, undo=True)
            self.book.note(f"Waiting to roll back {undo.target.describe()}: {reason}")
            await self._mirror()
            remaining = deadline - workflow.now()  # the mirror may have taken it all
            if remaining > timedelta(0):
                await workflow.sleep(min(backoff, remaining))
            backoff = min(backoff * 2, timedelta(seconds=5))
            await self._retake_leases()
            pending = [undo for undo, _reason in waiting]

    async def _undo_each(self, pending: list[_Undo], blocked: list[str]) -> list[tuple[_Undo, str]]:
        """Run the undos in order; add what blocked them to ``blocked``. Return the
        undos refused because another transaction holds their lease (fenced only)."""
        waiting: list[tuple[_Undo, str]] = []
        size = MAX_BATCH
        while pending:
            await self._keep_leases()
            batch = pending[:size]
            try:
                result = await self._undo(batch)
            except ActivityError as err:
                if len(batch) > 1:  # find out whether the first undo is the one that fails
                    size = 1
                    continue
                blocked.append(self._undo_failed(batch[0], failure_text(err)))
                pending, size = pending[1:], MAX_BATCH
                continue
            size = MAX_BATCH
            for undo, outcome in zip(batch, result.done, strict=False):
                problem = self._undone(undo, outcome)
                if problem:
                    blocked.append(problem)
            done = len(result.done)
            failure = result.failure
            if failure is not None and not failure.retryable:
                if self._fenced and failure.type == LeaseLost.__name__:
                    waiting.append((batch[done], failure.message))
                else:
                    blocked.append(self._undo_failed(batch[done], failure.message))
                done += 1
            pending = pending[done:]
            await self._progress(more=bool(pending))
        return waiting

    async def _retake_leases(self) -> None:
        """Hold every lease we can again, before undo writes.

        After ``janus retry`` the leases were released by the run that failed, and a
        lease may have been taken over while a worker was down. Leases that are free,
        expired or ours are taken; one that another transaction holds is left to it
        (the undo that needs it waits, see ``_run_undos``).
        """
        order = self._lease_order()
        try:
            renewed = await self._acquire(
                order, summary=f"renew {len(order)} leases to roll back", renewal=True
            )
        except (ActivityError, ApplicationError) as err:
            # Not a reason to stop rolling back (the Transaction would stay RollingBack):
            # every undo write is still fenced by its own attempt, which reads or renews
            # the leases itself and refuses a target whose lease is not ours.
            if is_cancellation(err) or not workflow.patched("roll-back-without-retake"):
                raise
            workflow.logger.warning(
                "retaking the leases to roll back failed: %s; each undo checks its lease",
                failure_text(err),
            )
            return
        self._blockers = {}
        if renewed.blocked_by is None:  # the usual case: all still ours
            self._held = order
            return
        got = set(renewed.acquired)
        taken, blockers = await self._take_each([r for r in order if r.name not in got])
        self._held = [r for r in order if r.name in got] + taken
        self._blockers = {holder.lease.name: holder for holder in blockers}
        for holder in blockers:
            workflow.logger.warning(
                "rolling back while lease %s is held by %s: its undo may not write",
                holder.lease.name,
                holder.identity,
            )

    def _blocker_of(self, undo: _Undo) -> ops.Holder:
        """Who holds the lease an undo waits for, as the last retake found it."""
        target = undo.target
        found = self._blockers.get(target.lease_name)
        if found is not None:
            return found
        lease = ops.LeaseRef(
            name=target.lease_name, namespace=target.lease_namespace, target=target.key()
        )
        return ops.Holder(lease=lease, identity="another transaction (taken since)")

    async def _take_each(
        self, order: list[ops.LeaseRef]
    ) -> tuple[list[ops.LeaseRef], list[ops.Holder]]:
        """Take every lease we can, skipping (not stopping at) those others hold."""
        held: list[ops.LeaseRef] = []
        blockers: list[ops.Holder] = []
        rest = order
        while rest:
            result = await self._acquire(rest, summary=f"retake {len(rest)} leases to roll back")
            got = set(result.acquired)
            held += [r for r in rest if r.name in got]
            if result.blocked_by is None:
                break
            blockers.append(result.blocked_by)
            names = [r.name for r in rest]
            rest = rest[names.index(result.blocked_by.lease.name) + 1 :]
        return held, blockers

    async def _undo(self, batch: list[_Undo]) -> ops.UndoBatchResult:
        fencing: dict[str, Any] = {}
        if self._fenced:
            fencing = {
                "lease_duration_seconds": int(self._lease_duration.total_seconds()),
                "leases_renewed_at": self._renewed_at,
            }
        result: ops.UndoBatchResult = await workflow.execute_activity(
            ops.UNDO_CHANGES,
            ops.UndoInput(
                ref=self._txn.ref,
                identity=self._identity(),
                **fencing,
                steps=[
                    ops.UndoStep(
                        target=u.target,
                        snapshot=u.snapshot,
                        applied=u.applied,
                        action_failed=u.unrecorded,
                    )
                    for u in batch
                ],
                budget_seconds=BATCH_BUDGET.total_seconds(),
            ),
            result_type=ops.UndoBatchResult,
            summary=f"undo {_describe(batch)}",
            **UNDO,
        )
        return result

    def _undo_failed(self, undo: _Undo, reason: str) -> str:
        text = f"undo of {undo.target.describe()} failed: {reason}"
        self.book.failed(undo.target.index, text)
        return text

    def _undone(self, undo: _Undo, result: ops.UndoResult) -> str | None:
        """Record one undo; return what blocked it, or None when the target is back."""
        index = undo.target.index
        if result.outcome == ops.UndoOutcome.MODIFIED_BY_OTHERS:
            text = f"{undo.target.describe()}: {result.message}"
            self.book.failed(index, result.message)
            self.book.condition("UndoSkipped", True, "ModifiedByOthers", text, now=workflow.now())
            return text
        if result.foreign and not self.book.item(index).error:
            self.book.failed(index, result.message)
        if result.outcome == ops.UndoOutcome.RESTORED or self.book.item(index).committed:
            self.book.rolled_back(index)
        return None

    async def _shielded(self, work: Coroutine[Any, Any, None]) -> None:
        """Run compensation to the end even if the workflow is cancelled again."""
        task = asyncio.ensure_future(work)
        while not task.done():
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                continue
        task.result()

    # -- leases, status --------------------------------------------------------

    async def _keep_leases(self) -> None:
        """During a rollback, keep the leases alive; a lost one does not stop the undos
        (each undo still refuses to overwrite a write that is not ours, and, fenced,
        to write a target whose lease is not ours)."""
        if not self._held:
            return
        try:
            await self._renew_if_due()
        except (ActivityError, ApplicationError) as err:
            workflow.logger.warning("lease renewal during rollback failed: %s", failure_text(err))

    async def _release_leases(self) -> None:
        """Release every lease. Should that keep failing, the leases are left to expire
        (their duration without renewal): the transaction still ends.

        Since 0.2 a run that resolved no targets (cancelled or failed first) releases
        too: after a reset, an earlier run may have taken leases under the same
        holder, and the activity finds those by their label."""
        if not self._targets and not workflow.patched("release-unresolved-leases"):
            return
        try:
            await workflow.execute_local_activity(
                ops.RELEASE_LEASES,
                ops.ReleaseLeasesInput(
                    holder=self._txn.ref.holder_identity(), leases=self._lease_order()
                ),
                summary=f"release {len(self._targets)} leases",
                **LOCAL_UNDO,
            )
        except ActivityError as err:
            workflow.logger.warning(
                "releasing leases failed; left to expire: %s", failure_text(err)
            )
        self._held = []

    async def _enter(
        self, phase: Phase, message: str, *, warning: bool = False, mirror: bool = True
    ) -> None:
        """Enter a phase: status, search attribute, an Event; mirrored now unless
        another phase follows at once (then both are shown by its mirror)."""
        self.book.enter(phase, message, now=workflow.now())
        self._conditions_for(phase, message)
        workflow.upsert_search_attributes(
            [search_attributes.TRANSACTION_PHASE.value_set(phase.value)]
        )
        workflow.set_current_details(f"**{phase.value}**: {message}")
        self._events.append(
            ops.PhaseEvent(phase=phase, reason=phase.value, message=message, warning=warning)
        )
        if mirror:
            await self._mirror()

    def _conditions_for(self, phase: Phase, message: str) -> None:
        now = workflow.now()
        if phase == Phase.PREPARED:
            self.book.condition("Prepared", True, "LeasesHeld", message, now=now)
        elif phase == Phase.COMMITTED:
            self.book.condition("Committed", True, "AllChangesApplied", message, now=now)
        elif phase in (Phase.ROLLED_BACK, Phase.FAILED):
            self.book.condition("Committed", False, phase.value, message, now=now)
            self.book.condition(
                "RolledBack", phase == Phase.ROLLED_BACK, phase.value, message, now=now
            )

    async def _mirror(self) -> None:
        """Show the status (and the Events of the phases entered since the last
        mirror) on the Transaction. Never a reason to stop the saga: a status that
        could not be written is written whole by the next mirror; the terminal one
        is retried as long as an undo would be."""
        self._last_mirror = workflow.now()
        phase = self.book.status.phase
        events, self._events = self._events, []
        compact = workflow.patched("status-fits-object")
        if workflow.patched("status-sequence"):
            self.book.next_sequence(workflow.now())
        visible = self.book.visible(compact=compact)
        try:
            await workflow.execute_local_activity(
                ops.MIRROR_STATUS,
                ops.MirrorStatusInput(ref=self._txn.ref, status=visible, events=events),
                summary=f"status: {phase.value}",
                **(LOCAL_UNDO if phase.terminal or phase == Phase.ROLLING_BACK else LOCAL),
            )
        except ActivityError as err:
            if is_cancellation(err):
                raise
            self._events = events + self._events
            workflow.logger.warning("mirroring status failed: %s", failure_text(err))

    async def _progress(self, *, more: bool) -> None:
        """Mirror progress between batches: after each one for a small transaction;
        for a large one at most once per ``progress_every``, so history and API load
        stay bounded. After the last batch the next phase's mirror shows it."""
        if not more:
            return
        now = workflow.now()
        interval = progress_every(len(self._targets))
        if self._small or self._last_mirror is None or now - self._last_mirror >= interval:
            await self._mirror()

    @property
    def _small(self) -> bool:
        return len(self._txn.spec.changes) <= MIRROR_EVERY_STEP_UP_TO

    def _identity(self) -> ops.Identity:
        return ops.Identity(
            namespace=self._txn.ref.namespace,
            service_account=self._txn.spec.service_account_name,
        )

    @property
    def book(self) -> StatusBook:
        assert self._book is not None
        return self._book
