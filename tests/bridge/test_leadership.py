"""Leader election on a real Lease: one leader, a release hands over at once, expiry too."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from kubernetes import client as k8s
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from bridge.leadership import LeaderElection, LeadershipLost

LEASE_SECONDS = 3.0


class Clock:
    """A hand-moved monotonic clock: expiry without sleeping through it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def election(
    api: ApiClient, name: str, identity: str, clock: Callable[[], float] = time.monotonic
) -> LeaderElection:
    return LeaderElection(
        api,
        namespace="default",
        name=name,
        identity=identity,
        lease_seconds=LEASE_SECONDS,
        renew_seconds=1.0,
        clock=clock,
    )


@pytest.fixture
def name(kube_api: ApiClient) -> Iterator[str]:
    """A Lease name of its own, deleted afterwards."""
    lease = f"election-{uuid.uuid4().hex[:8]}"
    yield lease
    with contextlib.suppress(ApiException):
        k8s.CoordinationV1Api(kube_api).delete_namespaced_lease(lease, "default")


def test_one_leader_then_release_hands_over(kube_api: ApiClient, name: str) -> None:
    a, b = election(kube_api, name, "a"), election(kube_api, name, "b")

    assert a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew()
    assert a.try_acquire_or_renew()  # renewal
    a.release()
    assert b.try_acquire_or_renew()
    assert not a.try_acquire_or_renew()


def test_a_silent_leader_is_replaced_after_the_lease_by_the_candidates_clock(
    kube_api: ApiClient, name: str
) -> None:
    clock = Clock()
    a, b = election(kube_api, name, "a"), election(kube_api, name, "b", clock)
    assert a.try_acquire_or_renew()

    assert not b.try_acquire_or_renew()  # b first sees a's record now
    clock.now += LEASE_SECONDS - 0.5
    assert not b.try_acquire_or_renew()
    clock.now += 1.0
    assert b.try_acquire_or_renew()


async def test_the_old_leader_notices_it_lost(kube_api: ApiClient, name: str) -> None:
    clock = Clock()
    a, b = election(kube_api, name, "a"), election(kube_api, name, "b", clock)
    assert a.try_acquire_or_renew()
    b.try_acquire_or_renew()
    clock.now += LEASE_SECONDS + 1
    assert b.try_acquire_or_renew()

    try:
        await asyncio.wait_for(a.keep(), timeout=5)
    except LeadershipLost as lost:
        assert "b holds it now" in str(lost)
    else:
        raise AssertionError("keep() returned without losing")
