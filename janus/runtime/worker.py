"""Assemble a Temporal worker: the saga workflow and the activities, on one task queue."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from kubernetes.client import ApiClient
from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities import Cluster, CurrentRuns, TransactionActivities
from activities.seams import Seams
from janus.clients.kubernetes import kubernetes_client
from janus.clients.temporal import connect
from janus.contract.settings import WorkerSettings
from janus.contract.versioning import served_queues, worker_identity
from janus.runtime.outcomes import OutcomeInterceptor
from janus.runtime.settings import load
from workflows import TransactionWorkflow

#: Activities run in threads (the Kubernetes client is synchronous).
MAX_ACTIVITY_THREADS = 32

#: Modules the workflow sandbox shares with the worker instead of importing them
#: again for every workflow run (and, lazily, in its first workflow task). They
#: are deterministic: the API models and the validation library under them.
SHARED_WITH_WORKFLOWS = ("janus", "pydantic", "pydantic_core", "annotated_types", "kubernetes")


def workflow_runner() -> SandboxedWorkflowRunner:
    """The sandbox workflows run in: the same for a worker and for a replay of history."""
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*SHARED_WITH_WORKFLOWS)
    )


def build_worker(
    client: Client,
    *,
    task_queue: str,
    api_client: ApiClient,
    settings: WorkerSettings,
    seams: Seams | None = None,
) -> Worker:
    """The worker of one task queue. Its test seams are ``seams``, or when None those
    the environment configures (``JANUS_FAULTS``, ``JANUS_CRASH_AT``...; off unless set)."""
    runs = CurrentRuns(client, asyncio.get_running_loop())
    activities = TransactionActivities(
        Cluster(api_client), settings, runs, seams if seams is not None else Seams.from_env()
    )
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[TransactionWorkflow],
        activities=activities.all(),
        workflow_runner=workflow_runner(),
        activity_executor=ThreadPoolExecutor(max_workers=MAX_ACTIVITY_THREADS),
        max_concurrent_activities=MAX_ACTIVITY_THREADS,
        identity=worker_identity(task_queue),
        interceptors=[OutcomeInterceptor()],
    )


def build_workers(
    client: Client,
    *,
    task_queue: str,
    api_client: ApiClient,
    settings: WorkerSettings,
) -> list[Worker]:
    """A worker for each generation's queue of ``task_queue`` this release serves
    (``janus.contract.versioning``): today's, and the older ones an upgrade inherits."""
    return [
        build_worker(client, task_queue=queue, api_client=api_client, settings=settings)
        for queue in served_queues(task_queue)
    ]


async def serve_from_env(task_queue: str, on_ready: Callable[[], None]) -> None:
    """A bare worker for test and benchmark processes, configured from the environment
    as ``janus worker`` is without flags (``KUBECONFIG``, ``TEMPORAL_ADDRESS``,
    ``TEMPORAL_NAMESPACE``, the worker settings), but without its start-up checks and
    probes; ``on_ready`` once it polls; runs until SIGTERM or SIGINT."""
    settings = load({"temporal": {"task_queue": task_queue}, "cluster": {}, "worker": {}})
    assert settings.worker is not None
    client = await connect(settings.temporal)
    workers = build_workers(
        client,
        task_queue=task_queue,
        api_client=kubernetes_client(settings.cluster.kubeconfig),
        settings=settings.worker,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with contextlib.AsyncExitStack() as running:
        for worker in workers:
            await running.enter_async_context(worker)
        on_ready()
        await stop.wait()
