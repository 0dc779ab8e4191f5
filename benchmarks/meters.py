"""What the machine did during a run: CPU time per process, and the API server's requests.

CPU comes from ``/proc/<pid>/stat`` (user + system time, children excluded) for
the control plane's servers (from the ``janus dev`` state directory beside the
kubeconfig, when there is one), the processes the benchmark started and the
benchmark itself; the rest of the machine's load from ``/proc/stat``.

Requests come from the API server's own ``apiserver_request_total`` (``kubectl
get --raw /metrics``, before and after). The controller-manager's reactions (a
patched Deployment makes a ReplicaSet, Pods and status updates) and watches are
left out, so what remains is what the client under test asked for, plus the odd
unrelated request (a leader-election renewal, the namespace controller finishing
an earlier deletion), which is why a quiet interval is measured too.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from benchmarks.environment import kubectl
from janus.dev import ControlPlane, Endpoints

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces; fields after its closing parenthesis are fixed.
    fields = text.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all cores, not idle or iowait)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(values) - values[3] - values[4]) / _TICKS


def control_plane_pids(endpoints: Endpoints) -> dict[str, int]:
    """The servers of the ``janus dev`` plane these endpoints are of (its state directory is
    the kubeconfig's), by name."""
    state_dir = endpoints.state_dir or endpoints.kubeconfig.parent
    if not (state_dir / "state.json").exists():
        return {}
    try:
        return {s.server.name: s.server.pid for s in ControlPlane(state_dir).status() if s.running}
    except Exception:  # the plane is not ours to diagnose here; CPU figures are optional
        return {}


class CpuMeter:
    """CPU seconds each named process used between ``start()`` and ``stop()``."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.seconds: dict[str, float] = {}

    def start(self) -> CpuMeter:
        self._t0, self._machine = time.monotonic(), machine_busy_seconds()
        self._start = {n: s for n, p in self.pids.items() if (s := cpu_seconds(p)) is not None}
        return self

    def stop(self) -> None:
        self.wall = time.monotonic() - self._t0
        self.machine = machine_busy_seconds() - self._machine
        for name, begin in self._start.items():
            end = cpu_seconds(self.pids[name])
            if end is not None:
                self.seconds[name] = end - begin

    def summary(self) -> dict[str, Any]:
        """CPU seconds per process; cores busy, of these and of the rest of the machine."""
        wall, ours = self.wall or 1.0, sum(self.seconds.values())
        return {
            "wall_seconds": self.wall,
            "cpu_seconds": self.seconds,
            "total_cores_busy": ours / wall,
            "other_processes_cores_busy": max(self.machine - ours, 0) / wall,
        }


_SAMPLE = re.compile(r"^apiserver_request_total\{(.*)\} (\d+(?:\.\d+)?(?:e\+\d+)?)$", re.M)
_LABEL = re.compile(r'(\w+)="([^"]*)"')
#: What the seed example, Janus and the bridge touch ("" is discovery). Others are
#: the controllers' reactions (ReplicaSets, Pods, status) or namespace deletions.
_RESOURCES = "configmaps deployments secrets leases transactions events namespaces"
COUNTED = {"", "selfsubjectaccessreviews", *_RESOURCES.split()}


def requests_now(endpoints: Endpoints) -> Counter[str]:
    """The API server's request counts so far, by ``VERB resource[/subresource]``."""
    counts: Counter[str] = Counter()
    for labels, value in _SAMPLE.findall(kubectl(endpoints, "get", "--raw", "/metrics")):
        found = dict(_LABEL.findall(labels))
        verb, resource, sub = (found.get(k, "") for k in ("verb", "resource", "subresource"))
        # Watches and lists are long-lived or the controllers'.
        if verb in ("WATCH", "LIST") or resource not in COUNTED:
            continue
        if (resource, sub) != ("deployments", "status"):
            name = f"{verb} {resource or '(discovery)'}" + (f"/{sub}" if sub else "")
            counts[name] += int(float(value))
    return counts


async def count_requests(
    endpoints: Endpoints, work: Callable[[], Awaitable[Any]]
) -> dict[str, int]:
    """The requests made while ``work`` ran (and half a second after, for stragglers)."""
    before = await asyncio.to_thread(requests_now, endpoints)
    await work()
    await asyncio.sleep(0.5)
    after = await asyncio.to_thread(requests_now, endpoints)
    return dict(sorted((after - before).items(), key=lambda kv: (-kv[1], kv[0])))
