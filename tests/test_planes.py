"""Control planes started side by side, and a server that dies while starting.

Ports are chosen free and bound a moment later by the server, so two planes
starting at once can choose the same port; the one that loses the race must
start again on fresh ports rather than fail. The test forces the race: three
planes are told the same ports (each state directory's ``ports.json``, the
ports ``up`` reuses when free) and started at once in threads.
"""

from __future__ import annotations

import concurrent.futures
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from janus.dev import ControlPlane, DevClusterError, Endpoints
from janus.dev.processes import free_ports
from janus.dev.state import Ports, save_model

SIDE_BY_SIDE = 3


@pytest.fixture
def state_dirs() -> Iterator[list[Path]]:
    """Fresh state directories under /tmp (short paths), each plane stopped and purged after."""
    dirs = [Path(tempfile.mkdtemp(prefix=f"janus-plane-{i}-")) for i in range(SIDE_BY_SIDE)]
    yield dirs
    for directory in dirs:
        ControlPlane(directory).down(purge=True)
        shutil.rmtree(directory, ignore_errors=True)


def test_planes_told_the_same_ports_all_come_up(state_dirs: list[Path]) -> None:
    same = Ports(**dict(zip(Ports.model_fields, free_ports(len(Ports.model_fields)), strict=True)))
    for directory in state_dirs:
        save_model(directory / "ports.json", same)
    planes = [ControlPlane(directory, echo=print) for directory in state_dirs]

    with concurrent.futures.ThreadPoolExecutor(SIDE_BY_SIDE) as pool:
        started = list(pool.map(ControlPlane.up, planes))

    assert len({e.kubeconfig for e in started}) == SIDE_BY_SIDE
    assert len({e.temporal_address for e in started}) == SIDE_BY_SIDE
    for endpoints in started:
        assert _namespaces(endpoints) >= {"default", "kube-system"}


def test_a_server_that_dies_while_starting_says_why(state_dirs: list[Path]) -> None:
    plane = ControlPlane(state_dirs[0])
    plane.layout.etcd_data.write_text("not a directory: etcd cannot open its data here\n")

    with pytest.raises(DevClusterError) as raised:
        plane.up()

    message = str(raised.value)
    assert "etcd exited while starting (exit status 1)" in message
    assert '"level":"fatal"' in message
    assert plane.status() == []


def _namespaces(endpoints: Endpoints) -> set[str]:
    api = k8s_config.new_client_from_config(config_file=str(endpoints.kubeconfig))  # type: ignore[no-untyped-call]
    with api:
        return {n.metadata.name for n in k8s.CoreV1Api(api).list_namespace().items}  # type: ignore[union-attr,misc]
