"""``janus run --detach`` and ``janus stop``: the demo's background process, idempotent."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import yaml

from janus.clients.launcher import free_port
from janus.runtime.daemon import running_pid
from tests.bridge.support import (
    FAST_ELECTION,
    JANUS,
    config_map_transaction,
    kubectl,
)


def janus(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [str(JANUS), *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_detached_run_is_idempotent_works_and_stops(
    deployed: None, namespace: str, task_queue: str, tmp_path: Path
) -> None:
    pid_file = tmp_path / "janus-run.pid"
    env = {**os.environ, "JANUS_TASK_QUEUE": task_queue, "JANUS_NAMESPACES": namespace}
    args = ["run", "--detach", "--pid-file", str(pid_file), "--metrics-port", str(free_port())]

    first = janus(*args, *FAST_ELECTION, env=env)
    again = janus(*args, *FAST_ELECTION, env=env)
    pid = running_pid(pid_file)
    assert pid is not None
    assert re.search(rf"running as pid {pid}\b", first) and re.search(rf"pid {pid}\b", again)

    try:
        manifest = config_map_transaction("detached", "made-by-run")
        kubectl("-n", namespace, "apply", "-f", "-", stdin=yaml.safe_dump(manifest))
        kubectl("-n", namespace, "wait", "--for=jsonpath={.status.phase}=Committed",
                "txn/detached", "--timeout=90s")  # fmt: skip
        kubectl("-n", namespace, "delete", "txn", "detached", "--timeout=60s")
    finally:
        stopped = janus("stop", "--pid-file", str(pid_file), env=env)

    assert f"stopped pid {pid}" in stopped
    assert running_pid(pid_file) is None
    assert not pid_file.exists()
    log = (tmp_path / "janus-run.log").read_text()
    assert "SIGTERM received; stopping" in log and "released" in log
