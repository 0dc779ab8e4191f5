"""Run a transaction on the real workflow against the fake cluster, and read how it ended."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from bridge.runs import start_transaction
from janus.contract.models import (
    TransactionInput,
    TransactionRef,
    TransactionSpec,
    TransactionStatus,
)
from tests.unit.fake_cluster import FakeCluster


@dataclass
class Outcome:
    """How a transaction ended: its last status write, and the workflow's error if any."""

    status: TransactionStatus
    error: WorkflowFailureError | None

    @property
    def cause(self) -> BaseException | None:
        return self.error.cause if self.error else None


@dataclass
class Saga:
    """Runs transactions on a worker of the real workflow and the fake cluster."""

    env: WorkflowEnvironment
    cluster: FakeCluster
    task_queue: str

    async def start(self, txn: TransactionInput) -> WorkflowHandle[Any, TransactionStatus]:
        return await start_transaction(self.env.client, txn, task_queue=self.task_queue)

    async def outcome(self, handle: WorkflowHandle[Any, TransactionStatus]) -> Outcome:
        """Wait for the end (skipping time), and read the status as last written."""
        error: WorkflowFailureError | None = None
        try:
            await handle.result()
        except WorkflowFailureError as failed:
            error = failed
        assert self.cluster.mirrored, "the workflow ended without writing a status"
        return Outcome(self.cluster.mirrored[-1].status, error)

    async def run(self, txn: TransactionInput) -> Outcome:
        return await self.outcome(await self.start(txn))


def transaction(changes: int, **spec: str) -> TransactionInput:
    """A Transaction patching ``changes`` ConfigMaps c0, c1, ... (spec fields by alias)."""
    body = {
        "changes": [
            {
                "target": {"apiVersion": "v1", "kind": "ConfigMap", "name": f"c{i}"},
                "type": "Patch",
                "content": {"data": {"version": "2"}},
            }
            for i in range(changes)
        ],
        **spec,
    }
    uid = uuid.uuid4().hex
    return TransactionInput(
        ref=TransactionRef(namespace="shop", name=f"txn-{uid[:8]}", uid=uid),
        spec=TransactionSpec.model_validate(body),
    )
