"""Apply a Transaction and wait until it settles, the way a user (or the bridge) would.

Direct mode (the default) does what the bridge does for every new Transaction:
create the custom resource, then start its workflow (``TransactionInput`` from
the created object, id ``txn/<ns>/<name>/<uid>``, the search attributes). With
``via_bridge`` the benchmark only creates the resource and a running
``janus bridge`` starts the workflow; the clock then also covers the bridge's
watch. Either way the clock starts before the create call (or before
``kubectl apply`` with ``apply_with="kubectl"``) and stops when the workflow has
closed, which is after its last status write.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any, Literal

from temporalio.client import Client, WorkflowFailureError
from temporalio.service import RPCError, RPCStatusCode

from benchmarks.environment import Cluster, kubectl
from bridge.runs import start_transaction
from janus.contract.models import API_GROUP, API_VERSION, PLURAL, TransactionInput

ApplyWith = Literal["api", "kubectl"]


@dataclass
class Submitted:
    name: str
    namespace: str
    uid: str
    workflow_id: str
    t_apply: float
    """Epoch seconds just before the Transaction was created."""
    t_created: float


@dataclass
class Outcome:
    submitted: Submitted
    t_done: float
    """Epoch seconds when the benchmark saw the workflow closed."""
    phase: str | None
    """status.phase of the Transaction, read after the workflow closed."""
    error: str | None = None

    @property
    def seconds(self) -> float:
        return self.t_done - self.submitted.t_apply


@dataclass
class Driver:
    cluster: Cluster
    temporal: Client
    task_queue: str
    via_bridge: bool = False
    apply_with: ApplyWith = "api"

    async def submit(self, manifest: dict[str, Any], namespace: str) -> Submitted:
        t_apply = time.time()
        if self.apply_with == "kubectl":
            apply = ("apply", "-n", namespace, "-o", "json", "-f", "-")
            out = await self.cluster.call(
                kubectl, self.cluster.endpoints, *apply, stdin=json.dumps(manifest)
            )
            created: dict[str, Any] = json.loads(out)
        else:
            create = self.cluster.custom.create_namespaced_custom_object
            created = await self.cluster.call(
                create, API_GROUP, API_VERSION, namespace, PLURAL, manifest
            )
        t_created = time.time()
        txn = TransactionInput.from_resource(created)
        if not self.via_bridge:
            await start_transaction(self.temporal, txn, task_queue=self.task_queue)
        meta = created["metadata"]
        return Submitted(
            meta["name"], meta["namespace"], meta["uid"], txn.ref.workflow_id(), t_apply, t_created
        )

    async def wait(self, submitted: Submitted, within: float = 600) -> Outcome:
        """Wait for the workflow to close (to appear first, via the bridge)."""
        handle = self.temporal.get_workflow_handle(submitted.workflow_id)
        error: str | None = None
        deadline = time.monotonic() + within
        while True:
            try:
                await asyncio.wait_for(handle.result(), max(deadline - time.monotonic(), 0.1))
                break
            except WorkflowFailureError as err:
                error = f"{type(err.cause).__name__}: {err.cause}"
                break
            except RPCError as err:
                if err.status != RPCStatusCode.NOT_FOUND or time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.01)  # the bridge has not started it yet
            except TimeoutError:
                error = f"timed out after {within:.0f}s; workflow terminated"
                await handle.terminate("benchmark timeout")
                break
        t_done = time.time()
        phase = (await self.transaction(submitted)).get("status", {}).get("phase")
        return Outcome(submitted, t_done, phase, error)

    async def transaction(self, submitted: Submitted) -> dict[str, Any]:
        get = self.cluster.custom.get_namespaced_custom_object
        args = (API_GROUP, API_VERSION, submitted.namespace, PLURAL, submitted.name)
        obj: dict[str, Any] = await self.cluster.call(get, *args)
        return obj

    async def run(self, manifest: dict[str, Any], namespace: str, within: float = 600) -> Outcome:
        return await self.wait(await self.submit(manifest, namespace), within)
