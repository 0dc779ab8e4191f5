"""The activities the worker registers, under the names ``janus.contract.operations`` gives.

Activities are synchronous (the Kubernetes client is) and run in the worker's
thread pool. Each one turns a ``JanusError`` into a non-retryable
``ApplicationError`` of the same name; anything else (a 409, a 5xx, a timeout)
propagates and Temporal retries it. Around the real work, ``_run``:

- heartbeats from a helper thread, so a worker that dies mid-activity is
  noticed within the heartbeat timeout rather than the start-to-close timeout;
- fences every request by the attempt's deadline (``janus.clients.kubernetes``): its
  start-to-close timeout, and for the activities that write targets the shorter
  ``ATTEMPT_WRITE_WINDOW``; past it, or once Temporal has cancelled the attempt
  (it timed out on the server, or the worker shuts down), or once a reset has
  replaced its run (``activities.runs``), nothing is sent, so a timed-out or
  superseded attempt cannot write behind the retry, the rollback or the new run;
- keeps Secret values out of what the activity says back (``redact``): an
  error from work that saw a Secret is rebuilt from its scrubbed message.

Each step (a lease, a snapshot, a change's apply or undo) runs inside the
worker's test seams (``activities.seams``), all off unless configured.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError, CancelledError

from activities import changes, ownership, redact, resolve, status
from activities.cluster import Cluster
from activities.content import TransactionContent
from activities.keys import FingerprintKey
from activities.kinds import TargetAccess, kind_of
from activities.leases import Fence, LeaseKeeper
from activities.parallel import side_by_side
from activities.runs import CurrentRuns
from activities.seams import FaultOperation, Seams
from activities.snapshots import Earlier, SnapshotStore
from janus.clients.kubernetes import writes_until
from janus.contract import metrics
from janus.contract import operations as ops
from janus.contract.errors import JanusError, SnapshotLost, about_change
from janus.contract.models import TransactionRef, holds_secret
from janus.contract.settings import WorkerSettings

T = TypeVar("T")
S = TypeVar("S")
R = TypeVar("R")

logger = logging.getLogger(__name__)

#: How often a running activity heartbeats. The workflow's heartbeat timeout is a
#: few of these: a worker that dies mid-activity is noticed in seconds, not at
#: the end of the start-to-close timeout.
HEARTBEAT_EVERY = 2.0

#: Time kept back from an attempt's start-to-close timeout: its last request
#: ends before Temporal gives up on it.
DEADLINE_MARGIN = 1.0


class TransactionActivities:
    def __init__(
        self,
        cluster: Cluster,
        settings: WorkerSettings,
        runs: CurrentRuns | None = None,
        seams: Seams | None = None,
    ) -> None:
        self.cluster = cluster
        self.settings = settings
        self.runs = runs
        #: The test seams around every step; off unless given.
        self.seams = seams or Seams()
        self.leases = LeaseKeeper(cluster)
        self.key = FingerprintKey(cluster, settings.lease_namespace)
        self.snapshots = SnapshotStore(cluster, settings.lease_namespace)

    def all(self) -> list[Callable[..., Any]]:
        return [
            self.resolve_targets,
            self.acquire_leases,
            self.release_leases,
            self.snapshot_targets,
            self.apply_changes,
            self.undo_changes,
            self.mirror_status,
        ]

    @activity.defn(name=ops.RESOLVE_TARGETS)
    def resolve_targets(self, request: ops.ResolveInput) -> ops.ResolveResult:
        return self._run(
            lambda: resolve.resolve_targets(
                self.cluster,
                request,
                self.settings.lease_namespace,
                require_service_account=self.settings.require_service_account,
            )
        )

    @activity.defn(name=ops.ACQUIRE_LEASES)
    def acquire_leases(self, request: ops.AcquireLeasesInput) -> ops.AcquireLeasesResult:
        ref = _holder_ref(request.holder)

        def take(position: int) -> ops.Holder | None:
            lease = request.leases[position]
            if request.renewal:
                return self.leases.renew(lease, request.holder, request.duration_seconds)
            return self.leases.take(lease, request.holder, request.duration_seconds)

        def one(position: int) -> ops.Holder | None:
            return self.seams.around(
                "acquire", ref, position, lambda: take(position), landed=_taken
            )

        def work() -> ops.AcquireLeasesResult:
            renewed_at = datetime.now(UTC)
            positions = range(len(request.leases))
            if request.renewal:  # all held: no order to keep, so side by side
                blockers = side_by_side(one, positions)
            else:  # in canonical order, stopping at the first lease someone else holds
                blockers = []
                for position in positions:
                    blockers.append(one(position))
                    if blockers[-1] is not None:
                        break
            acquired = [request.leases[i].name for i, b in enumerate(blockers) if b is None]
            blocked = next((b for b in blockers if b is not None), None)
            if blocked is not None:
                return ops.AcquireLeasesResult(acquired=acquired, blocked_by=blocked)
            return ops.AcquireLeasesResult(acquired=acquired, renewed_at=renewed_at)

        return self._run(work)

    @activity.defn(name=ops.RELEASE_LEASES)
    def release_leases(self, request: ops.ReleaseLeasesInput) -> None:
        """Release every lease, several at once: no order is needed to let go.

        Besides the leases the run names, every lease labelled with the
        transaction's uid and still held by it: an earlier run of the workflow
        (before a ``temporal workflow reset``) may have taken leases this run
        never resolved. A lease someone else holds now is left alone."""
        ref = _holder_ref(request.holder)

        def one(lease: ops.LeaseRef, position: int) -> None:
            self.seams.around(
                "release",
                ref,
                position,
                lambda: self.leases.release(
                    ops.ReleaseLeasesInput(holder=request.holder, leases=[lease])
                ),
            )

        def work() -> None:
            named = list(request.leases)
            side_by_side(lambda position: one(named[position], position), range(len(named)))
            known = {(lease.namespace, lease.name) for lease in named}
            namespaces = {self.settings.lease_namespace, *(lease.namespace for lease in named)}
            others = [
                lease
                for namespace in sorted(namespaces)
                for lease in self.leases.labelled(request.holder, namespace)
                if (lease.namespace, lease.name) not in known
            ]
            side_by_side(
                lambda lease: self.leases.release(
                    ops.ReleaseLeasesInput(holder=request.holder, leases=[lease])
                ),
                others,
            )

        self._run(work)

    @activity.defn(name=ops.SNAPSHOT_TARGETS)
    def snapshot_targets(self, request: ops.SnapshotInput) -> ops.SnapshotResult:
        def look(step: tuple[ops.ResolvedTarget, dict[str, Any] | None]) -> Earlier:
            target, content = step
            with _counted_step("prepare"), about_change(target.index):
                self.seams.before("snapshot", request.ref, target.index)
                access = TargetAccess(
                    self.cluster, request.identity, target, content, key=self.key.get()
                )
                current = access.read()
                if changes.applied_by_earlier_run(access, request.ref, current):
                    return self._earlier_snapshot(request.ref, target)
                changes.refuse_written_by(request.ref, target, current)
                changes.verify_and_dry_run(access, current)
                kind = kind_of(target.change_type)
                absent_at = kind.absent_since(access) if current is None else ""
            return Earlier(obj=current, managers=ownership.signatures(current), absent_at=absent_at)

        def look_or_refuse(
            step: tuple[ops.ResolvedTarget, dict[str, Any] | None],
        ) -> Earlier | ops.StepFailure:
            """With ``refuse_each``: a refusal is this target's, not the batch's (a lost
            snapshot still fails the batch: nothing of it can be restored)."""
            try:
                return look(step)
            except SnapshotLost:
                raise
            except JanusError as err:
                return ops.StepFailure(
                    index=step[0].index,
                    type=type(err).__name__,
                    message=redact.scrub(err.message),
                    retryable=False,
                )

        def work() -> ops.SnapshotResult:
            contents = TransactionContent(self.cluster, request.ref)
            steps = [(t, contents.of(t)) for t in request.targets]
            looks = side_by_side(look_or_refuse if request.refuse_each else look, steps)
            seen = [
                (t, found)
                for t, found in zip(request.targets, looks, strict=True)
                if isinstance(found, Earlier)
            ]
            states = [(t.index, holds_secret(t), found.obj) for t, found in seen]
            managers = {t.index: found.managers for t, found in seen}
            saved = self.snapshots.save(request.ref, states, self.key.get(), managers)
            refused = [found for found in looks if isinstance(found, ops.StepFailure)]
            result = ops.SnapshotResult(snapshots=saved, refused=refused)
            for snap, (_t, found) in zip(result.snapshots, seen, strict=True):
                snap.managers, snap.absent_at = found.managers, found.absent_at
            # The step's "after" is after the shards are written: they hold every
            # target's snapshot at once.
            for target, _found in seen:
                self.seams.after("snapshot", request.ref, target.index)
            return result

        return self._run(work)

    def _earlier_snapshot(self, ref: TransactionRef, target: ops.ResolvedTarget) -> Earlier:
        """The snapshot of a change an earlier run of this Transaction applied (a reset).

        Never the target as it is now (our own write): a Create's target was absent
        (its create succeeded), the others' state is the one the earlier run stored."""
        if kind_of(target.change_type).absent_before():
            return Earlier(obj=None, managers={})
        earlier = self.snapshots.earlier(ref, target.index, holds_secret(target))
        if earlier is None:
            raise SnapshotLost(
                f"{target.describe()} already carries this transaction's change (the "
                "workflow was started again, e.g. by a reset), and the snapshot taken "
                "before it is gone; the state to restore is unknown, so the change is "
                "left as it is"
            )
        return earlier

    @activity.defn(name=ops.APPLY_CHANGES)
    def apply_changes(self, request: ops.ApplyInput) -> ops.ApplyBatchResult:
        contents = TransactionContent(self.cluster, request.ref)
        fence = Fence(
            self.leases,
            request.ref.holder_identity(),
            [t for t, _s in request.steps],
            renewed_at=request.leases_renewed_at,
            duration_seconds=request.lease_duration_seconds,
        )

        def apply(target: ops.ResolvedTarget, snapshot: ops.Snapshot) -> ops.ApplyResult:
            fence.before_write(target)
            access = TargetAccess(
                self.cluster, request.identity, target, contents.of(target), key=self.key.get()
            )
            access.stored = lambda: self._stored(request.ref, snapshot, access)
            return changes.apply_change(access, request.ref, snapshot)

        def one(step: tuple[ops.ResolvedTarget, ops.Snapshot]) -> ops.ApplyResult:
            target, snapshot = step
            return self.seams.around(
                "apply", request.ref, target.index, lambda: apply(target, snapshot)
            )

        def work() -> ops.ApplyBatchResult:
            applied, failure = self._batch(
                "apply",
                request.ref,
                [(t.index, (t, s)) for t, s in request.steps],
                one,
                request.budget_seconds,
            )
            return ops.ApplyBatchResult(
                applied=applied, failure=failure, attempt=activity.info().attempt
            )

        return self._run(work, writes_targets=True)

    @activity.defn(name=ops.UNDO_CHANGES)
    def undo_changes(self, request: ops.UndoInput) -> ops.UndoBatchResult:
        fence = (
            Fence(
                self.leases,
                request.ref.holder_identity(),
                [s.target for s in request.steps],
                renewed_at=request.leases_renewed_at,
                duration_seconds=request.lease_duration_seconds,
            )
            if request.lease_duration_seconds > 0
            else None
        )

        def undo(step: ops.UndoStep) -> ops.UndoResult:
            access = TargetAccess(self.cluster, request.identity, step.target, key=self.key.get())
            if fence is not None:
                access.fence = lambda: fence.before_write(step.target)
            stored = self._stored(request.ref, step.snapshot, access)
            return changes.undo_change(access, request.ref, step, stored)

        def one(step: ops.UndoStep) -> ops.UndoResult:
            return self.seams.around("undo", request.ref, step.target.index, lambda: undo(step))

        def work() -> ops.UndoBatchResult:
            done, failure = self._batch(
                "undo",
                request.ref,
                [(s.target.index, s) for s in request.steps],
                one,
                request.budget_seconds,
            )
            return ops.UndoBatchResult(done=done, failure=failure)

        return self._run(work, writes_targets=True)

    def _stored(
        self, ref: TransactionRef, snapshot: ops.Snapshot, access: TargetAccess
    ) -> dict[str, Any] | None:
        """The target as its snapshot stored it; None when it was absent."""
        stored = self.snapshots.load(ref, snapshot) if snapshot.exists else None
        if access.secret:
            redact.remember_secret(stored)
        return stored

    def _batch(
        self,
        operation: FaultOperation,
        ref: TransactionRef,
        steps: list[tuple[int, S]],
        one: Callable[[S], R],
        budget_seconds: float,
    ) -> tuple[list[R], ops.StepFailure | None]:
        """Run steps in order until one fails or the time budget is spent.

        What finished is always reported, so a failure never loses the results the
        undos need. A failure on the first step that is not a JanusError is raised
        instead, for Temporal to retry; later, the batch ends and the workflow
        starts the next one at the failed step. A configured delay ends the batch
        before its step, so the workflow records (and mirrors) what came before the
        window it opens.
        """
        done: list[R] = []
        started = time.monotonic()
        for index, step in steps:
            if done and (
                time.monotonic() - started >= budget_seconds
                or self.seams.delays_before(operation, ref, index)
            ):
                break
            try:
                with _counted_step(STEP_OF[operation]) as counted, about_change(index):
                    done.append(one(step))
                    counted.outcome = _outcome_of(done[-1])
            except JanusError as err:
                message = redact.scrub(err.message)
                return done, ops.StepFailure(
                    index=index, type=type(err).__name__, message=message, retryable=False
                )
            except CancelledError:
                raise
            except Exception as err:
                if not done:
                    raise
                message = redact.scrub(f"{type(err).__name__}: {err}")
                logger.warning(
                    "%s of change %s failed, to be retried: %s", operation, index, message
                )
                return done, ops.StepFailure(
                    index=index, type=type(err).__name__, message=message, retryable=True
                )
        return done, None

    @activity.defn(name=ops.MIRROR_STATUS)
    def mirror_status(self, request: ops.MirrorStatusInput) -> None:
        self._run(lambda: status.mirror_status(self.cluster, request))

    def _run(self, work: Callable[[], T], *, writes_targets: bool = False) -> T:
        """Run an activity's work: heartbeating, fenced by its deadline, redacting, and
        (if configured) twice.

        A JanusError becomes a non-retryable ApplicationError of the same name.
        When the work saw a Secret, every error is rebuilt from its scrubbed
        message alone: the original (an ApiException carries the API server's
        whole response) would reach the history and the log with its values.
        """
        stale = self.runs.stop_for_attempt() if self.runs is not None else None
        with _heartbeating(), _attempt_deadline(writes_targets, stale), redact.scope():
            try:
                return self.seams.repeated(work)
            except JanusError as err:
                details = [err.index] if err.index is not None else []
                failure = ApplicationError(
                    redact.scrub(err.message), *details, type=type(err).__name__, non_retryable=True
                )
                if redact.active():
                    raise failure from None
                raise failure from err
            except CancelledError:
                raise
            except Exception as err:
                if not redact.active():
                    raise
                text = redact.scrub(f"{type(err).__name__}: {err}")
                raise ApplicationError(text, type=type(err).__name__) from None


