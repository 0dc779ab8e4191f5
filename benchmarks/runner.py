"""Run the selected scenarios and write the report."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

from kubernetes import client as k8s

from benchmarks import report
from benchmarks.context import BenchConfig, Context
from benchmarks.cpu import control_plane_pids
from benchmarks.environment import Cluster, Endpoints, temporal_client
from benchmarks.scenarios import latency, scale, throughput, writes

RUNNERS = {
    "latency": latency.run,
    "throughput": throughput.run,
    "scale": scale.run,
    "writes": writes.run,
}


async def run(config: BenchConfig, endpoints: Endpoints | None = None) -> dict[str, Any]:
    """Run ``config``'s scenarios; return the results (also written to its results dir)."""
    endpoints = endpoints or Endpoints.discover()
    cluster = Cluster(endpoints)
    try:
        temporal = await temporal_client(endpoints)
        await cluster.call(cluster.install)
        version = await cluster.call(k8s.VersionApi(cluster.api).get_code)
        log_dir = config.results_dir / "logs"
        if log_dir.exists():
            shutil.rmtree(log_dir)
        ctx = Context(
            config=config,
            endpoints=endpoints,
            cluster=cluster,
            temporal=temporal,
            log_dir=log_dir,
            plane_pids=control_plane_pids(endpoints.kubeconfig),
        )
        results: dict[str, Any] = {
            "machine": report.machine(version.git_version),
            "config": _jsonable(config),
        }
        for name in config.scenarios:
            ctx.say(f"== {name}")
            results[name] = await RUNNERS[name](ctx)
            _save_partial(results, config.results_dir)
        results["targets"] = [dataclasses.asdict(t) for t in report.targets(results)]
        results["worker_log_warnings"] = _log_warnings(ctx.log_dir)
        report.write(results, config.results_dir, config.plots)
        return results
    finally:
        if not config.keep_namespaces:
            cluster.delete_namespaces()
        cluster.close()


def _jsonable(config: BenchConfig) -> dict[str, Any]:
    out = dataclasses.asdict(config)
    out["results_dir"] = str(config.results_dir)
    return out


def _log_warnings(log_dir: Path) -> dict[str, int]:
    """Counts of notable lines in the worker logs (e.g. the client's connection pool)."""
    patterns = {
        "connection pool full": "Connection pool is full",
        "history size warning": "history size",
        "tracebacks": "Traceback",
    }
    counts = dict.fromkeys(patterns, 0)
    if not log_dir.exists():
        return counts
    for path in log_dir.glob("*.log"):
        text = path.read_text(errors="replace")
        for key, needle in patterns.items():
            counts[key] += text.count(needle)
    return counts


def _save_partial(results: dict[str, Any], directory: Path) -> None:
    """What the scenarios so far measured, in case a later one fails."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "partial.json").write_text(json.dumps(results, indent=1, default=str))
