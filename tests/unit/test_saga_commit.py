"""The saga's forward decisions: batches, their results, and what a failure leaves to undo."""

from __future__ import annotations

from temporalio.exceptions import ApplicationError

from janus.contract import operations as ops
from janus.contract.models import Phase
from tests.unit.fake_cluster import lease_of, refused
from tests.unit.saga_runner import Saga, transaction
from workflows.policies import MAX_BATCH


async def test_every_change_applied_commits_and_releases_every_lease(saga: Saga) -> None:
    outcome = await saga.run(transaction(3))

    assert outcome.error is None
    assert outcome.status.phase == Phase.COMMITTED
    assert outcome.status.message == "All 3 changes committed"
    assert [i.committed for i in outcome.status.items] == [True, True, True]
    assert outcome.status.summary.committed == 3
    assert saga.cluster.applied_batches() == [[0, 1, 2]]
    assert saga.cluster.undo_batches() == []
    [release] = saga.cluster.releases()
    assert [lease.name for lease in release.leases] == [lease_of(i) for i in range(3)]


async def test_leases_are_taken_in_one_canonical_order_whatever_the_spec_order(
    saga: Saga,
) -> None:
    txn = transaction(12)

    await saga.run(txn)

    [first] = saga.cluster.acquires()
    names = [lease.name for lease in first.leases]
    assert names == sorted(names)
    assert names != [lease_of(i) for i in range(12)]  # "1", "10", "11", "2": not spec order


async def test_a_long_transaction_is_applied_in_batches_in_spec_order(saga: Saga) -> None:
    outcome = await saga.run(transaction(MAX_BATCH + 20))

    assert outcome.status.phase == Phase.COMMITTED
    assert saga.cluster.applied_batches() == [
        list(range(MAX_BATCH)),
        list(range(MAX_BATCH, MAX_BATCH + 20)),
    ]


async def test_a_batch_that_ran_out_of_time_is_continued_where_it_stopped(saga: Saga) -> None:
    saga.cluster.apply_budget = 2

    outcome = await saga.run(transaction(5))

    assert outcome.status.phase == Phase.COMMITTED
    assert saga.cluster.applied_batches() == [[0, 1, 2, 3, 4], [2, 3, 4], [4]]


async def test_a_passing_fault_inside_a_batch_retries_from_the_failed_change(
    saga: Saga,
) -> None:
    passing = ops.StepFailure(index=1, type="ApiException", message="503", retryable=True)
    saga.cluster.apply_failures = {1: passing}
    outcome = await saga.run(transaction(3))

    assert outcome.status.phase == Phase.COMMITTED
    assert saga.cluster.applied_batches() == [[0, 1, 2], [1, 2]]
    assert saga.cluster.undo_batches() == []


async def test_a_transaction_refused_before_its_leases_still_releases_by_holder(
    saga: Saga,
) -> None:
    saga.cluster.resolve_error = ApplicationError(
        "change 0 (Patch v1 ConfigMap shop/c0): kind ConfigMap in v2 is not served",
        0,
        type="InvalidTransaction",
        non_retryable=True,
    )

    outcome = await saga.run(transaction(2))

    assert outcome.status.phase == Phase.ROLLED_BACK
    assert outcome.status.items[0].error is not None
    assert "kind ConfigMap in v2 is not served" in outcome.status.items[0].error
    assert saga.cluster.acquires() == [] and saga.cluster.applied_batches() == []
    # An earlier run of the same holder (before a reset) may have taken leases:
    # the release finds them by their label, with no list to go by.
    [release] = saga.cluster.releases()
    assert release.leases == []


async def test_a_refused_change_rolls_back_the_earlier_ones_in_reverse(saga: Saga) -> None:
    saga.cluster.apply_failures = {2: refused(2, "replicas: Invalid value: -1")}

    outcome = await saga.run(transaction(4))

    assert outcome.status.phase == Phase.ROLLED_BACK
    assert outcome.status.message == "Rolled back 2 changes: replicas: Invalid value: -1"
    assert saga.cluster.phases() == ["Committing", "RollingBack", "RolledBack"]
    assert isinstance(outcome.cause, ApplicationError)
    assert outcome.cause.type == "RolledBack"
    # Every undo of the batch was registered before it ran: all four are asked for,
    # in reverse; only 0 and 1 have a recorded action, the others are decided by
    # the target's marker (an earlier attempt may have got further).
    assert saga.cluster.undo_batches() == [[3, 2, 1, 0]]
    steps = saga.cluster.undo_steps()
    assert [steps[i].action_failed for i in range(4)] == [False, False, True, True]
    assert steps[0].applied == ops.ApplyResult(resource_version="001")
    assert steps[2].applied is None and steps[3].applied is None
    items = outcome.status.items
    assert [i.committed for i in items] == [True, True, False, False]
    assert [i.rolled_back for i in items] == [True, True, False, False]
    assert items[2].error == "replicas: Invalid value: -1"
    assert [c.status for c in outcome.status.conditions if c.type == "RolledBack"] == ["True"]
