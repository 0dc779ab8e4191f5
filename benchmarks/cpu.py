"""CPU time per process over a scenario: who is busy (the worker, the API server, etcd, Temporal).

Read from ``/proc/<pid>/stat`` (user + system time, children excluded). The
control plane's pids come from the ``janus dev`` state directory beside the
kubeconfig, when there is one; otherwise only the processes the benchmark
started (and the benchmark itself) are sampled.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces; fields after its closing parenthesis are fixed.
    fields = text.rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / _TICKS


def control_plane_pids(kubeconfig: str) -> dict[str, int]:
    """The servers of the ``janus dev`` plane whose kubeconfig this is, by name."""
    state_dir = Path(kubeconfig).parent
    if not (state_dir / "state.json").exists():
        return {}
    try:
        from janus.dev import ControlPlane

        return {s.server.name: s.server.pid for s in ControlPlane(state_dir).status() if s.running}
    except Exception:  # the plane is not ours to diagnose here; CPU figures are optional
        return {}


def system_busy_seconds() -> float | None:
    """CPU seconds the whole machine spent busy (all cores, not idle or iowait)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    values = [int(v) for v in fields]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values[:8]) - idle) / _TICKS


def load_average() -> tuple[float, float, float] | None:
    try:
        one, five, fifteen = Path("/proc/loadavg").read_text().split()[:3]
    except (OSError, ValueError):
        return None
    return (float(one), float(five), float(fifteen))


class CpuMeter:
    """CPU seconds each named process used between ``start()`` and ``stop()``."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = dict(pids)
        self._start: dict[str, float] = {}
        self._t0 = 0.0
        self.wall = 0.0
        self.seconds: dict[str, float] = {}
        self._system_start: float | None = None
        self.system_seconds: float | None = None

    def start(self) -> CpuMeter:
        self._t0 = time.monotonic()
        self._start = {n: s for n, p in self.pids.items() if (s := cpu_seconds(p)) is not None}
        self._system_start = system_busy_seconds()
        return self

    def stop(self) -> dict[str, float]:
        self.wall = time.monotonic() - self._t0
        for name, begin in self._start.items():
            end = cpu_seconds(self.pids[name])
            if end is not None:
                self.seconds[name] = end - begin
        end_system = system_busy_seconds()
        if end_system is not None and self._system_start is not None:
            self.system_seconds = end_system - self._system_start
        return self.seconds

    def summary(self) -> dict[str, object]:
        """CPU seconds and average cores busy per process, over the wall time."""
        wall = self.wall or 1.0
        ours = sum(self.seconds.values())
        system = self.system_seconds
        return {
            "wall_seconds": self.wall,
            "cpu_seconds": self.seconds,
            "cores_busy": {n: s / wall for n, s in self.seconds.items()},
            "total_cores_busy": ours / wall,
            "machine_cores_busy": None if system is None else system / wall,
            "other_processes_cores_busy": None if system is None else max(system - ours, 0) / wall,
            "load_average": load_average(),
        }
