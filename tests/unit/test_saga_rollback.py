"""The saga's rollback decisions: unknown outcomes, late writes, cancels, failing undos."""

from __future__ import annotations

from temporalio.exceptions import ApplicationError, CancelledError

from janus.contract import operations as ops
from janus.contract.models import Phase
from tests.unit.fake_cluster import Contender, lease_of, refused
from tests.unit.saga_runner import Saga, transaction
from workflows.policies import FORWARD

#: How long a rollback waits after an apply that failed or was retried before undoing.
LATE_WRITES = ops.ATTEMPT_WRITE_WINDOW + ops.API_SERVER_SLACK


def unreachable() -> ApplicationError:
    """An apply attempt that failed as a whole: it may have written anything."""
    return ApplicationError("connection refused", type="MaxRetryError")


async def test_an_apply_whose_outcome_is_unknown_keeps_every_undo_of_its_batch(
    saga: Saga,
) -> None:
    attempts = FORWARD["retry_policy"].maximum_attempts
    saga.cluster.apply_errors = [unreachable() for _ in range(attempts)]

    outcome = await saga.run(transaction(3))

    assert outcome.status.phase == Phase.ROLLED_BACK
    assert outcome.status.message == "Rolled back 0 changes: connection refused"
    assert len(saga.cluster.applied_batches()) == attempts
    # No attempt reported a result: each undo is asked for, decided by the marker.
    assert saga.cluster.undo_batches() == [[2, 1, 0]]
    steps = saga.cluster.undo_steps().values()
    assert all(s.action_failed and s.applied is None for s in steps)
    # The error goes on the first change not committed.
    assert outcome.status.items[0].error == "connection refused"


async def test_the_rollback_outwaits_what_a_timed_out_attempt_may_still_write(
    saga: Saga,
) -> None:
    # The first attempt hangs past its timeout (its requests may still land); the
    # second gets as far as change 1, which the API server refuses.
    saga.cluster.apply_errors = [unreachable()]
    saga.cluster.apply_failures = {1: refused(1)}

    outcome = await saga.run(transaction(3))

    assert outcome.status.phase == Phase.ROLLED_BACK
    last_apply = saga.cluster.scheduled(ops.APPLY_CHANGES)[-1]
    first_undo = saga.cluster.scheduled(ops.UNDO_CHANGES)[0]
    assert first_undo - last_apply >= LATE_WRITES
    # The second attempt reported change 0; changes 1 and 2 stay, for their markers.
    assert saga.cluster.undo_batches() == [[2, 1, 0]]
    steps = saga.cluster.undo_steps()
    assert [steps[i].action_failed for i in range(3)] == [False, True, True]


async def test_a_cancel_mid_batch_lets_the_batch_settle_then_undoes_it_in_reverse(
    saga: Saga,
) -> None:
    saga.cluster.apply_hold = 0
    handle = await saga.start(transaction(3))
    await saga.cluster.apply_held.wait()
    await handle.cancel()
    saga.cluster.release_apply.set()

    outcome = await saga.outcome(handle)

    assert isinstance(outcome.cause, CancelledError)
    assert outcome.status.phase == Phase.ROLLED_BACK
    assert outcome.status.message == "Rolled back 3 changes: cancelled by request"
    assert saga.cluster.applied_batches() == [[0, 1, 2]]
    # The batch's results were recorded although the cancel came first.
    assert saga.cluster.undo_batches() == [[2, 1, 0]]
    assert all(not s.action_failed for s in saga.cluster.undo_steps().values())
    assert [i.rolled_back for i in outcome.status.items] == [True, True, True]
    assert all(i.error is None for i in outcome.status.items)


async def test_a_cancel_while_waiting_for_a_lease_changes_nothing(saga: Saga) -> None:
    saga.cluster.holder = Contender(lease_index=0)
    handle = await saga.start(transaction(2))
    await saga.env.sleep(3)  # a few tries of the lease
    await handle.cancel()

    outcome = await saga.outcome(handle)

    assert isinstance(outcome.cause, CancelledError)
    assert outcome.status.phase == Phase.ROLLED_BACK
    assert outcome.status.message == "Rolled back 0 changes: cancelled by request"
    assert saga.cluster.applied_batches() == []
    assert saga.cluster.undo_batches() == []
    [release] = saga.cluster.releases()
    assert {lease.name for lease in release.leases} == {lease_of(0), lease_of(1)}


async def test_an_undo_batch_that_fails_whole_is_narrowed_to_the_failing_undo(
    saga: Saga,
) -> None:
    saga.cluster.apply_failures = {4: refused(4)}
    saga.cluster.undo_breaks = {1}

    outcome = await saga.run(transaction(5))

    # The first undo of a failed batch is tried alone: when it passes, the rest goes
    # on as a batch; when it fails alone, it is the one that cannot be undone.
    assert saga.cluster.undo_batches() == [
        [4, 3, 2, 1, 0],
        [4],
        [3, 2, 1, 0],
        [3],
        [2, 1, 0],
        [2],
        [1, 0],
        [1],
        [0],
    ]
    assert outcome.status.phase == Phase.FAILED
    assert outcome.status.message == (
        "Rollback incomplete: 1 undo(s) did not complete: undo of change 1 "
        "(Patch v1 ConfigMap shop/c1) failed: undo attempt of changes [1] died at change 1"
    )
    items = outcome.status.items
    assert [i.rolled_back for i in items] == [True, False, True, True, False]
    assert items[1].error is not None and items[1].error.startswith("undo of change 1")


