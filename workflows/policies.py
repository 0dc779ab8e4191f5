"""Timeouts, retry policies and sizes the saga runs with.

Forward steps give up after a bounded number of attempts (then the saga rolls
back); undos retry longer, because giving up on an undo leaves the cluster
half-changed and the Transaction Failed. Errors of the ``janus.contract.errors`` types are
never retried: they describe the Transaction, not a passing fault.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError, FailureError
from temporalio.workflow import ActivityCancellationType

from janus.contract.errors import NON_RETRYABLE

#: How long a lease stays valid without renewal. A transaction whose workflow
#: died is taken over by others this long after its last renewal.
LEASE_DURATION = timedelta(seconds=60)


def lease_duration(changes: int) -> timedelta:
    """A transaction's lease duration: LEASE_DURATION, or longer for a large one.

    Taking or renewing n leases takes time in proportion to n (about 3 s per
    1,000 on two cores), so a large transaction's leases last longer and are
    renewed less often: renewal stays a small share of its time. Leases are
    renewed every third of their duration."""
    return max(LEASE_DURATION, timedelta(milliseconds=60) * changes)


#: Transactions up to this many changes mirror their status after every batch;
#: larger ones at most once per ``progress_every``, so that history and API load
#: grow linearly, not quadratically.
MIRROR_EVERY_STEP_UP_TO = 50
PROGRESS_EVERY = timedelta(seconds=2)


def progress_every(changes: int) -> timedelta:
    """How often a large transaction shows progress.

    The API server validates the whole Transaction on every status write, so a
    write costs in proportion to the spec (about 0.2 s at 1,000 changes and 1 s
    at 5,000 on two cores): the interval grows with it, keeping status writes a
    small share of the API server's time."""
    return max(PROGRESS_EVERY, PROGRESS_EVERY * (changes / 1000))


#: Targets per snapshot activity; batches run concurrently.
SNAPSHOT_BATCH = 50

#: Changes per commit (and undo) activity, and the time after which one ends
#: early: the workflow records each batch's results (the undo log) and shows
#: progress between batches, and a cancel waits for at most one batch.
MAX_BATCH = 100
BATCH_BUDGET = timedelta(seconds=1)

#: The timer that makes the commit point durable before Committed is written (any
#: length ends the workflow task; the shortest costs least).
COMMIT_POINT_TIMER = timedelta(milliseconds=1)

#: Activities heartbeat every few seconds while they run; a worker that dies
#: mid-activity is noticed after this long, and the activity runs again elsewhere.
HEARTBEAT_TIMEOUT = timedelta(seconds=10)

FORWARD: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=60),
    "heartbeat_timeout": HEARTBEAT_TIMEOUT,
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(milliseconds=200),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=10),
        maximum_attempts=8,
        non_retryable_error_types=NON_RETRYABLE,
    ),
}

UNDO: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=60),
    "heartbeat_timeout": HEARTBEAT_TIMEOUT,
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(milliseconds=200),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=30),
        maximum_attempts=25,
        non_retryable_error_types=NON_RETRYABLE,
    ),
}


#: Short steps (resolve, leases, snapshots, status) run as local activities: in
#: the worker that runs the workflow task, recorded when the task completes, so
#: they cost no round trip through the server. Each is idempotent, so one whose
#: task is lost simply runs again; the first write is always a regular activity,
#: scheduled only after the snapshots are recorded.
#: A cancel waits for a running one to end (a synchronous activity cannot be
#: interrupted), so none of them writes after the workflow has moved on.
LOCAL: dict[str, Any] = {
    "start_to_close_timeout": FORWARD["start_to_close_timeout"],
    "retry_policy": FORWARD["retry_policy"],
    "cancellation_type": ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
}
LOCAL_UNDO: dict[str, Any] = {**LOCAL, "retry_policy": UNDO["retry_policy"]}


def _innermost(err: BaseException) -> BaseException:
    while isinstance(err, ActivityError | FailureError) and err.cause is not None:
        if isinstance(err, ApplicationError):
            break
        err = err.cause
    return err


def is_cancellation(err: BaseException) -> bool:
    """A cancel request, as delivered to the workflow or through a cancelled activity."""
    if isinstance(err, asyncio.CancelledError | CancelledError):
        return True
    return isinstance(err, ActivityError) and isinstance(err.cause, CancelledError)


def failing_index(err: BaseException) -> int | None:
    """The change an activity's failure names (``JanusError.index``), if it names one."""
    inner = _innermost(err)
    if isinstance(inner, ApplicationError) and inner.details:
        first = inner.details[0]
        return first if isinstance(first, int) else None
    return None


def failure_type(err: BaseException) -> str | None:
    """The innermost application error's type (a ``JanusError`` class name), if any."""
    inner = _innermost(err)
    return inner.type if isinstance(inner, ApplicationError) else None


def failure_text(err: BaseException) -> str:
    """The innermost application message: what the API server or our check said."""
    err = _innermost(err)
    if isinstance(err, FailureError):
        return err.message
    return str(err) or type(err).__name__
