"""One workflow per Transaction: start it, cancel it, settle one that closed unseen.

The workflow id is ``txn/<namespace>/<name>/<uid>``: the uid makes it unique to
this Transaction object (a re-created one with the same name gets a new
workflow). Starting is idempotent by that id, with Temporal's policies rather
than a cache in the bridge, so a restarted bridge, a second replica, or kopf
running a handler twice cannot start a second run:

* ``id_conflict_policy=USE_EXISTING``: while the workflow runs, a start returns it.
* ``id_reuse_policy=REJECT_DUPLICATE``: once it closed, it is never run again
  (the start raises ``WorkflowAlreadyStartedError``, which means "done").

A closed workflow behind a Transaction that is not in a terminal phase means
the final status never reached the custom resource; ``settle`` writes it from
the workflow's ``status`` query, or marks the Transaction Failed and says why.

``REJECT_DUPLICATE`` holds only while Temporal remembers the closed workflow
(the namespace's retention; ``temporal workflow delete`` forgets it at once).
A Transaction whose phase is past ``Pending`` was written by its workflow, so
it ran: if Temporal no longer knows that workflow, starting it again would run
the saga from scratch over targets it already changed. Such a Transaction is
marked Failed instead (``forgotten``), saying what to check.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubernetes.client import ApiClient
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from bridge import status
from janus.contract import metrics, search_attributes
from janus.contract.models import Phase, TransactionInput, TransactionRef, TransactionStatus
from janus.contract.settings import TemporalSettings
from janus.contract.versioning import generation_queue
from workflows import TransactionWorkflow

logger = logging.getLogger(__name__)

QUERY_TIMEOUT = 10.0

#: WorkflowExecutionStarted and WorkflowTaskScheduled: no worker has run it yet.
UNTOUCHED_HISTORY = 2


@dataclass(frozen=True)
class Runs:
    """The Temporal side of the bridge, for one namespace and task queue."""

    client: Client
    temporal: TemporalSettings
    api: ApiClient

    def input_for(self, obj: dict[str, Any]) -> TransactionInput:
        ref = ref_of(obj)
        return TransactionInput.from_resource(
            obj, temporal_ui=self.temporal.workflow_url(ref.workflow_id())
        )

    async def ensure_started(self, obj: dict[str, Any]) -> str:
        """Make sure the Transaction's workflow exists; say what was done."""
        if (phase := status.phase_of(obj)) is not None and phase.terminal:
            return f"already {phase.value}: nothing to start"
        txn = self.input_for(obj)
        if phase is None:
            await asyncio.to_thread(status.mark_pending, self.api, txn)
        elif phase != Phase.PENDING and not await self._known(txn.ref):
            return await self.forgotten(obj, phase)
        try:
            await self._start(txn)
        except WorkflowAlreadyStartedError:
            metrics.WORKFLOW_STARTS.labels("closed").inc()
            return await self.settle(txn.ref)
        metrics.WORKFLOW_STARTS.labels("started").inc()
        return f"workflow {txn.ref.workflow_id()} started (or already running)"

    async def _start(self, txn: TransactionInput) -> None:
        try:
            await start_transaction(
                self.client, txn, task_queue=generation_queue(self.temporal.task_queue)
            )
        except RPCError:
            metrics.WORKFLOW_STARTS.labels("error").inc()
            raise

    async def _known(self, ref: TransactionRef) -> bool:
        """Whether Temporal still has the Transaction's workflow (running or closed)."""
        try:
            await self.client.get_workflow_handle(ref.workflow_id()).describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        return True

    async def forgotten(self, obj: dict[str, Any], phase: Phase) -> str:
        """The workflow ran and Temporal forgot it: Failed, never started again."""
        ref = ref_of(obj)
        last = status.status_of(obj)
        final = last.model_copy(deep=True) if last is not None else TransactionStatus()
        final.phase = Phase.FAILED
        final.completed_at = datetime.now(UTC)
        final.workflow_id = ref.workflow_id()
        final.message = (
            f"The workflow {ref.workflow_id()} is no longer known to Temporal (deleted, or "
            f"closed longer ago than the namespace's retention) while the Transaction was "
            f"{phase.value}; it was not started again, since a new run would start the saga "
            "over targets this one already changed. Changes already committed were not "
            "undone: check the targets listed in status.items; leases expire on their own."
        )
        final.sequence = _after(final, obj)
        rv = obj["metadata"]["resourceVersion"]
        await asyncio.to_thread(status.write, self.api, ref, final, resource_version=rv)
        metrics.WORKFLOW_STARTS.labels("forgotten").inc()
        logger.warning(
            "%s/%s: workflow unknown to Temporal; marked Failed", ref.namespace, ref.name
        )
        return f"workflow {ref.workflow_id()} unknown to Temporal; marked Failed, not restarted"

    async def settle(self, ref: TransactionRef) -> str:
        """The workflow closed: make sure the Transaction shows a terminal phase."""
        obj = await asyncio.to_thread(status.read, self.api, ref)
        if obj is None or ((phase := status.phase_of(obj)) is not None and phase.terminal):
            return "workflow closed; nothing to settle"
        handle = self.client.get_workflow_handle(ref.workflow_id())
        closed = (await handle.describe()).status
        final = await self._final_status(handle)
        if final is None or not final.phase.terminal:
            final = abandoned(final, ref, closed)
        final.sequence = _after(final, obj)
        rv = obj["metadata"]["resourceVersion"]
        await asyncio.to_thread(status.write, self.api, ref, final, resource_version=rv)
        logger.warning("%s/%s: settled as %s", ref.namespace, ref.name, final.phase.value)
        return f"workflow had closed ({_name(closed)}); status settled as {final.phase.value}"

    async def _final_status(self, handle: WorkflowHandle[Any, Any]) -> TransactionStatus | None:
        """What the closed workflow last knew (its ``status`` query needs a worker)."""
        try:
            result = await asyncio.wait_for(
                handle.query("status", result_type=TransactionStatus), QUERY_TIMEOUT
            )
        except (RPCError, TimeoutError) as err:
            logger.warning("cannot query %s: %s", handle.id, err)
            return None
        return result if isinstance(result, TransactionStatus) else None

    async def cancel_until_closed(self, ref: TransactionRef) -> bool:
        """Ask the workflow to roll back; True once it has closed (or never existed).

        A workflow no worker has picked up yet has done nothing to undo, and a
        cancel would wait for a worker to process it: it is terminated instead,
        so deleting a Transaction never waits on a worker that is not there.
        """
        handle = self.client.get_workflow_handle(ref.workflow_id())
        try:
            described = await handle.describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return True
            raise
        if described.status != WorkflowExecutionStatus.RUNNING:
            return True
        if described.history_length <= UNTOUCHED_HISTORY:
            await handle.terminate(reason="Transaction deleted before its workflow ran")
            return True
        await handle.cancel()
        return False


