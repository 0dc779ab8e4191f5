"""One Janus installation of a given source tree (a release's, or today's): its
bridge and worker as processes on the test's namespace and task queue."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from janus.dev import Endpoints
from tests.replay.processes import TreeProcess
from tests.saga.harness import Harness

TERMINAL = {"Committed", "RolledBack", "Failed"}


@dataclass
class Installation:
    """``janus bridge`` and ``janus worker`` from ``tree``; ``settings`` are the worker's seams."""

    label: str
    tree: Path
    endpoints: Endpoints
    task_queue: str
    namespace: str
    logs: Path
    settings: dict[str, str] = field(default_factory=dict)
    bridge: TreeProcess | None = None
    worker: TreeProcess | None = None

    def env(self) -> dict[str, str]:
        return {
            "KUBECONFIG": str(self.endpoints.kubeconfig),
            "TEMPORAL_ADDRESS": self.endpoints.temporal_address,
            "TEMPORAL_NAMESPACE": self.endpoints.temporal_namespace,
            "JANUS_TASK_QUEUE": self.task_queue,
            "JANUS_NAMESPACES": self.namespace,
            "JANUS_LEADER_ELECTION": "false",
            "JANUS_FAULTS": "",
            "JANUS_DELAYS": "",
            "JANUS_CRASH_AT": "",
        }

    def start(self) -> Installation:
        """Both processes, started together (they import in parallel), then ready."""
        self.bridge = TreeProcess(self.tree, "bridge", self.env(), self._log("bridge")).start()
        worker_env = {**self.env(), **self.settings}
        self.worker = TreeProcess(self.tree, "worker", worker_env, self._log("worker")).start()
        self.bridge.ready()
        self.worker.ready()
        return self

    def _log(self, role: str) -> Path:
        return self.logs / f"{self.label}-{role}.log"

    def crash(self) -> None:
        """The worker SIGKILLed mid-activity (the node lost), the bridge stopped."""
        if self.worker is not None:
            self.worker.kill()
        if self.bridge is not None:
            self.bridge.stop()

    def stop(self) -> None:
        for process in (self.worker, self.bridge):
            if process is not None and process.process is not None:
                process.stop()


async def until(what: str, check: Any, within: float = 90.0) -> Any:
    """Poll ``check()`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        found = await asyncio.to_thread(check)
        if found:
            return found
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


async def until_async(what: str, check: Callable[[], Awaitable[Any]], within: float = 90.0) -> Any:
    """``until`` for a check that talks to Temporal (on this event loop)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def status(harness: Harness, name: str) -> dict[str, Any]:
    found: dict[str, Any] = harness.transaction(name).get("status") or {}
    return found


def items_where(harness: Harness, name: str, flag: str) -> set[int]:
    return {i["index"] for i in status(harness, name).get("items", []) if i.get(flag)}


async def touched_by(client: Client, workflow_id: str, pid: int) -> list[str]:
    """The history events a worker process (by its pid in the identity) took part in."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    mark = f'identity: "{pid}@'
    return [EventType.Name(e.event_type) for e in history.events if mark in str(e)]


async def retried_attempt(client: Client, workflow_id: str) -> int:
    """The attempt of the workflow's pending activity (0 when there is none)."""
    described = await client.get_workflow_handle(workflow_id).describe()
    pending = described.raw_description.pending_activities
    return max((a.attempt for a in pending), default=0)


async def builds_that_ran(client: Client, workflow_id: str) -> list[str]:
    """The worker identities that completed the workflow's tasks, in order."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    identities: list[str] = []
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            who = event.workflow_task_completed_event_attributes.identity
            if not identities or identities[-1] != who:
                identities.append(who)
    return identities
