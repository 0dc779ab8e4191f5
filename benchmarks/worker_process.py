"""A Janus worker in a process of its own, so the benchmark can measure its memory.

Started by :class:`benchmarks.environment.WorkerProcess` as
``python -m benchmarks.worker_process --task-queue Q``; reads ``KUBECONFIG``,
``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE`` and the worker settings
(``JANUS_FAULTS`` …) from the environment, prints ``ready`` once it polls, and
runs until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys

from janus.config import WorkerSettings, kubernetes_client
from janus.worker import build_worker, connect

READY = "ready"


async def serve(task_queue: str) -> None:
    client = await connect(
        os.environ["TEMPORAL_ADDRESS"], namespace=os.environ.get("TEMPORAL_NAMESPACE", "default")
    )
    worker = build_worker(
        client,
        task_queue=task_queue,
        api_client=kubernetes_client(os.environ.get("KUBECONFIG")),
        settings=WorkerSettings.from_env(),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with worker:
        print(READY, flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.worker_process")
    parser.add_argument("--task-queue", required=True)
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve(args.task_queue))
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
