"""The saga's decisions in time: lockTimeout, spec.timeout, lease renewal and loss."""

from __future__ import annotations

import itertools
from datetime import timedelta

from janus.contract.models import Phase, TransactionStatus
from tests.unit.fake_cluster import Contender, lease_of, renewed_at_call
from tests.unit.saga_runner import Saga, transaction
from workflows.policies import LEASE_DURATION


def took(status: TransactionStatus) -> timedelta:
    """Workflow time from start to the end (the test server skips timers)."""
    assert status.started_at is not None and status.completed_at is not None
    return status.completed_at - status.started_at


def sequences(saga: Saga, prefix: str) -> list[int]:
    """The workflow time (status.sequence, ms) of each status write saying ``prefix``."""
    return [m.status.sequence for m in saga.cluster.mirrored if m.status.message.startswith(prefix)]


async def test_a_lease_held_past_lock_timeout_gives_up_before_any_write(saga: Saga) -> None:
    saga.cluster.holder = Contender(lease_index=1)

    outcome = await saga.run(transaction(2, lockTimeout="10s"))

    held = (
        f"lease janus-system/{lease_of(1)} for v1 ConfigMap shop/c1 is held by "
        "transaction other/txn/uid-other"
    )
    assert outcome.status.phase == Phase.ROLLED_BACK
    assert outcome.status.message == (
        f"Rolled back 0 changes: {held}; gave up after lockTimeout 10s"
    )
    assert f"Waiting: {held}" in saga.cluster.messages()
    assert took(outcome.status) >= timedelta(seconds=10)
    assert saga.cluster.applied_batches() == []
    assert saga.cluster.undo_batches() == []
    assert len(saga.cluster.releases()) == 1


async def test_a_lease_freed_in_time_is_waited_for_with_growing_backoff(saga: Saga) -> None:
    saga.cluster.holder = Contender(lease_index=0, acquires=5)

    outcome = await saga.run(transaction(2))

    assert outcome.status.phase == Phase.COMMITTED
    assert len([a for a in saga.cluster.acquires() if not a.renewal]) == 6
    waits = sequences(saga, "Waiting: ")
    gaps = [later - earlier for earlier, later in itertools.pairwise(waits)]
    assert len(gaps) == 4
    assert all(gap >= minimum for gap, minimum in zip(gaps, [250, 500, 1000, 2000], strict=True))


async def test_spec_timeout_passed_between_batches_rolls_back(saga: Saga) -> None:
    # Each attempt gets one change done; the first one only after 5 failed attempts
    # (6.2 s of retry backoff), past the 5 s timeout.
    saga.cluster.apply_budget = 1
    saga.cluster.apply_errors = [RuntimeError("etcd timeout") for _ in range(5)]

    outcome = await saga.run(transaction(2, timeout="5s"))

    assert outcome.status.phase == Phase.ROLLED_BACK
    assert outcome.status.message == (
        "Rolled back 1 changes: spec.timeout 5s passed before all changes committed"
    )
    assert saga.cluster.applied_batches()[-1] == [0, 1]
    assert saga.cluster.undo_batches() == [[1, 0]]
    assert outcome.status.items[1].error == ("spec.timeout 5s passed before all changes committed")


async def test_leases_are_renewed_between_batches_once_a_third_of_their_time_passed(
    saga: Saga,
) -> None:
    # The first batch takes 7 attempts (22.6 s of retry backoff), more than a third
    # of the lease duration.
    saga.cluster.apply_budget = 1
    saga.cluster.apply_errors = [RuntimeError("etcd timeout") for _ in range(7)]
    assert timedelta(seconds=22) > LEASE_DURATION / 3

    outcome = await saga.run(transaction(2))

    assert outcome.status.phase == Phase.COMMITTED
    acquires = saga.cluster.acquires()
    assert [a.renewal for a in acquires] == [False, True]
    assert [lease.name for lease in acquires[1].leases] == [lease_of(0), lease_of(1)]
    applies = saga.cluster.applies()
    # Each apply is told when its leases were last renewed: it fences only if late.
    assert applies[0].leases_renewed_at == renewed_at_call(1)
    assert applies[-1].leases_renewed_at == renewed_at_call(2)
    assert saga.cluster.applied_batches()[-1] == [1]


async def test_a_lease_taken_over_during_the_commit_rolls_back(saga: Saga) -> None:
    saga.cluster.apply_budget = 1
    saga.cluster.apply_errors = [RuntimeError("etcd timeout") for _ in range(7)]
    saga.cluster.renewals_lost_from = 1

    outcome = await saga.run(transaction(2))

    assert outcome.status.phase == Phase.ROLLED_BACK
    assert outcome.status.message == (
        f"Rolled back 1 changes: lease {lease_of(0)} for v1 ConfigMap shop/c0 was taken "
        "over by other/txn/uid-other"
    )
    assert saga.cluster.applied_batches()[-1] == [0, 1]
    assert saga.cluster.undo_batches() == [[1, 0]]
