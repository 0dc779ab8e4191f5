"""The servers the benchmark talks to, and the Janus processes it starts beside them.

The benchmark runs against the local control plane (``janus dev up``) or any
servers named by ``KUBECONFIG`` and ``TEMPORAL_ADDRESS``. The Janus worker (and,
with ``--via-bridge``, the bridge) run as child processes, ``janus worker`` and
``janus bridge`` as a user runs them, so their memory is measured on its own,
from ``/proc/<pid>/status``, and never mixed with the benchmark's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient

from janus.clients.launcher import ChildProcess, LaunchError, answers, free_port
from janus.contract.crd import crd_yaml
from janus.dev import ControlPlane, Endpoints, accounts
from janus.dev.paths import state_dir

REPO = Path(__file__).resolve().parents[1]
LEASE_NAMESPACE = "janus-system"
BENCH_LABEL = "janus.dev/bench"
#: Parallel API calls the benchmark itself makes (creating objects, starting transactions).
CLIENT_THREADS = 16
#: What a benchmark namespace's account ``janus`` may do there: anything.
TARGETS_ROLE = "janus-bench-targets"
TARGETS_RULES: list[dict[str, Any]] = [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]

T = TypeVar("T")


class BenchError(RuntimeError):
    """The benchmark cannot run; the message says what to do."""


def discover() -> Endpoints:
    """From KUBECONFIG and TEMPORAL_ADDRESS, else from the running ``janus dev`` plane."""
    kubeconfig, address = os.environ.get("KUBECONFIG"), os.environ.get("TEMPORAL_ADDRESS")
    if kubeconfig and address:
        namespace = os.environ.get("TEMPORAL_NAMESPACE") or "default"
        return Endpoints(
            kubeconfig=Path(kubeconfig), temporal_address=address, temporal_namespace=namespace
        )
    found = ControlPlane(state_dir()).endpoints()
    if found is None:
        raise BenchError(
            'no control plane: run `janus dev up` (and `eval "$(janus dev env)"`), '
            "or set KUBECONFIG and TEMPORAL_ADDRESS"
        )
    return found


def child_env(endpoints: Endpoints) -> dict[str, str]:
    """The environment a child process (worker, bridge, kubectl) needs."""
    return {
        **os.environ,
        "KUBECONFIG": str(endpoints.kubeconfig),
        "TEMPORAL_ADDRESS": endpoints.temporal_address,
        "TEMPORAL_NAMESPACE": endpoints.temporal_namespace,
    }


def api_message(err: ApiException) -> str:
    """The API server's answer, as it states it."""
    try:
        message = json.loads(err.body or "{}").get("message", err.reason)
    except ValueError:
        message = err.reason
    return f"HTTP {err.status}: {message}"[:2000]


def kubectl(endpoints: Endpoints, *args: str, stdin: str | None = None) -> str:
    """Run kubectl (the one installed beside this Python, if any); its output."""
    beside = Path(sys.executable).with_name("kubectl")
    argv = [str(beside) if beside.exists() else "kubectl", *args]
    done = subprocess.run(
        argv, input=stdin, capture_output=True, text=True, env=child_env(endpoints), check=False
    )
    if done.returncode != 0:
        raise BenchError(f"kubectl {' '.join(args[:2])} failed: {done.stderr.strip()}")
    return done.stdout


