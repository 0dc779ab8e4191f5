"""What every scenario shares: the configuration, the clients, and a worker to run on."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from temporalio.client import Client

from benchmarks.cpu import CpuMeter
from benchmarks.driver import ApplyWith, Driver
from benchmarks.environment import (
    BenchError,
    ChildProcess,
    Cluster,
    Endpoints,
    bridge_available,
    bridge_process,
    worker_process,
)
from benchmarks.workload import config_map_transaction

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
        base = cls(
            latency_runs=5,
            throughput_counts=(10, 30),
            scale_sizes=(10, 100),
            write_sizes=(10, 100),
        )
        return replace(base, **overrides)


@dataclass
class Context:
    config: BenchConfig
    endpoints: Endpoints
    cluster: Cluster
    temporal: Client
    log_dir: Path
    plane_pids: dict[str, int] = field(default_factory=dict)
    bridge: ChildProcess | None = None

    def say(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    @asynccontextmanager
    async def worker(
        self, label: str, faults: Iterable[str] = (), warm: bool = True
    ) -> AsyncIterator[tuple[ChildProcess, Driver]]:
        """A fresh worker process (and bridge, with --via-bridge) on a task queue of its own.

        ``warm``: first run one small transaction, uncounted, so that the measured ones
        do not pay for the worker's first workflow (imports, sandbox, connections).
        """
        queue = f"bench-{label}-{uuid.uuid4().hex[:6]}"
        worker = worker_process(
            self.endpoints, queue, self.log_dir / f"worker-{label}.log", list(faults)
        )
        await asyncio.to_thread(worker.start, "ready")
        bridge: ChildProcess | None = None
        try:
            if self.config.via_bridge:
                if not bridge_available():
                    raise BenchError(
                        "--via-bridge: this checkout's `janus` has no `bridge` command yet"
                    )
                bridge = bridge_process(
                    self.endpoints,
                    queue,
                    self.log_dir / f"bridge-{label}.log",
                    self.config.bridge_args,
                )
                bridge.start()
                self.bridge = bridge
            driver = Driver(
                self.cluster,
                self.temporal,
                queue,
                via_bridge=self.config.via_bridge,
                apply_with=self.config.apply_with,
            )
            if warm:
                await self.warm_up(driver)
            yield worker, driver
        finally:
            if bridge is not None:
                self.bridge = None
                await asyncio.to_thread(bridge.stop)
            await asyncio.to_thread(worker.stop)

    async def warm_up(self, driver: Driver) -> None:
        cluster = self.cluster
        ns = await cluster.call(cluster.new_namespace, "warmup")
        await cluster.create_config_maps(ns, ["warm-0", "warm-1"], {"version": "1"})
        await driver.run(config_map_transaction("warm-up", ["warm-0", "warm-1"]), ns, within=120)
        self.cleanup([ns])

    def meter(self, worker: ChildProcess) -> CpuMeter:
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
