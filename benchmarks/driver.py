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
from dataclasses import asdict, dataclass
from typing import Any, Literal

from temporalio.client import Client, WorkflowFailureError
from temporalio.service import RPCError, RPCStatusCode

from benchmarks.environment import BenchError, Cluster, kubectl_executable
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
    t_started: float | None
    """When start_workflow returned (None when the bridge starts it)."""


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

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "seconds": self.seconds}


class Driver:
    def __init__(
        self,
        cluster: Cluster,
        temporal: Client,
        task_queue: str,
        *,
        via_bridge: bool = False,
        apply_with: ApplyWith = "api",
    ) -> None:
        self.cluster = cluster
        self.temporal = temporal
        self.task_queue = task_queue
        self.via_bridge = via_bridge
        self.apply_with = apply_with

    async def submit(self, manifest: dict[str, Any], namespace: str) -> Submitted:
        t_apply = time.time()
        created = await self._create(manifest, namespace)
        t_created = time.time()
        meta = created["metadata"]
        txn = TransactionInput.from_resource(created)
        t_started = None
        if not self.via_bridge:
            await start_transaction(self.temporal, txn, task_queue=self.task_queue)
            t_started = time.time()
        return Submitted(
            name=meta["name"],
            namespace=meta["namespace"],
            uid=meta["uid"],
            workflow_id=txn.ref.workflow_id(),
            t_apply=t_apply,
            t_created=t_created,
            t_started=t_started,
        )

    async def _create(self, manifest: dict[str, Any], namespace: str) -> dict[str, Any]:
        if self.apply_with == "kubectl":
            proc = await asyncio.create_subprocess_exec(
                kubectl_executable(),
                "apply",
                "-n",
                namespace,
                "-o",
                "json",
                "-f",
                "-",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=self.cluster.endpoints.environ(),
            )
            out, err = await proc.communicate(json.dumps(manifest).encode())
            if proc.returncode != 0:
                raise BenchError(f"kubectl apply failed: {err.decode().strip()}")
            applied: dict[str, Any] = json.loads(out)
            return applied
        created: dict[str, Any] = await self.cluster.call(
            self.cluster.custom_objects.create_namespaced_custom_object,
            API_GROUP,
            API_VERSION,
            namespace,
            PLURAL,
            manifest,
        )
        return created

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
                cause = err.cause
                error = f"{type(cause).__name__}: {cause}"
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
        phase = await self.phase(submitted)
        return Outcome(submitted=submitted, t_done=t_done, phase=phase, error=error)

    async def phase(self, submitted: Submitted) -> str | None:
        obj = await self.transaction(submitted)
        phase = (obj.get("status") or {}).get("phase")
        return str(phase) if phase is not None else None

    async def transaction(self, submitted: Submitted) -> dict[str, Any]:
        obj: dict[str, Any] = await self.cluster.call(
            self.cluster.custom_objects.get_namespaced_custom_object,
            API_GROUP,
            API_VERSION,
            submitted.namespace,
            PLURAL,
            submitted.name,
        )
        return obj

    async def run(self, manifest: dict[str, Any], namespace: str, within: float = 600) -> Outcome:
        return await self.wait(await self.submit(manifest, namespace), within)
