"""The servers the benchmark talks to, and the processes it starts beside them.

The benchmark runs against the local control plane (``janus dev up``) or any
servers named by ``KUBECONFIG`` and ``TEMPORAL_ADDRESS``. The Janus worker (and,
with ``--via-bridge``, the bridge) run as child processes, so their memory is
measured on its own, from ``/proc/<pid>/status``, and never mixed with the
benchmark's.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from temporalio.client import Client

from janus.clients.temporal import connect_to
from janus.contract.crd import custom_resource_definition
from janus.dev import accounts

REPO = Path(__file__).resolve().parents[1]
LEASE_NAMESPACE = "janus-system"
BENCH_LABEL = "janus.dev/bench"
#: Parallel API calls the benchmark itself makes (creating objects, starting transactions).
CLIENT_THREADS = 16

T = TypeVar("T")

#: What a benchmark namespace's account ``janus`` may do there: anything.
TARGETS_ROLE = "janus-bench-targets"
TARGETS_RULES: list[dict[str, Any]] = [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]


class BenchError(RuntimeError):
    """The benchmark cannot run; the message says what to do."""


@dataclass(frozen=True)
class Endpoints:
    kubeconfig: str
    temporal_address: str
    temporal_namespace: str = "default"

    @classmethod
    def discover(cls) -> Endpoints:
        """From KUBECONFIG and TEMPORAL_ADDRESS, else from the running ``janus dev`` plane."""
        kubeconfig, address = os.environ.get("KUBECONFIG"), os.environ.get("TEMPORAL_ADDRESS")
        namespace = os.environ.get("TEMPORAL_NAMESPACE") or "default"
        if kubeconfig and address:
            return cls(kubeconfig, address, namespace)
        from janus.dev import ControlPlane
        from janus.dev.paths import state_dir

        found = ControlPlane(state_dir()).endpoints()
        if found is None:
            raise BenchError(
                'no control plane: run `janus dev up` (and `eval "$(janus dev env)"`), '
                "or set KUBECONFIG and TEMPORAL_ADDRESS"
            )
        return cls(str(found.kubeconfig), found.temporal_address, found.temporal_namespace)

    def environ(self) -> dict[str, str]:
        """The environment a child process (worker, bridge, kubectl) needs."""
        path = os.environ.get("PYTHONPATH")
        return {
            **os.environ,
            "KUBECONFIG": self.kubeconfig,
            "TEMPORAL_ADDRESS": self.temporal_address,
            "TEMPORAL_NAMESPACE": self.temporal_namespace,
            "PYTHONPATH": f"{REPO}{os.pathsep}{path}" if path else str(REPO),
        }


def api_client(kubeconfig: str, pool: int = CLIENT_THREADS * 2) -> k8s.ApiClient:
    configuration = k8s.Configuration()
    k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=kubeconfig, client_configuration=configuration
    )
    configuration.connection_pool_maxsize = pool
    return k8s.ApiClient(configuration)


class Cluster:
    """The benchmark's own view of the API server (as the admin)."""

    def __init__(self, endpoints: Endpoints) -> None:
        self.endpoints = endpoints
        self.api = api_client(endpoints.kubeconfig)
        self.core = k8s.CoreV1Api(self.api)
        self.custom = k8s.CustomObjectsApi(self.api)
        #: The same API, typed loosely: its methods return JSON objects as ``object``.
        self.custom_objects: Any = self.custom
        self.dynamic = DynamicClient(self.api)  # type: ignore[no-untyped-call]
        self.pool = ThreadPoolExecutor(CLIENT_THREADS, thread_name_prefix="bench-api")
        self.namespaces: list[str] = []

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking client call in the benchmark's thread pool."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, lambda: fn(*args, **kwargs))

    def install(self) -> None:
        """The Transaction CRD (as the models generate it) and the lease namespace."""
        ext = k8s.ApiextensionsV1Api(self.api)
        body: Any = custom_resource_definition()
        name = body["metadata"]["name"]
        try:
            ext.create_custom_resource_definition(body)
        except ApiException as err:
            if err.status != 409:
                raise
            current = ext.read_custom_resource_definition(name)
            assert current.metadata is not None
            body["metadata"]["resourceVersion"] = current.metadata.resource_version
            ext.replace_custom_resource_definition(name, body)
            time.sleep(2)  # the API server swaps in the new schema asynchronously
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            crd = ext.read_custom_resource_definition(name)
            conditions = (crd.status.conditions or []) if crd.status else []
            if any(c.type == "Established" and c.status == "True" for c in conditions):
                break
            time.sleep(0.1)
        else:
            raise BenchError(f"CRD {name} did not become Established within 30s")
        self._create_lease_namespace()

    def _create_lease_namespace(self) -> None:
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
        async def one(name: str) -> None:
            body = k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name=name), data=data)
            await self.call(self.core.create_namespaced_config_map, namespace, body)

        await gather_limited((one(n) for n in names), CLIENT_THREADS)

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


