"""Retry a Failed transaction's rollback, with Temporal's own reset.

A Transaction is Failed when an undo could not complete (the API server kept
refusing it, or someone else changed the target after us). Once the cause is
fixed, the rollback should run again, from the same undo log. That log is the
workflow's own state, rebuilt by replay; so the retry is a Temporal *reset* to
the workflow task that scheduled the first undo: history up to there replays,
and that task runs again: it takes the leases again (the failed run released
them; one another transaction holds is waited for, and no undo writes its target
meanwhile), every undo runs again (each is idempotent: a target already back
counts as restored), then the leases are released and the status says how it
ended.
"""

from __future__ import annotations

import uuid

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import Client

from janus.contract.operations import UNDO_CHANGES


class RetryRefused(Exception):
    """The workflow cannot be retried; the message says why."""


async def reset_point(client: Client, workflow_id: str) -> int:
    """The id of the WorkflowTaskCompleted event that scheduled the first undo."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    for event in history.events:
        if event.event_type != EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            continue
        scheduled = event.activity_task_scheduled_event_attributes
        if scheduled.activity_type.name == UNDO_CHANGES:
            return int(scheduled.workflow_task_completed_event_id)
    raise RetryRefused(
        f"workflow {workflow_id} never started a rollback: only a Failed transaction "
        "(an undo that could not complete) can be retried"
    )


async def retry_rollback(client: Client, workflow_id: str, *, reason: str) -> str:
    """Reset the workflow to just before its rollback; return the new run's id."""
    event_id = await reset_point(client, workflow_id)
    response = await client.workflow_service.reset_workflow_execution(
        ResetWorkflowExecutionRequest(
            namespace=client.namespace,
            workflow_execution=WorkflowExecution(workflow_id=workflow_id),
            reason=reason,
            workflow_task_finish_event_id=event_id,
            request_id=str(uuid.uuid4()),
        )
    )
    return str(response.run_id)
