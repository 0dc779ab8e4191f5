"""What every scenario shares: the configuration, the clients, a worker to run on; and the
run of the selected scenarios."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from kubernetes import client as k8s
from temporalio.client import Client

from benchmarks import report
from benchmarks.driver import ApplyWith, Driver
from benchmarks.environment import LEASE_NAMESPACE, Cluster, JanusProcess, discover
from benchmarks.meters import CpuMeter, control_plane_pids
from benchmarks.workload import config_map_transaction
from janus.clients.temporal import connect_to
from janus.dev import Endpoints

Scenario = Literal["latency", "throughput", "scale", "writes"]
SCENARIOS: tuple[Scenario, ...] = ("latency", "throughput", "scale", "writes")


@dataclass(frozen=True)
class BenchConfig:
    scenarios: tuple[Scenario, ...] = SCENARIOS
    latency_runs: int = 20
    warmup_runs: int = 1
    throughput_counts: tuple[int, ...] = (50, 200)
    throughput_changes: int = 3
    """Changes per transaction in the throughput scenarios (the seed example has 3)."""
    overlap: bool = True
    """Also run the throughput scenarios with overlapping targets."""
    overlap_groups: int = 10
    """Shared ConfigMaps the overlapping transactions contend for."""
    overlap_shared: int = 1
    """Shared ConfigMaps each overlapping transaction patches (2 makes a ring)."""
    scale_sizes: tuple[int, ...] = (10, 100, 1000, 5000)
    scale_rollback: bool = True
    results_dir: Path = Path("results")
    plots: bool = True
    via_bridge: bool = False
    bridge_args: tuple[str, ...] = ()
    apply_with: ApplyWith = "api"
    keep_namespaces: bool = False
    timeout_per_change: float = 5.0
    """Seconds per change before a scale transaction is given up (at least 120s)."""
    write_sizes: tuple[int, ...] = (10, 100, 1000, 5000)
    """Changes per Transaction object in the writes scenario (no workflow)."""

    @classmethod
    def quick(cls, **overrides: Any) -> BenchConfig:
        """A short run: a few latency runs, small throughput and scale sizes."""
        quick = {"latency_runs": 5, "throughput_counts": (10, 30), "scale_sizes": (10, 100)}
        return replace(cls(write_sizes=(10, 100), **quick), **overrides)  # type: ignore[arg-type]


@dataclass
class Context:
    config: BenchConfig
    endpoints: Endpoints
    cluster: Cluster
    temporal: Client
    log_dir: Path
    plane_pids: dict[str, int] = field(default_factory=dict)
    bridge: JanusProcess | None = None

    def say(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    @asynccontextmanager
    async def worker(
        self, label: str, faults: Iterable[str] = (), warm: bool = True
    ) -> AsyncIterator[tuple[JanusProcess, Driver]]:
        """A fresh worker process (and bridge, with --via-bridge) on a task queue of its own.

        ``warm``: first run one small transaction, uncounted, so that the measured ones
        do not pay for the worker's first workflow (imports, sandbox, connections).
        """
        cfg = self.config
        queue = f"bench-{label}-{uuid.uuid4().hex[:6]}"
        env = {"JANUS_FAULTS": ",".join(faults), "JANUS_LEASE_NAMESPACE": LEASE_NAMESPACE}
        log = self.log_dir / f"worker-{label}.log"
        worker = JanusProcess("worker", self.endpoints, queue, log, env=env)
        await asyncio.to_thread(worker.launch)
        try:
            if cfg.via_bridge:
                log = self.log_dir / f"bridge-{label}.log"
                env = {"JANUS_LEADER_ELECTION": "false"}
                self.bridge = JanusProcess(
                    "bridge", self.endpoints, queue, log, env=env, args=cfg.bridge_args
                )
                await asyncio.to_thread(self.bridge.launch)
            driver = Driver(self.cluster, self.temporal, queue, cfg.via_bridge, cfg.apply_with)
            if warm:
                ns = await self.cluster.call(self.cluster.new_namespace, "warmup")
                await self.cluster.create_config_maps(ns, ["warm-0", "warm-1"], {"version": "1"})
                warm_up = config_map_transaction("warm-up", ["warm-0", "warm-1"])
                await driver.run(warm_up, ns, within=120)
                self.cleanup([ns])
            yield worker, driver
        finally:
            if self.bridge is not None:
                await asyncio.to_thread(self.bridge.stop)
                self.bridge = None
            await asyncio.to_thread(worker.stop)

    def meter(self, worker: JanusProcess) -> CpuMeter:
        """A CPU meter over the control plane, this worker and the benchmark itself."""
        pids = {**self.plane_pids, "janus worker": worker.pid, "benchmark (client)": os.getpid()}
        if self.bridge is not None:
            pids["janus bridge"] = self.bridge.pid
        return CpuMeter(pids).start()

    def cleanup(self, namespaces: Iterable[str]) -> None:
        if not self.config.keep_namespaces:
            self.cluster.delete_namespaces(namespaces)

    @property
    def start_mode(self) -> str:
        how = "kubectl apply" if self.config.apply_with == "kubectl" else "create (API)"
        if self.config.via_bridge:
            return f"{how} → janus bridge → workflow"
        return f"{how} + start_workflow (as the bridge does; bridge not in the loop)"


async def run(config: BenchConfig, endpoints: Endpoints | None = None) -> dict[str, Any]:
    """Run ``config``'s scenarios; return the results (also written to its results dir)."""
    from benchmarks.scenarios import latency, scale, throughput, writes

    scenarios: dict[str, Callable[[Context], Awaitable[dict[str, Any]]]] = {
        "latency": latency.run,
        "throughput": throughput.run,
        "scale": scale.run,
        "writes": writes.run,
    }
    endpoints = endpoints or discover()
    cluster = Cluster(endpoints)
    try:
        temporal = await connect_to(
            endpoints.temporal_address, namespace=endpoints.temporal_namespace
        )
        await cluster.call(cluster.install)
        version = await cluster.call(k8s.VersionApi(cluster.api).get_code)
        log_dir = config.results_dir / "logs"
        shutil.rmtree(log_dir, ignore_errors=True)
        pids = control_plane_pids(endpoints)
        ctx = Context(config, endpoints, cluster, temporal, log_dir, plane_pids=pids)
        results: dict[str, Any] = {
            "machine": report.machine(version.git_version),
            "config": dataclasses.asdict(config),
        }
        for name in config.scenarios:
            ctx.say(f"== {name}")
            results[name] = await scenarios[name](ctx)
            report.write(results, config.results_dir, plots=False)  # in case a later one fails
        results["targets"] = [dataclasses.asdict(t) for t in report.targets(results)]
        report.write(results, config.results_dir, config.plots)
        return results
    finally:
        if not config.keep_namespaces:
            cluster.delete_namespaces()
        cluster.close()
