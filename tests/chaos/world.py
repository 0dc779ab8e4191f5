"""The servers and processes a campaign runs on, and the faults it can cause them.

One control plane (``janus.dev.ControlPlane``, audit log on), set up once:
the Transaction CRD, two CRDs of the explorer's own (``Widget``, namespaced;
``Gadget``, cluster-scoped), the rights the trials' service accounts need,
and ``janus-tester`` made an administrator: it is the *foreign writer*, so
the audit log tells its writes from Janus's. The worker is a process forked by
the reliability suite's zygote (so it can be SIGKILLed, and crashes itself at
``JANUS_CRASH_AT``), talking to the API server through ``FaultProxy``; the
bridge is a ``janus bridge`` subprocess (``kubectl delete txn`` needs it).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from temporalio.client import Client

from janus.clients.launcher import ChildProcess
from janus.clients.temporal import connect_to
from janus.contract.crd import custom_resource_definition
from janus.dev import ControlPlane, Endpoints, processes
from tests.chaos.plan import GROUP
from tests.chaos.proxy import FaultProxy
from tests.reliability.test_server_restarts import restart, wait_apiserver, wait_temporal
from tests.reliability.worker_process import WorkerProcess, Zygote

JANUS = Path(sys.executable).parent / "janus"
LEASE_NAMESPACE = "janus-system"
TARGET_ROLE = "janus-chaos-targets"
TASK_QUEUE = "chaos"


def crd(kind: str, plural: str, scope: str) -> dict[str, Any]:
    schema = {
        "type": "object",
        "properties": {"spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": scope,
            "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }


def _apply(create: Any, *args: Any) -> None:
    try:
        create(*args)
    except ApiException as err:
        if err.status != 409:
            raise


def _established(ext: k8s.ApiextensionsV1Api, name: str) -> None:
    for _ in range(300):
        found = ext.read_custom_resource_definition(name)
        conditions = found.status.conditions or [] if found.status else []
        if any(c.type == "Established" and c.status == "True" for c in conditions):
            return
        time.sleep(0.1)
    raise RuntimeError(f"CRD {name} never became Established")


class World:
    def __init__(self, state_dir: Path, *, echo: Any = print) -> None:
        self.state_dir = state_dir
        self.echo = echo
        self.plane = ControlPlane(state_dir, echo=lambda m: None)
        self.endpoints: Endpoints | None = None
        self.zygote: Zygote | None = None
        self.proxy: FaultProxy | None = None
        self.bridge: ChildProcess | None = None
        self.logs = state_dir / "chaos"
        #: One restart at a time: each rewrites state.json with the new server's pid.
        self._restarting = asyncio.Lock()

    # -- up and down -------------------------------------------------------------

    async def up(self) -> None:
        self.echo(f"chaos: control plane in {self.state_dir}")
        self.endpoints = await asyncio.to_thread(self.plane.up)
        self.logs.mkdir(parents=True, exist_ok=True)
        self.admin = self._client(self.endpoints.kubeconfig)
        assert self.endpoints.tester_kubeconfig is not None
        self.tester = self._client(self.endpoints.tester_kubeconfig)
        await asyncio.to_thread(self._install)
        self.dyn = DynamicClient(self.admin)  # type: ignore[no-untyped-call]
        self.foreign = DynamicClient(self.tester)  # type: ignore[no-untyped-call]
        self.temporal: Client = await connect_to(self.endpoints.temporal_address)
        self.proxy = FaultProxy(self._apiserver_port()).start()
        self.worker_kubeconfig = self._proxied_kubeconfig(self.proxy.port)
        self.zygote = Zygote()
        self.start_bridge()

    async def down(self, *, purge: bool) -> None:
        if self.bridge is not None:
            self.bridge.stop(grace=15)
        if self.zygote is not None:
            self.zygote.close()
        if self.proxy is not None:
            self.proxy.stop()
        await asyncio.to_thread(self.plane.down, purge=False)
        # A server the campaign restarted that state.json lost track of (a restart
        # racing the plane's own bookkeeping) still names the state directory.
        inside = f"{self.state_dir}/"  # the directory itself, not a sibling sharing its prefix
        for pid in processes.pids_mentioning(self.state_dir):
            if any(inside in arg for arg in processes.cmdline(pid)):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        if purge:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    @staticmethod
    def _client(kubeconfig: Path) -> ApiClient:
        api: ApiClient = k8s_config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
        return api

    def _apiserver_port(self) -> int:
        config = yaml.safe_load(self.endpoints.kubeconfig.read_text())  # type: ignore[union-attr]
        return int(config["clusters"][0]["cluster"]["server"].rsplit(":", 1)[1])

    def _proxied_kubeconfig(self, port: int) -> Path:
        config = yaml.safe_load(self.endpoints.kubeconfig.read_text())  # type: ignore[union-attr]
        for cluster in config["clusters"]:
            cluster["cluster"]["server"] = f"https://127.0.0.1:{port}"
        path = self.logs / "worker.kubeconfig"
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return path

    def _install(self) -> None:
        ext = k8s.ApiextensionsV1Api(self.admin)
        bodies = [
            custom_resource_definition(),
            crd("Widget", "widgets", "Namespaced"),
            crd("Gadget", "gadgets", "Cluster"),
        ]
        for body in bodies:
            _apply(ext.create_custom_resource_definition, body)
        for body in bodies:
            _established(ext, body["metadata"]["name"])
        _apply(k8s.CoreV1Api(self.admin).create_namespace, {"metadata": {"name": LEASE_NAMESPACE}})
        rbac = k8s.RbacAuthorizationV1Api(self.admin)
        rule = {
            "apiGroups": ["", "apps", GROUP],
            "resources": ["configmaps", "secrets", "deployments", "widgets", "gadgets"],
            # watch: a retried Create reads the target's history (activities.kinds.create)
            "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
        }
        _apply(rbac.create_cluster_role, {"metadata": {"name": TARGET_ROLE}, "rules": [rule]})
        _apply(
            rbac.create_cluster_role_binding,
            {
                "metadata": {"name": "janus-chaos-foreign-writer"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "cluster-admin",
                },
                "subjects": [
                    {
                        "kind": "User",
                        "name": "janus-tester",
                        "apiGroup": "rbac.authorization.k8s.io",
                    }
                ],
            },
        )

    # -- processes -----------------------------------------------------------------

    def env(self) -> dict[str, str]:
        assert self.endpoints is not None
        return {
            "TEMPORAL_ADDRESS": self.endpoints.temporal_address,
            "TEMPORAL_NAMESPACE": self.endpoints.temporal_namespace,
        }

    def worker(self, log: Path, settings: dict[str, str]) -> WorkerProcess:
        assert self.zygote is not None
        env = {**self.env(), "KUBECONFIG": str(self.worker_kubeconfig), **settings}
        return WorkerProcess(self.zygote, TASK_QUEUE, log, env).start()

    def start_bridge(self) -> None:
        assert self.endpoints is not None
        env = {
            **os.environ,
            **self.env(),
            "KUBECONFIG": str(self.endpoints.kubeconfig),
            "JANUS_TASK_QUEUE": TASK_QUEUE,
            "JANUS_METRICS_PORT": "0",
        }
        env.pop("JANUS_NAMESPACES", None)
        argv = [str(JANUS), "bridge", "--no-leader-election"]
        self.bridge = ChildProcess("janus bridge", argv, self.logs / "bridge.log", env=env).start()

    def keep_bridge(self) -> bool:
        """Start the bridge again if it exited (an API server restart may end it)."""
        if self.bridge is not None and self.bridge.alive:
            return False
        self.start_bridge()
        return True

    async def restart(self, server: str, pause: float) -> None:
        async with self._restarting:
            await asyncio.to_thread(restart, self.plane, server, pause)
        assert self.endpoints is not None
        if server == "temporal":
            await wait_temporal(self.endpoints.temporal_address)
        else:
            await wait_apiserver(self.admin, self.plane)

    async def cli(self, *args: str, within: float = 60) -> subprocess.CompletedProcess[str]:
        """``temporal``, ``kubectl`` or ``janus`` against this plane (as the admin)."""
        assert self.endpoints is not None
        tool = shutil.which(args[0], path=str(Path(sys.executable).parent)) or args[0]
        env = {**os.environ, **self.env(), "KUBECONFIG": str(self.endpoints.kubeconfig)}
        if args[0] == "temporal":
            extra = ["--address", self.endpoints.temporal_address]
            args = (args[0], *args[1:], *extra)
        return await asyncio.to_thread(
            subprocess.run,
            [tool, *args[1:]],
            env=env,
            capture_output=True,
            text=True,
            timeout=within,
            check=False,
        )
