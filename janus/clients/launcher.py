"""Child processes: started with a log file and an environment, awaited, stopped.

Janus starts processes of its own in three places: the dev control plane's
servers (``janus.dev.processes``), ``janus run --detach`` (``janus.runtime.daemon``),
and, in the tests, the chaos explorer and the benchmarks, workers and bridges that
are SIGKILLed and restarted. Each needs the same few things, done one way here:

- output, stdout and stderr together, appended to a log file (the previous run's
  kept as ``<log>.1`` when asked), stdin closed, so a child never blocks on a
  terminal or a full pipe;
- optionally a session of its own: it outlives its starter, and Ctrl-C in the
  starter's terminal does not reach it;
- a readiness wait that fails as soon as the child exits, with the log's tail,
  instead of waiting out the timeout;
- ``stop`` (SIGTERM, SIGKILL after a grace period) and ``kill`` (SIGKILL, as a
  lost node), each waiting for the exit.

How a child is recognised later by another process (pid files, ``/proc``
command lines) stays with its owner; so does what "ready" means (an HTTP
probe, a line in the log: ``answers``, ``ChildProcess.printed``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Self

READY_TIMEOUT = 90.0
STOP_TIMEOUT = 30.0
POLL_SECONDS = 0.2


class LaunchError(Exception):
    """A child exited or did not become ready; the message has its log's last lines."""


class ChildProcess:
    """One child process, its output in ``log``.

    Args:
        name: How messages name it (``janus worker``, ``etcd``).
        argv: The command.
        log: Where its output goes.
        env: Its whole environment (default: this process's).
        cwd: Its working directory (default: this process's).
        session: Start it in a session of its own (see the module docstring).
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log: Path,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        session: bool = False,
    ) -> None:
        self.name, self.argv, self.log = name, list(argv), log
        self.env = dict(env) if env is not None else None
        self.cwd, self.session = cwd, session
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *, rotate: bool = False) -> Self:
        """Start it; with ``rotate``, the previous log becomes ``<log>.1`` and the new
        one starts with the time and the command."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        if rotate and self.log.exists():
            self.log.replace(self.log.with_name(f"{self.log.name}.1"))
        with self.log.open("ab") as out:
            if rotate:
                out.write(
                    f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(self.argv)}\n".encode()
                )
                out.flush()
            self.process = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=self.session,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} was not started"
        return self.process.pid

    def exit_code(self) -> int | None:
        """The exit status (negative: killed by that signal), or None while it runs."""
        assert self.process is not None, f"{self.name} was not started"
        return self.process.poll()

    @property
    def started(self) -> bool:
        return self.process is not None

    @property
    def alive(self) -> bool:
        return self.started and self.exit_code() is None

    def wait_ready(
        self,
        ready: Callable[[], bool] | None = None,
        *,
        timeout: float = READY_TIMEOUT,
        interval: float = POLL_SECONDS,
    ) -> Self:
        """Until ``ready()`` is true (None: it has not exited); ``LaunchError`` if it
        exits first or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while True:
            code = self.exit_code()
            if code is not None:
                raise LaunchError(f"{self.name} exited with status {code}; {self._last_lines()}")
            if ready is None or ready():
                return self
            if time.monotonic() > deadline:
                raise LaunchError(
                    f"{self.name} not ready after {timeout:.0f}s; {self._last_lines()}"
                )
            time.sleep(interval)

    def wait_exit(self, timeout: float) -> int | None:
        """The exit status, or None if it still runs after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        code = self.exit_code()
        while code is None and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS / 2)
            code = self.exit_code()
        return code

    def send(self, sig: signal.Signals) -> None:
        """Send ``sig`` unless it has exited."""
        if self.exit_code() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def kill(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGKILL: no shutdown, as a crashed node; wait for the exit."""
        self.send(signal.SIGKILL)
        return self.wait_exit(timeout)

    def stop(self, grace: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM (a pod's shutdown), SIGKILL if it outlives ``grace``; the exit status."""
        if not self.started:
            return None
        self.send(signal.SIGTERM)
        code = self.wait_exit(grace)
        return code if code is not None else self.kill()

    def printed(self, line: str) -> bool:
        """Whether the log has ``line`` as a line of its own (e.g. a worker's ``ready``)."""
        return line in self.text().splitlines()

    def text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.text().splitlines()[-lines:])

    def _last_lines(self) -> str:
        return f"last lines of {self.log}:\n{self.tail(30)}"


def answers(url: str, timeout: float = 2.0) -> bool:
    """Whether ``url`` answers HTTP 200 (a ``/readyz``)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def free_port() -> int:
    """A loopback port nothing listens on now (the kernel's choice)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
