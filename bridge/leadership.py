"""Leader election on a ``coordination.k8s.io/v1`` Lease: one bridge replica acts.

Why a Lease and not kopf's peering: kopf's peering pauses an operator only for a
peer of *higher* priority; replicas of one Deployment share a priority, and then
kopf merely warns and lets all of them handle every object. It also needs two
extra CRDs. A Lease is built in, is what client-go's controllers use, and gives
the one-active-replica guarantee the finalizer logic relies on (one replica
deciding when a deleted Transaction may go).

Correctness does not hinge on it: a workflow's id is derived from the
Transaction's uid and the start uses Temporal's id-conflict policy, so two
replicas that both believe they lead (for at most one lease duration, after a
network partition) still start one workflow per Transaction.

The protocol is client-go's, simplified: a candidate takes the Lease when it is
free, released, or not renewed for ``lease_seconds`` *as measured by the
candidate's own clock* since it last saw the record change (so clock skew
between nodes does not matter). The leader renews every ``renew_seconds`` and
gives up leadership when it has not managed to renew for two thirds of the
lease, before any candidate may take over. On a clean shutdown it releases the
Lease so a standby takes over at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import datetime

from kubernetes import client as k8s
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from janus.contract import metrics
from janus.contract.wire import micro_time

logger = logging.getLogger(__name__)


class LeadershipLost(Exception):
    """The Lease could not be renewed in time, or another replica holds it now."""


class LeaderElection:
    """Acquire, keep and release one Lease for one identity."""

    def __init__(
        self,
        api: ApiClient,
        *,
        namespace: str,
        name: str,
        identity: str,
        labels: dict[str, str] | None = None,
        lease_seconds: float,
        renew_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api = k8s.CoordinationV1Api(api)
        self.namespace, self.name, self.identity = namespace, name, identity
        self.labels = {"app.kubernetes.io/managed-by": "janus", **(labels or {})}
        self.lease_seconds, self.renew_seconds = lease_seconds, renew_seconds
        self._clock = clock
        self._observed: tuple[str | None, str | None] | None = None
        self._observed_at = 0.0

    @property
    def where(self) -> str:
        return f"Lease {self.namespace}/{self.name}"

    async def acquire(self, stop: asyncio.Event) -> bool:
        """Wait until this replica leads (True) or ``stop`` is set (False)."""
        announced = False
        while not stop.is_set():
            if await self._attempt():
                logger.info("%s: leading as %s", self.where, self.identity)
                metrics.BRIDGE_LEADER.set(1)
                return True
            if not announced:
                logger.info("%s is held by %s; standing by", self.where, self._observed_holder)
                announced = True
            await _sleep_or_stop(stop, self.renew_seconds)
        return False

    async def keep(self) -> None:
        """Renew until leadership is lost; then raise LeadershipLost."""
        last_renewal = self._clock()
        deadline = self.lease_seconds * 2 / 3
        while True:
            await asyncio.sleep(self.renew_seconds)
            if await self._attempt():
                last_renewal = self._clock()
            elif self._observed_holder not in (None, "", self.identity):
                raise self._lost(f"{self._observed_holder} holds it now")
            if self._clock() - last_renewal > deadline:
                raise self._lost(f"not renewed for {deadline:.0f}s")

    def release(self) -> None:
        """Give the Lease up, so a standby need not wait for it to expire."""
        metrics.BRIDGE_LEADER.set(0)
        try:
            lease = self._api.read_namespaced_lease(self.name, self.namespace)
            if lease.spec is None or lease.spec.holder_identity != self.identity:
                return
            lease.spec.holder_identity = None
            lease.spec.lease_duration_seconds = 1
            self._api.replace_namespaced_lease(self.name, self.namespace, lease)
            logger.info("%s released", self.where)
        except ApiException as err:
            logger.warning("%s: could not release: %s", self.where, err.reason)

    def _lost(self, why: str) -> LeadershipLost:
        metrics.BRIDGE_LEADER.set(0)
        return LeadershipLost(f"{self.where}: leadership lost ({why})")

    @property
    def _observed_holder(self) -> str | None:
        return self._observed[0] if self._observed else None

    async def _attempt(self) -> bool:
        try:
            return await asyncio.to_thread(self.try_acquire_or_renew)
        except ApiException as err:
            logger.warning("%s: %s %s", self.where, err.status, err.reason)
            return False

    def try_acquire_or_renew(self) -> bool:
        """One round: create, renew or take over the Lease; False while another holds it."""
        try:
            lease = self._api.read_namespaced_lease(self.name, self.namespace)
        except ApiException as err:
            if err.status != 404:
                raise
            return self._create()
        spec = lease.spec or k8s.V1LeaseSpec()
        holder = spec.holder_identity or None
        if holder not in (None, self.identity) and not self._expired(spec):
            return False
        if lease.metadata is not None:
            lease.metadata.labels = {**(lease.metadata.labels or {}), **self.labels}
        lease.spec = self._spec(
            acquire_time=spec.acquire_time if holder == self.identity else None,
            transitions=(spec.lease_transitions or 0) + (0 if holder == self.identity else 1),
        )
        return self._write(
            lambda: self._api.replace_namespaced_lease(self.name, self.namespace, lease)
        )

    def _expired(self, spec: k8s.V1LeaseSpec) -> bool:
        """Whether the holder has not renewed for a lease duration, by our own clock."""
        record = (spec.holder_identity, str(spec.renew_time))
        now = self._clock()
        if record != self._observed:
            self._observed, self._observed_at = record, now
        duration = spec.lease_duration_seconds or self.lease_seconds
        return now - self._observed_at > duration

    def _create(self) -> bool:
        body = k8s.V1Lease(
            metadata=k8s.V1ObjectMeta(
                name=self.name,
                namespace=self.namespace,
                labels=self.labels,
            ),
            spec=self._spec(acquire_time=None, transitions=0),
        )
        return self._write(lambda: self._api.create_namespaced_lease(self.namespace, body))

    def _spec(self, *, acquire_time: datetime | None, transitions: int) -> k8s.V1LeaseSpec:
        now = micro_time()
        return k8s.V1LeaseSpec(
            holder_identity=self.identity,
            lease_duration_seconds=max(1, round(self.lease_seconds)),
            acquire_time=micro_time(acquire_time) if acquire_time else now,
            renew_time=now,
            lease_transitions=transitions,
        )

    def _write(self, call: Callable[[], object]) -> bool:
        """Write with the read's resourceVersion; a conflict means another replica won."""
        try:
            call()
        except ApiException as err:
            if err.status == 409:
                return False
            raise
        self._observed, self._observed_at = (self.identity, None), self._clock()
        return True


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
