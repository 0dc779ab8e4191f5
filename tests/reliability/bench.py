"""A test's harness with no worker of its own: the test starts the workers it needs.

Some tests crash a worker process and finish on another (``worker``); others run
an in-process worker with given seams until something is done
(``run_worker_until``). Both work on the test's task queue and namespace.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle

from activities.seams import Seams
from tests.reliability.worker_process import WorkerProcess, Zygote
from tests.saga.harness import Harness, finish
from tests.saga.test_retry import run_worker_until


@dataclass(frozen=True)
class Bench:
    """The harness, and the workers a test starts on its task queue."""

    harness: Harness
    zygote: Zygote
    kubeconfig: str
    logs: Path

    def worker(self, label: str, **env: str) -> WorkerProcess:
        """A worker process (its log ``<label>.log`` in the test's tmp_path), started."""
        log = self.logs / f"{label}.log"
        return WorkerProcess(self.zygote, self.harness.task_queue, log, env).start()

    async def ready_worker(self, label: str, **env: str) -> WorkerProcess:
        worker = self.worker(label, **env)
        await worker.ready()
        return worker

    async def finish_on_a_new_worker(
        self, handle: WorkflowHandle[Any, Any], within: float, **env: str
    ) -> None:
        """A ``healthy`` worker process runs until the transaction's workflow ends
        (within ``within`` seconds)."""
        second = self.worker("healthy", **env)
        try:
            await second.ready()
            await asyncio.wait_for(finish(handle), timeout=within)
        finally:
            second.stop()

    async def run_worker_until(self, seams: Seams, done: Awaitable[Any]) -> None:
        """An in-process worker with ``seams``, until ``done``."""
        await run_worker_until(
            self.harness.temporal, self.harness.task_queue, self.kubeconfig, seams, done
        )