async def test_undos_that_cannot_complete_end_failed_naming_every_target(saga: Saga) -> None:
    saga.cluster.apply_failures = {3: refused(3)}
    saga.cluster.undo_results = {
        2: ops.UndoResult(
            outcome=ops.UndoOutcome.MODIFIED_BY_OTHERS,
            message="changed by kubectl-edit after our write; left as it is",
        )
    }
    saga.cluster.undo_breaks = {0}

    outcome = await saga.run(transaction(4))

    assert outcome.status.phase == Phase.FAILED
    assert isinstance(outcome.cause, ApplicationError)
    assert outcome.cause.type == "Failed"
    assert outcome.status.message == (
        "Rollback incomplete: 2 undo(s) did not complete: "
        "change 2 (Patch v1 ConfigMap shop/c2): changed by kubectl-edit after our write; "
        "left as it is; "
        "undo of change 0 (Patch v1 ConfigMap shop/c0) failed: "
        "undo attempt of changes [0] died at change 0"
    )
    conditions = {c.type: (c.status, c.reason) for c in outcome.status.conditions}
    assert conditions["UndoSkipped"] == ("True", "ModifiedByOthers")
    assert conditions["RolledBack"] == ("False", "Failed")
    assert conditions["Committed"] == ("False", "Failed")
    assert [i.rolled_back for i in outcome.status.items] == [False, True, False, False]
    # Every lease is released even so.
    assert len(saga.cluster.releases()) == 1


async def test_a_change_whose_snapshot_is_gone_ends_failed_not_rolled_back(
    saga: Saga,
) -> None:
    # An earlier run applied change 1, then its snapshots went (a reset after the
    # Transaction was deleted): the state to restore is unknown.
    saga.cluster.snapshot_error = ApplicationError(
        "change 1 (Patch v1 ConfigMap shop/c1) was applied by an earlier run and its "
        "snapshot is gone",
        1,
        type="SnapshotLost",
        non_retryable=True,
    )

    outcome = await saga.run(transaction(2))

    assert outcome.status.phase == Phase.FAILED
    assert outcome.status.message.startswith("Not rolled back: change 1 (Patch")
    assert outcome.status.items[1].error is not None
    assert "snapshot is gone" in outcome.status.items[1].error
    assert saga.cluster.undo_batches() == []
    assert len(saga.cluster.releases()) == 1


async def test_an_undo_refused_for_a_lease_another_holds_waits_for_it(saga: Saga) -> None:
    saga.cluster.apply_failures = {2: refused(2)}
    saga.cluster.undo_refusals = {1: 2}

    outcome = await saga.run(transaction(3))

    assert outcome.status.phase == Phase.ROLLED_BACK
    assert outcome.status.message == "Rolled back 2 changes: the API server refused it"
    # Refused twice, writing nothing; between tries the leases are taken again.
    assert saga.cluster.undo_batches() == [[2, 1, 0], [0], [1], [1]]
    waiting = [m for m in saga.cluster.messages() if m.startswith("Waiting to roll back")]
    assert waiting[0] == (
        "Waiting to roll back change 1 (Patch v1 ConfigMap shop/c1): "
        f"lease {lease_of(1)} is held by transaction other/txn"
    )
    renewals = [a for a in saga.cluster.acquires() if a.renewal]
    assert len(renewals) == 3  # before the undos, and before each try again


async def test_an_undo_refused_past_lock_timeout_ends_failed_naming_it(saga: Saga) -> None:
    saga.cluster.apply_failures = {2: refused(2)}
    saga.cluster.undo_refusals = {1: 1000}

    outcome = await saga.run(transaction(3, lockTimeout="20s"))

    assert outcome.status.phase == Phase.FAILED
    assert outcome.status.message == (
        "Rollback incomplete: 1 undo(s) did not complete: undo of change 1 "
        f"(Patch v1 ConfigMap shop/c1) failed: lease {lease_of(1)} is held by "
        "transaction other/txn"
    )
    assert [i.rolled_back for i in outcome.status.items] == [True, False, False]
    status = outcome.status
    assert status.completed_at is not None and status.started_at is not None
    assert (status.completed_at - status.started_at).total_seconds() >= 20


async def test_a_rollback_whose_retake_of_the_leases_fails_still_ends_rolled_back(
    saga: Saga,
) -> None:
    """The retake before the undos gave up (in CI: 1,200 leases, a loaded machine): the
    error used to end the workflow, leaving the Transaction RollingBack for good. Each
    undo attempt fences itself (it reads or renews its leases), so the rollback goes on."""
    saga.cluster.apply_failures = {1: refused(1)}
    saga.cluster.renewal_error = ApplicationError(
        "leases: the API server did not answer in time", type="AttemptExpired", non_retryable=True
    )

    outcome = await saga.run(transaction(3))

    assert outcome.status.phase == Phase.ROLLED_BACK, (outcome.status.message, outcome.cause)
    assert outcome.status.message == "Rolled back 1 changes: the API server refused it"
    assert saga.cluster.undo_batches() == [[2, 1, 0]]
    assert [i.rolled_back for i in outcome.status.items] == [True, False, False]