class Cluster:
    """The benchmark's own view of the API server (as the admin)."""

    def __init__(self, endpoints: Endpoints) -> None:
        self.endpoints = endpoints
        configuration = k8s.Configuration()
        k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(endpoints.kubeconfig), client_configuration=configuration
        )
        configuration.connection_pool_maxsize = CLIENT_THREADS * 2
        self.api = k8s.ApiClient(configuration)
        self.core = k8s.CoreV1Api(self.api)
        #: Typed loosely: its methods return JSON objects as ``object``.
        self.custom: Any = k8s.CustomObjectsApi(self.api)
        self.dynamic = DynamicClient(self.api)  # type: ignore[no-untyped-call]
        self.pool = ThreadPoolExecutor(CLIENT_THREADS, thread_name_prefix="bench-api")
        self.namespaces: list[str] = []

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking client call in the benchmark's thread pool."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, lambda: fn(*args, **kwargs))

    def install(self) -> None:
        """The Transaction CRD (as the models generate it) and the lease namespace."""
        apply = ("apply", "--server-side", "--force-conflicts", "-f", "-")
        kubectl(self.endpoints, *apply, stdin=crd_yaml())
        established = ("wait", "--for=condition=Established", "--timeout=30s")
        kubectl(self.endpoints, *established, "crd/transactions.backup.janus.io")
        with contextlib.suppress(ApiException):
            self.core.create_namespace(
                k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=LEASE_NAMESPACE))
            )

    def new_namespace(self, prefix: str) -> str:
        name = f"bench-{prefix}-{uuid.uuid4().hex[:6]}"
        meta = k8s.V1ObjectMeta(name=name, labels={BENCH_LABEL: "true"})
        self.core.create_namespace(k8s.V1Namespace(metadata=meta))
        self.namespaces.append(name)
        # Benchmark Transactions name no account: they act as `janus` of the namespace.
        accounts.ensure_cluster_role(self.api, TARGETS_ROLE, TARGETS_RULES)
        accounts.provide(self.api, name, cluster_role=TARGETS_ROLE)
        return name

    def delete_namespaces(self, names: Iterable[str] | None = None) -> None:
        """Delete namespaces this run made (the API server finishes in the background)."""
        for name in list(self.namespaces if names is None else names):
            with contextlib.suppress(ApiException):
                self.core.delete_namespace(name, propagation_policy="Background")
            if name in self.namespaces:
                self.namespaces.remove(name)

    async def create_config_maps(
        self, namespace: str, names: Iterable[str], data: dict[str, str]
    ) -> None:
        create = self.core.create_namespaced_config_map
        bodies = ({"metadata": {"name": n}, "data": data} for n in names)
        await gather_limited((self.call(create, namespace, b) for b in bodies), CLIENT_THREADS)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.api.close()  # type: ignore[no-untyped-call]


async def gather_limited(coros: Iterable[Any], limit: int) -> list[Any]:
    """``asyncio.gather`` with at most ``limit`` coroutines running at once, in order."""
    semaphore = asyncio.Semaphore(limit)

    async def guarded(coro: Any) -> Any:
        async with semaphore:
            return await coro

    return list(await asyncio.gather(*(guarded(c) for c in coros)))


#: Child processes running now, so an interrupted run can stop them all.
RUNNING: set[JanusProcess] = set()


def stop_all_children() -> None:
    for child in list(RUNNING):
        child.stop(grace=5)


class JanusProcess(ChildProcess):
    """``janus worker`` or ``janus bridge`` on the benchmark's task queue, ready once its
    ``/readyz`` answers; its memory read from ``/proc/<pid>/status``."""

    def __init__(
        self,
        role: str,
        endpoints: Endpoints,
        task_queue: str,
        log: Path,
        *,
        env: dict[str, str],
        args: Iterable[str] = (),
    ) -> None:
        self.port = free_port()
        probes = {"JANUS_METRICS_PORT": str(self.port), "JANUS_METRICS_HOST": "127.0.0.1"}
        env = {**child_env(endpoints), **env, **probes, "JANUS_TASK_QUEUE": task_queue}
        janus = str(Path(sys.executable).with_name("janus"))
        super().__init__(f"janus {role}", [janus, role, *args], log, env=env, cwd=REPO)

    def launch(self, timeout: float = 60) -> None:
        """Start it and wait until it is ready (``LaunchError`` if it exits or times out)."""
        RUNNING.add(self)
        self.start()
        try:
            self.wait_ready(
                partial(answers, f"http://127.0.0.1:{self.port}/readyz"), timeout=timeout
            )
        except LaunchError:
            self.stop()
            raise

    def _status_bytes(self, field: str) -> int | None:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith(f"{field}:"):
                    return int(line.split()[1]) * 1024
        return None

    def peak_rss_bytes(self) -> int | None:
        """The process's peak resident set (VmHWM) since start or the last reset."""
        return self._status_bytes("VmHWM")

    def reset_peak(self) -> None:
        """Reset VmHWM to the current RSS (``echo 5 > /proc/<pid>/clear_refs``)."""
        with contextlib.suppress(OSError):
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")

    def stop(self, grace: float = 20) -> int | None:
        RUNNING.discard(self)
        return super().stop(grace)
