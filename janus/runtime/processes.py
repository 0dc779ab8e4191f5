"""The long-running processes: ``janus worker``, ``janus bridge`` and ``janus run``.

Each is a set of *components* (the Temporal worker, the bridge) sharing one
event loop, one probe/metrics endpoint and one stop signal. SIGTERM or SIGINT
sets the signal; each component then winds down in its own way (the worker
finishes its tasks, the bridge releases its Lease) and the process exits 0. If a
component fails, the others are stopped too and the process exits non-zero, so
a supervisor (Kubernetes, or whoever started ``janus run``) restarts it whole.

Everything that can be checked before starting is checked first
(``janus.runtime.preflight``), and reported as a ``StartupError``.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from kubernetes.client import ApiClient
from temporalio.client import Client
from temporalio.worker import Worker

from janus.clients.temporal import temporal_client
from janus.contract.settings import (
    BridgeSettings,
    ClusterSettings,
    ProbeSettings,
    TemporalSettings,
    WorkerSettings,
)
from janus.contract.versioning import served_queues
from janus.runtime import preflight
from janus.runtime.health import Check, HealthServer
from janus.runtime.worker import build_workers

if TYPE_CHECKING:
    from bridge import Bridge

logger = logging.getLogger(__name__)


class Component(Protocol):
    """One part of a process; its ``live``/``ready`` answer the probes (None when fine)."""

    name: str

    def live(self) -> str | None: ...

    def ready(self) -> str | None: ...

    async def run(self, stop: asyncio.Event) -> None: ...


@dataclass
class WorkerComponent:
    """The Temporal worker: the saga workflow and the activities, on one task queue."""

    client: Client
    temporal: TemporalSettings
    api: ApiClient
    settings: WorkerSettings
    name: str = "worker"
    _running: bool = field(default=False, init=False)
    _failed: str | None = field(default=None, init=False)

    def live(self) -> str | None:
        return self._failed

    def ready(self) -> str | None:
        return None if self._running else "not polling yet"

    async def run(self, stop: asyncio.Event) -> None:
        workers = build_workers(
            self.client,
            task_queue=self.temporal.task_queue,
            api_client=self.api,
            settings=self.settings,
        )
        polling = asyncio.create_task(_run_all(workers), name="temporal-worker")
        self._running = True
        logger.info(
            "worker polling task queues %s in namespace %r at %s",
            ", ".join(repr(q) for q in served_queues(self.temporal.task_queue)),
            self.temporal.namespace,
            self.temporal.address,
        )
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({polling, stopping}, return_when=asyncio.FIRST_COMPLETED)
        self._running = False
        if not polling.done():
            await asyncio.gather(*(w.shutdown() for w in workers))
        stopping.cancel()
        try:
            await polling
        except Exception as err:
            self._failed = str(err)
            raise


async def _run_all(workers: Sequence[Worker]) -> None:
    """Run the workers together; the first to fail stops the others."""
    tasks = [asyncio.create_task(w.run()) for w in workers]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()


async def worker_component(
    temporal: TemporalSettings, cluster: ClusterSettings, settings: WorkerSettings
) -> WorkerComponent:
    client = await temporal_client(temporal, identity=None)
    api = await asyncio.to_thread(preflight.kubernetes_api, cluster)
    return WorkerComponent(client, temporal, api, settings)


async def bridge_component(
    temporal: TemporalSettings, cluster: ClusterSettings, settings: BridgeSettings
) -> Bridge:
    """Check what the bridge needs (the operator thread connects on its own later)."""
    from bridge import Bridge  # here, not above: a worker-only process never loads kopf

    client = await temporal_client(temporal)
    await preflight.check_search_attributes(client, temporal)
    api = await asyncio.to_thread(preflight.kubernetes_api, cluster)
    await asyncio.to_thread(preflight.check_transactions_served, api)
    return Bridge(temporal, cluster, settings, api)


async def serve(components: Sequence[Component], probes: ProbeSettings) -> None:
    """Run the components until a signal or the first failure; then stop them all."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _stopper(stop, sig))
    health = HealthServer(probes)
    for component in components:
        health.add(Check(component.name, live=component.live, ready=component.ready))
    await health.start()
    tasks = [asyncio.create_task(c.run(stop), name=c.name) for c in components]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        stop.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await health.stop()
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        raise errors[0]


def _stopper(stop: asyncio.Event, sig: signal.Signals) -> Callable[[], None]:
    def handle() -> None:
        logger.info("%s received; stopping", sig.name)
        stop.set()

    return handle
