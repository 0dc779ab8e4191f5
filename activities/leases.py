"""Lease locks: one ``coordination.k8s.io/v1`` Lease per target, held by a transaction.

The holder identity names the transaction (namespace/name/uid), not the worker,
so any worker can resume it. A lease not renewed within its duration is expired
and may be taken over; a live holder's lease is never touched. Every write uses
the lease's resourceVersion, so two transactions racing for one lease cannot
both win.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from activities.cluster import Cluster, api_errors, translate
from activities.parallel import side_by_side
from janus.contract import metrics
from janus.contract.errors import JanusError, LeaseLost
from janus.contract.operations import (
    HOLDER_UID_LABEL,
    AcquireLeasesInput,
    AcquireLeasesResult,
    Holder,
    LeaseRef,
    ReleaseLeasesInput,
    ResolvedTarget,
)
from janus.contract.wire import micro_time

MANAGED_BY = {"app.kubernetes.io/managed-by": "janus"}

#: The uid of the transaction holding a lease, so an activity can find (and renew)
#: every lease of its transaction without the workflow sending it the whole list.
HOLDER_LABEL = HOLDER_UID_LABEL


def _holder_uid(holder: str) -> str:
    """The uid in a holder identity (namespace/name/uid)."""
    return holder.rpartition("/")[2]


def _labels(holder: str) -> dict[str, str]:
    return {**MANAGED_BY, HOLDER_LABEL: _holder_uid(holder)}


def _now() -> datetime:
    return datetime.now(UTC)


def _counted(operation: str, outcome: str) -> None:
    metrics.LOCK_OPERATIONS.labels(operation, outcome).inc()


@contextlib.contextmanager
def _errors_counted(operation: str) -> Iterator[None]:
    """An operation that raised (a timeout, a 5xx) has an unknown outcome: say so."""
    try:
        yield
    except Exception:
        _counted(operation, "error")
        raise


def expires_at(lease: k8s.V1Lease) -> datetime | None:
    spec = lease.spec
    if spec is None or not spec.holder_identity:
        return None
    last = spec.renew_time or spec.acquire_time
    if last is None:
        return None
    return last + timedelta(seconds=spec.lease_duration_seconds or 0)


def _fresh_spec(
    holder: str, duration: int, now: datetime, transitions: int, acquired: datetime | None = None
) -> k8s.V1LeaseSpec:
    return k8s.V1LeaseSpec(
        holder_identity=holder,
        lease_duration_seconds=duration,
        acquire_time=micro_time(acquired or now),
        renew_time=micro_time(now),
        lease_transitions=transitions,
    )


class LeaseKeeper:
    """Acquire, renew and release the leases of one transaction."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    def acquire(self, request: AcquireLeasesInput) -> AcquireLeasesResult:
        """Take leases in the given order; stop at the first one a live holder keeps."""
        acquired: list[str] = []
        for ref in request.leases:
            blocker = self.take(ref, request.holder, request.duration_seconds)
            if blocker is not None:
                return AcquireLeasesResult(acquired=acquired, blocked_by=blocker)
            acquired.append(ref.name)
        return AcquireLeasesResult(acquired=acquired)

    def take(self, ref: LeaseRef, holder: str, duration: int) -> Holder | None:
        """Take (or renew) one lease; return its live holder when that is someone else.

        A transaction's leases are usually new, so creating comes first."""
        with _errors_counted("acquire"):
            if self._create(ref, holder, duration, _now()):
                _counted("acquire", "acquired")
                return None
            return self._take(ref, holder, duration)

    def renew(self, ref: LeaseRef, holder: str, duration: int) -> Holder | None:
        """Renew a lease we hold; return who holds it instead, should it be lost."""
        with _errors_counted("renew"):
            return self._take(ref, holder, duration, must_hold=True)

    def check_held(self, ref: LeaseRef, holder: str) -> None:
        """Fencing by reading: fail if the lease is no longer ours."""
        lease = self._read(ref)
        current = lease.spec.holder_identity if lease and lease.spec else None
        if current != holder:
            raise LeaseLost(
                f"lease {ref.namespace}/{ref.name} for {ref.target} is now held by "
                f"{current or 'nobody (the lease is gone)'}; not writing"
            )

    def ensure_held(self, ref: LeaseRef, holder: str, duration: int) -> None:
        """Fencing: renew our lease, or fail if another transaction holds it now."""
        blocker = self.renew(ref, holder, duration)
        if blocker is not None:
            raise LeaseLost(
                f"lease {ref.namespace}/{ref.name} for {ref.target} is now held by "
                f"{blocker.identity}; not writing"
            )

    def renew_all(
        self, holder: str, duration: int, namespace: str, also: list[LeaseRef]
    ) -> dict[str, LeaseLost]:
        """Renew every lease the transaction holds (found by its label) and ``also``;
        return the ones lost, by lease name."""
        found = self.cluster.coordination.list_namespaced_lease(
            namespace, label_selector=f"{HOLDER_LABEL}={_holder_uid(holder)}"
        )
        refs = {ref.name: ref for ref in also}
        for lease in found.items:
            meta = lease.metadata
            if meta is None or not meta.name or meta.name in refs:
                continue
            target = (meta.annotations or {}).get("backup.janus.io/target", meta.name)
            refs[meta.name] = LeaseRef(name=meta.name, namespace=namespace, target=target)

        def renew(ref: LeaseRef) -> LeaseLost | None:
            try:
                self.ensure_held(ref, holder, duration)
            except LeaseLost as lost:
                return lost
            return None

        ordered = list(refs.values())
        outcomes = side_by_side(renew, ordered)
        return {ref.name: lost for ref, lost in zip(ordered, outcomes, strict=True) if lost}

    def release(self, request: ReleaseLeasesInput) -> None:
        """Delete our leases; one already gone or taken over is left as it is."""
        for ref in request.leases:
            with _errors_counted("release"):
                self._release(ref, request.holder)

    def labelled(self, holder: str, namespace: str) -> list[LeaseRef]:
        """Every lease in ``namespace`` labelled with the holder's uid, whoever holds it now.

        A run knows only the leases of the targets it resolved; an earlier run of
        the same workflow (before a reset) may have taken others, under the same
        holder identity: the label finds them all."""
        found = self.cluster.coordination.list_namespaced_lease(
            namespace, label_selector=f"{HOLDER_LABEL}={_holder_uid(holder)}"
        )
        return [
            LeaseRef(
                name=lease.metadata.name,
                namespace=namespace,
                target=(lease.metadata.annotations or {}).get(
                    "backup.janus.io/target", lease.metadata.name
                ),
            )
            for lease in found.items
            if lease.metadata is not None and lease.metadata.name
        ]

    def _take(
        self, ref: LeaseRef, holder: str, duration: int, *, must_hold: bool = False
    ) -> Holder | None:
        """Take, or with ``must_hold`` renew, one lease; counted once, at its outcome."""
        api = self.cluster.coordination
        operation = "renew" if must_hold else "acquire"
        now = _now()
        lease = self._read(ref)
        if lease is None:
            if must_hold:
                _counted(operation, "lost")
                return Holder(lease=ref, identity="nobody (the lease is gone)")
            if self._create(ref, holder, duration, now):
                _counted(operation, "acquired")
                return None
            return self._take(ref, holder, duration)  # created by someone meanwhile: look again
        spec = lease.spec or k8s.V1LeaseSpec()
        expiry = expires_at(lease)
        ours = spec.holder_identity == holder
        free = not spec.holder_identity or (expiry is not None and expiry <= now)
        if not ours and (must_hold or not free):
            _counted(operation, "lost" if must_hold else "contended")
            return Holder(lease=ref, identity=spec.holder_identity or "?", expires_at=expiry)
        transitions = (spec.lease_transitions or 0) + (0 if ours else 1)
        acquired = spec.acquire_time if ours else None
        lease.spec = _fresh_spec(holder, duration, now, transitions, acquired)
        if lease.metadata is not None:
            lease.metadata.labels = {**(lease.metadata.labels or {}), **_labels(holder)}
        try:
            with api_errors(f"lease {ref.namespace}/{ref.name}", rejected=JanusError):
                api.replace_namespaced_lease(ref.name, ref.namespace, lease)
        except ApiException as err:
            if err.status == 409:  # someone wrote it meanwhile: look again
                return self._take(ref, holder, duration, must_hold=must_hold)
            raise
        if must_hold:
            _counted(operation, "renewed")
        else:
            _counted(operation, "acquired" if ours or not spec.holder_identity else "taken_over")
        return None

    def _read(self, ref: LeaseRef) -> k8s.V1Lease | None:
        try:
            lease: k8s.V1Lease = self.cluster.coordination.read_namespaced_lease(
                ref.name, ref.namespace
            )
        except ApiException as err:
            if err.status == 404:
                return None
            raise translate(err, f"lease {ref.namespace}/{ref.name}", rejected=JanusError) from err
        return lease

    def _create(self, ref: LeaseRef, holder: str, duration: int, now: datetime) -> bool:
        """Create the lease as ours; False when it exists already."""
        body = k8s.V1Lease(
            metadata=k8s.V1ObjectMeta(
                name=ref.name,
                namespace=ref.namespace,
                labels=_labels(holder),
                annotations={"backup.janus.io/target": ref.target},
            ),
            spec=_fresh_spec(holder, duration, now, 0),
        )
        try:
            self.cluster.coordination.create_namespaced_lease(ref.namespace, body)
        except ApiException as err:
            if err.status == 409:
                return False
            raise
        return True

    def _release(self, ref: LeaseRef, holder: str) -> None:
        lease = self._read(ref)
        if lease is None or (lease.spec and lease.spec.holder_identity != holder):
            _counted("release", "skipped")
            return
        rv = lease.metadata.resource_version if lease.metadata else None
        precondition = k8s.V1Preconditions(resource_version=rv)
        try:
            self.cluster.coordination.delete_namespaced_lease(
                ref.name, ref.namespace, body=k8s.V1DeleteOptions(preconditions=precondition)
            )
        except ApiException as err:
            if err.status == 404:
                _counted("release", "skipped")
                return
            if err.status == 409:  # renewed or taken over meanwhile: look again
                self._release(ref, holder)
                return
            raise
        _counted("release", "released")


