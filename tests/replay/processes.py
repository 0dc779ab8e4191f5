"""``janus worker``, ``janus bridge`` and ``janus retry`` run from a given source tree.

The upgrade test and the history recorder run one release's processes beside
another's: each is the current interpreter with ``PYTHONPATH`` (and the working
directory) at that release's checkout, so ``janus``, ``workflows``,
``activities`` and ``bridge`` come from there and not from the editable install.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from janus.clients.launcher import READY_TIMEOUT, ChildProcess, answers, free_port

#: ``janus`` as a module call, so the tree on PYTHONPATH decides which code runs.
JANUS_MAIN = "import sys; sys.argv[0] = 'janus'; from janus.cli import main; main()"


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


class TreeProcess(ChildProcess):
    """A long-running ``janus worker`` or ``janus bridge`` from ``tree``."""

    def __init__(
        self, tree: Path, role: str, env: dict[str, str], log: Path, args: tuple[str, ...] = ()
    ) -> None:
        self.tree, self.role, self.port = tree, role, free_port()
        probes = {"JANUS_METRICS_PORT": str(self.port), "JANUS_METRICS_HOST": "127.0.0.1"}
        super().__init__(
            f"janus {role} from {tree}",
            [sys.executable, "-c", JANUS_MAIN, role, *args],
            log,
            env=tree_env(tree, {**env, **probes}),
            cwd=tree,
        )

    def ready(self, timeout: float = READY_TIMEOUT) -> TreeProcess:
        """Until /readyz answers 200; fail with the log if the process dies first."""
        url = f"http://127.0.0.1:{self.port}/readyz"
        return self.wait_ready(lambda: answers(url, timeout=5), timeout=timeout)