def _taken(blocker: ops.Holder | None) -> bool:
    """A lease step landed when nobody else held the lease."""
    return blocker is None


#: How ``janus_item_operations_total`` names the steps of a batch.
STEP_OF: dict[FaultOperation, str] = {"apply": "commit", "undo": "undo"}


@dataclass
class _Counted:
    outcome: str = "succeeded"


def _outcome_of(result: object) -> str:
    """How a finished step ended, as the counter labels it."""
    if isinstance(result, ops.ApplyResult) and result.already_applied:
        return "already_applied"
    if isinstance(result, ops.UndoResult):
        return UNDO_OUTCOMES[result.outcome]
    return "succeeded"


UNDO_OUTCOMES = {
    ops.UndoOutcome.RESTORED: "succeeded",
    ops.UndoOutcome.NOTHING_TO_UNDO: "skipped",
    ops.UndoOutcome.MODIFIED_BY_OTHERS: "conflict",
}


@contextlib.contextmanager
def _counted_step(operation: str) -> Iterator[_Counted]:
    """Count one change's step where it runs: its outcome, or how it failed."""
    counted = _Counted()
    try:
        yield counted
    except JanusError:
        metrics.ITEM_OPERATIONS.labels(operation, "failed").inc()
        raise
    except CancelledError:
        raise
    except Exception:
        metrics.ITEM_OPERATIONS.labels(operation, "retried").inc()
        raise
    metrics.ITEM_OPERATIONS.labels(operation, counted.outcome).inc()


