"""Count each Transaction's outcome where it is decided: in the workflow, as it ends.

The workflow is deterministic code with no I/O, so it does not count anything
itself. This worker interceptor wraps its run instead: when the run returns, or
ends with the failure or the cancellation it raises after a rollback, it reads
the workflow's final status (the same ``StatusBook`` the ``status`` query
answers from) and counts the terminal phase, the time from ``startedAt`` to
``completedAt``, and a lockTimeout the workflow gave up on (``status.waiting``
with ``gaveUp``). Nothing is read from messages.

It counts only what runs live: a run replayed from its history (a worker that
took over a workflow, a query of a closed one, ``janus retry``'s reset replaying
up to its reset point) ended before, and was counted by the worker that ran it,
as ``temporalio.contrib.opentelemetry`` does for its metrics. A worker evicting
a workflow from its cache (the run is stopped, to be replayed later) counts
nothing: that is not an end.
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import workflow
from temporalio.exceptions import FailureError
from temporalio.worker import (
    ExecuteWorkflowInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from janus.contract import metrics
from janus.contract.models import TransactionStatus


class OutcomeInterceptor(Interceptor):
    """Counts the outcome of every workflow run on this worker (``janus.contract.metrics``)."""

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        return _CountingOutcome


class _CountingOutcome(WorkflowInboundInterceptor):
    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        try:
            result = await super().execute_workflow(input)
        except (FailureError, asyncio.CancelledError):  # how a rollback ends the run
            _count_outcome()
            raise
        _count_outcome()
        return result


def _count_outcome() -> None:
    if workflow.unsafe.is_replaying_history_events():
        return
    status = getattr(workflow.instance(), "status", None)
    final = status() if callable(status) else None
    if isinstance(final, TransactionStatus) and final.phase.terminal:
        with workflow.unsafe.sandbox_unrestricted():
            count(final)


def count(status: TransactionStatus) -> None:
    """Count one Transaction's end: its phase, its duration, a lockTimeout given up."""
    phase = status.phase.value
    metrics.TRANSACTION_OUTCOMES.labels(phase).inc()
    if status.started_at is not None and status.completed_at is not None:
        seconds = max(0.0, (status.completed_at - status.started_at).total_seconds())
        metrics.TRANSACTION_DURATION.labels(phase).observe(seconds)
    if status.waiting is not None and status.waiting.gave_up:
        metrics.LOCK_OPERATIONS.labels("acquire", "timeout").inc()
