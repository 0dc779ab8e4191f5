"""``janus worker``, ``janus bridge`` and ``janus retry`` run from a given source tree.

The upgrade test and the history recorder run one release's processes beside
another's: each is the current interpreter with ``PYTHONPATH`` (and the working
directory) at that release's checkout, so ``janus``, ``workflows``,
``activities`` and ``bridge`` come from there and not from the editable install.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

#: ``janus`` as a module call, so the tree on PYTHONPATH decides which code runs.
JANUS_MAIN = "import sys; sys.argv[0] = 'janus'; from janus.cli import main; main()"
READY_TIMEOUT = 90.0
STOP_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def tree_env(tree: Path, env: dict[str, str]) -> dict[str, str]:
    return {**os.environ, **env, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}


def janus_command(tree: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a short ``janus`` command (e.g. ``retry``) from ``tree``; fail with its output."""
    done = subprocess.run(
        [sys.executable, "-c", JANUS_MAIN, *args],
        cwd=tree,
        env=tree_env(tree, env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise AssertionError(
            f"janus {' '.join(args)} from {tree} failed:\n{done.stdout}{done.stderr}"
        )
    return done


@dataclass
class TreeProcess:
    """A long-running ``janus worker`` or ``janus bridge`` from ``tree``."""

    tree: Path
    role: str
    env: dict[str, str]
    log: Path
    args: tuple[str, ...] = ()
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> TreeProcess:
        env = tree_env(
            self.tree,
            {**self.env, "JANUS_METRICS_PORT": str(self.port), "JANUS_METRICS_HOST": "127.0.0.1"},
        )
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-c", JANUS_MAIN, self.role, *self.args],
                cwd=self.tree,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        return self

    def ready(self, timeout: float = READY_TIMEOUT) -> TreeProcess:
        """Until /readyz answers 200; fail with the log if the process dies first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.exit_code() is not None:
                raise AssertionError(f"janus {self.role} from {self.tree} exited:\n{self.tail()}")
            try:
                url = f"http://127.0.0.1:{self.port}/readyz"
                with urllib.request.urlopen(url, timeout=5) as response:
                    if response.status == 200:
                        return self
            except (OSError, urllib.error.HTTPError):
                pass
            time.sleep(0.2)
        raise AssertionError(f"janus {self.role} not ready in {timeout}s:\n{self.tail()}")

    def exit_code(self) -> int | None:
        assert self.process is not None
        return self.process.poll()

    def wait_exit(self, timeout: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        """SIGKILL, as a node lost in the middle of a rollout would be."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=STOP_TIMEOUT)

    def stop(self) -> None:
        """SIGTERM (a rolling update's pod shutdown), SIGKILL if it does not end."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.kill()

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])