async def start_transaction(
    client: Client, txn: TransactionInput, *, task_queue: str
) -> WorkflowHandle[TransactionWorkflow, TransactionStatus]:
    """Start the Transaction's workflow, or find it running (the module docstring).

    The one way a Transaction's workflow is started, by the bridge and, "as the
    bridge would", by the tests and the benchmarks.

    Args:
        client: A client of the namespace the workers poll.
        txn: The workflow's input; its ref gives the workflow id.
        task_queue: The queue to start on: the bridge's is its generation's
            (``janus.contract.versioning.generation_queue``).

    Raises:
        WorkflowAlreadyStartedError: the workflow ran and closed; it never runs twice.
    """
    return await client.start_workflow(
        TransactionWorkflow.run,
        txn,
        id=txn.ref.workflow_id(),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        search_attributes=search_attributes.at_start(txn.ref.namespace, txn.ref.name),
    )


def ref_of(obj: dict[str, Any]) -> TransactionRef:
    meta = obj["metadata"]
    return TransactionRef(namespace=meta["namespace"], name=meta["name"], uid=meta["uid"])


def abandoned(
    last: TransactionStatus | None, ref: TransactionRef, closed: WorkflowExecutionStatus | None
) -> TransactionStatus:
    """Failed, saying the workflow ended without finishing the saga and what to check."""
    final = last.model_copy(deep=True) if last is not None else TransactionStatus()
    final.phase = Phase.FAILED
    final.completed_at = final.completed_at or datetime.now(UTC)
    final.workflow_id = ref.workflow_id()
    final.message = (
        f"The workflow {ref.workflow_id()} ended {_name(closed)} before the transaction "
        "reached a final phase; changes already committed were not undone. Check the "
        "targets listed in status.items; leases expire on their own."
    )
    return final


def _after(final: TransactionStatus, obj: dict[str, Any]) -> int:
    """A status sequence above the stored one and the workflow's: the bridge's final
    write must pass the status rule and stay the last word."""
    stored = (obj.get("status") or {}).get("sequence") or 0
    return max(final.sequence, int(stored)) + 1


def _name(closed: WorkflowExecutionStatus | None) -> str:
    return closed.name if closed is not None else "UNKNOWN"
