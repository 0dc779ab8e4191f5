"""``janus dev``: the pure parts in milliseconds, then the CLI against real servers.

The CLI test runs a second control plane in its own state directory, beside the
session's: it proves ``up`` picks ports nobody uses, that a second ``up`` starts
nothing, and that ``down`` leaves no process behind.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from janus.dev import DevClusterError, Endpoints
from janus.dev.build import Versions, ensure_built, ldflags, module_dir, read_versions
from janus.dev.paths import StateLayout
from janus.dev.processes import alive, free_ports, pids_mentioning, port_free

JANUS = Path(sys.executable).parent / "janus"
CLI_TIMEOUT = 300


def test_versions_come_from_go_mod() -> None:
    versions = read_versions(module_dir() / "go.mod")

    assert versions.kubernetes.startswith("v1.")
    assert versions.etcd.startswith("v3.")
    assert versions.dirname == f"k8s-{versions.kubernetes}-etcd-{versions.etcd}"


def test_ldflags_stamp_the_kubernetes_version() -> None:
    flags = ldflags(Versions(kubernetes="v1.37.2", etcd="v3.7.0", go="1.26")).split()

    assert flags[:2] == ["-s", "-w"]
    assert "k8s.io/component-base/version.gitVersion=v1.37.2" in flags
    assert "k8s.io/client-go/pkg/version.gitMinor=37" in flags


def test_missing_go_says_which_version_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))

    with pytest.raises(DevClusterError, match=r"install Go >= \d+\.\d+"):
        ensure_built(tmp_path / "cache", echo=print)


def test_module_outside_a_checkout_is_a_clear_error() -> None:
    with pytest.raises(DevClusterError, match=r"tools/cluster/go\.mod"):
        module_dir(Path("/"))


def test_free_ports_keeps_free_ones_and_replaces_taken_ones() -> None:
    kept, taken = free_ports(2)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", taken))
        listener.listen()
        ports = free_ports(3, keep=[kept, taken])

    assert ports[0] == kept
    assert ports[1] != taken
    assert len(set(ports)) == 3
    assert all(port_free(port) for port in ports)


def test_exports_are_shell_safe() -> None:
    endpoints = Endpoints(kubeconfig=Path("/tmp/a b/admin"), temporal_address="127.0.0.1:7233")

    assert endpoints.exports() == [
        "export KUBECONFIG='/tmp/a b/admin'",
        "export TEMPORAL_ADDRESS=127.0.0.1:7233",
        "export TEMPORAL_NAMESPACE=default",
    ]


def test_env_without_a_control_plane_exits_1_and_says_what_to_do(tmp_path: Path) -> None:
    result = _janus("env", state_dir=tmp_path)

    assert result.returncode == 1
    assert "start it with `janus dev up`" in result.stderr


def test_up_twice_starts_once_and_down_stops_everything(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    try:
        first = _janus("up", state_dir=state_dir, check=True)
        pids = _recorded_pids(state_dir)
        assert len(pids) == 4
        assert sorted(pids_mentioning(state_dir)) == sorted(pids.values())

        second = _janus("up", state_dir=state_dir, check=True)
        assert "already running" in second.stderr
        assert second.stdout == first.stdout
        assert _recorded_pids(state_dir) == pids
        assert sorted(pids_mentioning(state_dir)) == sorted(pids.values())

        status = _janus("status", state_dir=state_dir, check=True)
        for name, pid in pids.items():
            assert f"{name} " in status.stdout and f"pid {pid} " in status.stdout
        exports = _exports(first.stdout)
        assert f"port {exports['TEMPORAL_ADDRESS'].rpartition(':')[2]} " in status.stdout
        _assert_kubectl_ready(exports["KUBECONFIG"])
    finally:
        down = _janus("down", state_dir=state_dir)

    assert down.returncode == 0, down.stderr
    assert not [pid for pid in pids.values() if alive(pid)]
    assert pids_mentioning(state_dir) == []
    assert not StateLayout(state_dir).state_file.exists()


def _assert_kubectl_ready(kubeconfig: str) -> None:
    kubectl = Path(sys.executable).parent / "kubectl"
    argv = [str(kubectl), f"--kubeconfig={kubeconfig}", "get", "--raw=/readyz"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "ok"


def _janus(
    command: str, *, state_dir: Path, check: bool = False
) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"JANUS_STATE_DIR": str(state_dir)}
    result = subprocess.run(
        [str(JANUS), "dev", command], capture_output=True, text=True, env=env, timeout=CLI_TIMEOUT
    )
    if check:
        assert result.returncode == 0, f"janus dev {command}: {result.stderr}"
    return result


def _recorded_pids(state_dir: Path) -> dict[str, int]:
    state = json.loads(StateLayout(state_dir).state_file.read_text())
    return {server["name"]: server["pid"] for server in state["servers"]}


def _exports(stdout: str) -> dict[str, str]:
    lines = [line.removeprefix("export ") for line in stdout.splitlines()]
    return dict(line.split("=", 1) for line in lines if not line.startswith("#"))
