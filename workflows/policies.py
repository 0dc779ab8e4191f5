"""Timeouts, retry policies and sizes the saga runs with.

Forward steps give up after a bounded number of attempts (then the saga rolls
back); undos retry longer, because giving up on an undo leaves the cluster
half-changed and the Transaction Failed. Errors of the ``janus.errors`` types are
never retried: they describe the Transaction, not a passing fault.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError, FailureError

from janus.errors import NON_RETRYABLE

#: How long a lease stays valid without renewal. A transaction whose workflow
#: died is taken over by others this long after its last renewal.
LEASE_DURATION = timedelta(seconds=60)
RENEW_EVERY = LEASE_DURATION / 3

#: Transactions up to this many changes mirror their status after every step;
#: larger ones at most once per PROGRESS_EVERY, so that history (each mirror
#: carries the whole status) and API load grow linearly, not quadratically.
MIRROR_EVERY_STEP_UP_TO = 50
PROGRESS_EVERY = timedelta(seconds=2)

#: Targets per snapshot activity; batches run concurrently.
SNAPSHOT_BATCH = 50

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


def failure_text(err: BaseException) -> str:
    """The innermost application message: what the API server or our check said."""
    err = _innermost(err)
    if isinstance(err, FailureError):
        return err.message
    return str(err) or type(err).__name__
