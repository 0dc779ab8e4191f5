"""Janus workers in processes of their own, for tests that kill them.

A crash test needs a worker it can SIGKILL, so every worker is a process. Tens
of them start in the crash matrix, and on two cores importing Temporal and the
Kubernetes client dominates; so one *zygote* process imports everything once
and forks a worker per request (``python -m tests.reliability.worker_process``,
one JSON request per line on stdin; it reports each child's pid and, once it
is reaped, how it ended). Nothing has started a thread when it forks, so every
child is a clean process that builds its own clients.

A worker reads ``KUBECONFIG``, ``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE`` and
the worker settings (``JANUS_FAULTS``, ``JANUS_CRASH_AT``, ``JANUS_DELAYS``…)
from its environment, writes ``ready`` to its log once it polls, and runs until
SIGTERM, or until a configured crash point SIGKILLs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import traceback
import uuid
from pathlib import Path
from typing import Any

from janus.clients.launcher import ChildProcess

READY = "ready"
ROOT = Path(__file__).resolve().parents[2]


# -- inside the zygote and its children ------------------------------------------


async def serve(task_queue: str) -> None:
    from janus.runtime.worker import serve_from_env

    await serve_from_env(task_queue, lambda: print(READY, flush=True))


def _child(request: dict[str, Any]) -> None:
    """Become a worker: output to the log, the request's environment, then serve."""
    code = 1
    try:
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        fd = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        os.environ.update(request["env"])
        fmt = "%(asctime)s %(levelname)s %(name)s %(message)s"
        logging.basicConfig(level=logging.INFO, stream=sys.stderr, format=fmt, force=True)
        asyncio.run(serve(request["task_queue"]))
        code = 0
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def zygote() -> None:
    """Import everything once; fork a worker per request line; report pids and exits."""
    from kubernetes import client as k8s

    import activities  # noqa: F401
    import janus.contract.settings
    import janus.runtime.worker  # noqa: F401
    import workflows  # noqa: F401

    # The client imports API and model modules lazily; do it once, here.
    for name in (
        "CoreV1Api",
        "CoordinationV1Api",
        "CustomObjectsApi",
        "AuthorizationV1Api",
        "V1Lease",
        "V1LeaseSpec",
        "V1ConfigMap",
        "V1Secret",
        "V1ServiceAccount",
        "V1SelfSubjectAccessReview",
        "V1Status",
    ):
        getattr(k8s, name)

    def say(message: dict[str, Any]) -> None:
        os.write(1, (json.dumps(message) + "\n").encode())

    buffer = b""
    while True:
        readable, _, _ = select.select([0], [], [], 0.2)
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            say({"exited": pid, "code": os.waitstatus_to_exitcode(status)})
        if not readable:
            continue
        chunk = os.read(0, 65536)
        if not chunk:
            return
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            request = json.loads(line)
            pid = os.fork()
            if pid == 0:
                _child(request)
            say({"started": request["id"], "pid": pid})


# -- in the test -------------------------------------------------------------------


class Zygote:
    """The forking server, seen from the test."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.worker_process"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self.pids: dict[str, int] = {}
        self.codes: dict[int, int] = {}
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            message = json.loads(line)
            with self._changed:
                if "started" in message:
                    self.pids[message["started"]] = message["pid"]
                else:
                    self.codes[message["exited"]] = message["code"]
                self._changed.notify_all()

    def fork(self, task_queue: str, log: Path, env: dict[str, str]) -> int:
        ident = uuid.uuid4().hex
        request = {"id": ident, "task_queue": task_queue, "log": str(log), "env": env}
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps(request) + "\n").encode())
        self.process.stdin.flush()
        with self._changed:
            if not self._changed.wait_for(lambda: ident in self.pids, timeout=30):
                raise AssertionError("the worker zygote did not fork")
            return self.pids[ident]

    def close(self) -> None:
        for pid in self.pids.values():
            if pid not in self.codes:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class WorkerProcess(ChildProcess):
    """One worker, forked by the zygote; its output goes to ``log``."""

    def __init__(
        self, zygote: Zygote, task_queue: str, log: Path, env: dict[str, str] | None = None
    ) -> None:
        super().__init__(f"worker ({task_queue})", [], log, env=env or {})
        self.zygote = zygote
        self.task_queue = task_queue
        self.forked: int | None = None

    def start(self, *, rotate: bool = False) -> WorkerProcess:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.forked = self.zygote.fork(self.task_queue, self.log, self.env or {})
        return self

    @property
    def started(self) -> bool:
        return self.forked is not None

    @property
    def pid(self) -> int:
        assert self.forked is not None, f"{self.name} was not started"
        return self.forked

    def exit_code(self) -> int | None:
        """The exit code (negative: killed by that signal), or None while it runs."""
        return self.zygote.codes.get(self.pid)

    async def ready(self, within: float = 60) -> None:
        """Until the worker polls (it prints ``ready``); fail with its log if it exits."""
        ready = functools.partial(self.printed, READY)
        await asyncio.to_thread(self.wait_ready, ready, timeout=within, interval=0.1)

    def stop(self, grace: float = 15) -> int | None:
        return super().stop(grace)


if __name__ == "__main__":
    zygote()
