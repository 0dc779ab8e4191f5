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
import sys

from janus.runtime.worker import serve_from_env

READY = "ready"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.worker_process")
    parser.add_argument("--task-queue", required=True)
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve_from_env(args.task_queue, lambda: print(READY, flush=True)))
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