def _holder_ref(holder: str) -> TransactionRef:
    """The transaction a lease holder identity names (namespace/name/uid)."""
    namespace, _, rest = holder.partition("/")
    name, _, uid = rest.rpartition("/")
    return TransactionRef(namespace=namespace, name=name, uid=uid)


@contextlib.contextmanager
def _attempt_deadline(
    writes_targets: bool, superseded: Callable[[], bool] | None = None
) -> Iterator[None]:
    """Fence every request of this attempt by the moment it must stop sending.

    That is its start (as Temporal recorded it: a task that waited in the worker
    has less time) plus its start-to-close timeout, less a margin; for one that
    writes targets at most ATTEMPT_WRITE_WINDOW. An attempt Temporal cancelled (a
    regular activity whose heartbeat timed out, or a worker shutting down) sends
    nothing more either, nor one whose run a reset replaced (``superseded``,
    ``activities.runs``), local or not.
    """
    if not activity.in_activity():
        yield
        return
    info = activity.info()
    allowed = (info.start_to_close_timeout or ops.ATTEMPT_WRITE_WINDOW).total_seconds()
    allowed -= DEADLINE_MARGIN
    if writes_targets:
        allowed = min(allowed, ops.ATTEMPT_WRITE_WINDOW.total_seconds())
    late = max(0.0, (datetime.now(UTC) - info.started_time).total_seconds())
    cancelled = None if info.is_local else activity.is_cancelled
    checks = [check for check in (cancelled, superseded) if check is not None]

    def stop() -> bool:
        return any(check() for check in checks)

    why = f"attempt {info.attempt} of {info.activity_type} (may send for {allowed:.0f}s)"
    with writes_until(time.monotonic() + allowed - late, why, stop=stop if checks else None):
        yield


@contextlib.contextmanager
def _heartbeating() -> Iterator[None]:
    """Heartbeat from a helper thread while the activity's work runs.

    Activities are synchronous; their calls to the API server block. The helper
    keeps Temporal told that the worker lives, so a worker killed mid-activity
    is noticed within the heartbeat timeout and the activity retried elsewhere.
    """
    if not activity.in_activity() or activity.info().is_local:
        yield  # a local activity's liveness is its workflow task's
        return
    stop = threading.Event()
    context = contextvars.copy_context()

    def beat() -> None:
        while not stop.wait(HEARTBEAT_EVERY):
            with contextlib.suppress(Exception):
                context.run(activity.heartbeat)

    helper = threading.Thread(target=beat, name="janus-heartbeat", daemon=True)
    helper.start()
    try:
        yield
    finally:
        stop.set()
        helper.join()