async def temporal_client(endpoints: Endpoints) -> Client:
    return await connect_to(endpoints.temporal_address, namespace=endpoints.temporal_namespace)


def _proc_status_kib(pid: int, field: str) -> int | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return None


#: Child processes running now, so an interrupted run can stop them all.
RUNNING: set[ChildProcess] = set()


def stop_all_children() -> None:
    for child in list(RUNNING):
        child.stop(timeout=5)


class ChildProcess:
    """A process the benchmark started and alone stops (by its pid)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.name, self.argv, self.env, self.log = name, argv, env, log
        self.proc: subprocess.Popen[str] | None = None
        self.ready_url: str | None = None

    def start(self, ready_line: str | None = None, timeout: float = 60) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("a") as log:
            self.proc = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=REPO,
                stdout=subprocess.PIPE if ready_line else log,
                stderr=log,
                text=True,
            )
        RUNNING.add(self)
        if self.ready_url is not None:
            self._wait_ready_url(self.ready_url, timeout)
        if ready_line is None:
            return
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line.strip() == ready_line:
                threading.Thread(target=self._drain, daemon=True).start()
                return
            if not line and self.proc.poll() is not None:
                break
        self.stop()
        raise BenchError(f"{self.name} did not start; see {self.log}")

    def _wait_ready_url(self, url: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(url, timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise BenchError(f"{self.name} did not become ready ({url}); see {self.log}")

    def _drain(self) -> None:
        """Copy what the child prints after it is ready to its log, so its pipe never fills."""
        assert self.proc is not None and self.proc.stdout is not None
        with self.log.open("a") as log:
            for line in self.proc.stdout:
                log.write(line)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def peak_rss_bytes(self) -> int | None:
        """The process's peak resident set (VmHWM) since start or the last reset."""
        kib = _proc_status_kib(self.pid, "VmHWM")
        return None if kib is None else kib * 1024

    def rss_bytes(self) -> int | None:
        kib = _proc_status_kib(self.pid, "VmRSS")
        return None if kib is None else kib * 1024

    def reset_peak(self) -> bool:
        """Reset VmHWM to the current RSS (``echo 5 > /proc/<pid>/clear_refs``)."""
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        except OSError:
            return False
        return True

    def stop(self, timeout: float = 20) -> None:
        RUNNING.discard(self)
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout)


def worker_process(
    endpoints: Endpoints, task_queue: str, log: Path, faults: Iterable[str] = ()
) -> ChildProcess:
    env = endpoints.environ()
    env["JANUS_FAULTS"] = ",".join(faults)
    env["JANUS_LEASE_NAMESPACE"] = LEASE_NAMESPACE
    argv = [sys.executable, "-m", "benchmarks.worker_process", "--task-queue", task_queue]
    return ChildProcess(f"worker ({task_queue})", argv, env, log)


def janus_executable() -> str:
    beside = Path(sys.executable).parent / "janus"
    return str(beside) if beside.exists() else (shutil.which("janus") or "janus")


def bridge_available() -> bool:
    """Whether this checkout's ``janus`` has a ``bridge`` command."""
    result = subprocess.run(
        [janus_executable(), "bridge", "--help"], capture_output=True, text=True, check=False
    )
    return result.returncode == 0


def bridge_process(
    endpoints: Endpoints, task_queue: str, log: Path, extra_args: Iterable[str] = ()
) -> ChildProcess:
    """``janus bridge`` on the benchmark's task queue, without leader election, with its
    health endpoint on a free loopback port (``ChildProcess.ready_url``)."""
    help_text = subprocess.run(
        [janus_executable(), "bridge", "--help"], capture_output=True, text=True, check=False
    ).stdout
    argv = [janus_executable(), "bridge"]
    if "--task-queue" in help_text:
        argv += ["--task-queue", task_queue]
    if "--leader-election" in help_text:
        argv += ["--no-leader-election"]
    ready_url = None
    if "--metrics-port" in help_text:
        port = free_port()
        argv += ["--metrics-port", str(port), "--metrics-host", "127.0.0.1"]
        ready_url = f"http://127.0.0.1:{port}/readyz"
    argv += list(extra_args)
    env = endpoints.environ()
    env["JANUS_TASK_QUEUE"] = task_queue
    child = ChildProcess("bridge", argv, env, log)
    child.ready_url = ready_url
    return child


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def kubectl_executable() -> str:
    beside = Path(sys.executable).parent / "kubectl"
    return str(beside) if beside.exists() else (shutil.which("kubectl") or "kubectl")
