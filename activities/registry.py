"""The activities the worker registers, under the names ``janus.operations`` gives.

Activities are synchronous (the Kubernetes client is) and run in the worker's
thread pool. Each one turns a ``JanusError`` into a non-retryable
``ApplicationError`` of the same name; anything else (a 409, a 5xx, a timeout)
propagates and Temporal retries it. The worker's fault-injection and
repeat-every-activity settings hook in here, around the real work, so tests
exercise the saga through configuration, never by patching code.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import changes, resolve, status
from activities.cluster import Cluster
from activities.leases import LeaseKeeper
from activities.snapshots import SnapshotStore
from janus import operations as ops
from janus.config import FaultPoint, WorkerSettings
from janus.errors import InjectedFault, JanusError, about_change
from janus.models import TransactionRef

T = TypeVar("T")


def is_secret(target: ops.ResolvedTarget) -> bool:
    return target.api_version == "v1" and target.kind == "Secret"


class TransactionActivities:
    def __init__(self, cluster: Cluster, settings: WorkerSettings) -> None:
        self.cluster = cluster
        self.settings = settings
        self.leases = LeaseKeeper(cluster)
        self.snapshots = SnapshotStore(cluster)
        self._fired: set[tuple[str, str, int]] = set()
        self._fired_lock = threading.Lock()

    def all(self) -> list[Callable[..., Any]]:
        return [
            self.resolve_targets,
            self.acquire_leases,
            self.release_leases,
            self.snapshot_targets,
            self.apply_change,
            self.undo_change,
            self.mirror_status,
        ]

    @activity.defn(name=ops.RESOLVE_TARGETS)
    def resolve_targets(self, request: ops.ResolveInput) -> ops.ResolveResult:
        return self._run(
            lambda: resolve.resolve_targets(self.cluster, request, self.settings.lease_namespace)
        )

    @activity.defn(name=ops.ACQUIRE_LEASES)
    def acquire_leases(self, request: ops.AcquireLeasesInput) -> ops.AcquireLeasesResult:
        return self._run(lambda: self.leases.acquire(request))

    @activity.defn(name=ops.RELEASE_LEASES)
    def release_leases(self, request: ops.ReleaseLeasesInput) -> None:
        self._run(lambda: self.leases.release(request))

    @activity.defn(name=ops.SNAPSHOT_TARGETS)
    def snapshot_targets(self, request: ops.SnapshotInput) -> ops.SnapshotResult:
        def work() -> ops.SnapshotResult:
            states: list[tuple[int, bool, dict[str, Any] | None]] = []
            for target in request.targets:
                with about_change(target.index):
                    self._fault("snapshot", request.ref, target.index, FaultPoint.BEFORE)
                    access = changes.TargetAccess(self.cluster, request.identity, target)
                    current = access.read()
                    changes.verify_and_dry_run(access, current)
                states.append((target.index, is_secret(target), current))
            return ops.SnapshotResult(snapshots=self.snapshots.save(request.ref, states))

        return self._run(work)

    @activity.defn(name=ops.APPLY_CHANGE)
    def apply_change(self, request: ops.ApplyInput) -> ops.ApplyResult:
        index = request.target.index

        @about_change(index)
        def work() -> ops.ApplyResult:
            self._fault("apply", request.ref, index, FaultPoint.BEFORE)
            self.leases.ensure_held(
                request.lease, request.ref.holder_identity(), request.lease_duration_seconds
            )
            access = changes.TargetAccess(self.cluster, request.identity, request.target)
            result = changes.apply_change(access, request)
            self._fault("apply", request.ref, index, FaultPoint.AFTER)
            return result

        return self._run(work)

    @activity.defn(name=ops.UNDO_CHANGE)
    def undo_change(self, request: ops.UndoInput) -> ops.UndoResult:
        index = request.target.index

        @about_change(index)
        def work() -> ops.UndoResult:
            self._fault("undo", request.ref, index, FaultPoint.BEFORE)
            access = changes.TargetAccess(self.cluster, request.identity, request.target)
            stored = (
                self.snapshots.load(request.ref, request.snapshot)
                if request.snapshot.exists
                else None
            )
            result = changes.undo_change(access, request, stored)
            self._fault("undo", request.ref, index, FaultPoint.AFTER)
            return result

        return self._run(work)

    @activity.defn(name=ops.MIRROR_STATUS)
    def mirror_status(self, request: ops.MirrorStatusInput) -> None:
        self._run(lambda: status.mirror_status(self.cluster, request))

    def _run(self, work: Callable[[], T]) -> T:
        try:
            result = work()
            if self.settings.repeat_activities:
                result = work()
            return result
        except JanusError as err:
            details = [err.index] if err.index is not None else []
            raise ApplicationError(
                err.message, *details, type=type(err).__name__, non_retryable=True
            ) from err

    def _fault(self, operation: str, ref: TransactionRef, index: int, point: FaultPoint) -> None:
        for fault in self.settings.faults:
            if fault.point != point or not fault.matches(operation, index, ref.name):
                continue
            if point == FaultPoint.BEFORE:
                raise InjectedFault(f"injected fault: {operation} of change {index} failed")
            with self._fired_lock:
                key = (ref.uid, operation, index)
                if key in self._fired:
                    continue
                self._fired.add(key)
            raise RuntimeError(f"injected crash after {operation} of change {index}")