#: The part of a lease's duration, from its last renewal, during which a write
#: is fenced by reading the lease; after it, the attempt renews every lease of
#: its transaction first. The rest is margin for clocks that disagree between
#: workers. It exceeds ATTEMPT_WRITE_WINDOW by far: an attempt that renewed at
#: its first write cannot outlive the renewal.
FENCE_BY_READING_FOR = 0.5


class Fence:
    """Write to a target only while its lease is ours, and keep every lease alive.

    Well inside the duration of the last renewal no other transaction can take
    a lease, so reading it is enough (it catches a takeover by hand); the
    batch's leases are read together, just before its first write. Past half
    the duration (an attempt retried after a hung request, a worker that was
    down), the first write renews every lease of the transaction, not only the
    batch's: the leases of earlier batches, whose undos may still be needed,
    must not lapse while a retry runs, and a lost one is known before writing."""

    def __init__(
        self,
        keeper: LeaseKeeper,
        holder: str,
        targets: list[ResolvedTarget],
        *,
        renewed_at: datetime | None,
        duration_seconds: int,
    ) -> None:
        self.keeper, self.holder, self.duration = keeper, holder, duration_seconds
        self.targets = targets
        self.reading_for = timedelta(seconds=duration_seconds * FENCE_BY_READING_FOR)
        self.read_until = renewed_at + self.reading_for if renewed_at is not None else None
        self._lost: dict[str, LeaseLost] | None = None

    def before_write(self, target: ResolvedTarget) -> None:
        if self.read_until is None or _now() >= self.read_until:
            started = _now()
            self._lost = self.keeper.renew_all(
                self.holder,
                self.duration,
                target.lease_namespace,
                [_lease_of(t) for t in self.targets],
            )
            self.read_until = started + self.reading_for
        elif self._lost is None:
            found = side_by_side(self._check, self.targets)
            self._lost = {
                t.lease_name: lost for t, lost in zip(self.targets, found, strict=True) if lost
            }
        if target.lease_name in self._lost:
            raise self._lost[target.lease_name]

    def _check(self, target: ResolvedTarget) -> LeaseLost | None:
        try:
            self.keeper.check_held(_lease_of(target), self.holder)
        except LeaseLost as lost:
            return lost
        return None


def _lease_of(target: ResolvedTarget) -> LeaseRef:
    return LeaseRef(name=target.lease_name, namespace=target.lease_namespace, target=target.key())
