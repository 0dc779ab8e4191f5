"""What ``janus dev up`` records, and what it hands to its callers.

``state.json`` is the only link between the command that started the servers and
the commands that later inspect or stop them: it names each server's pid, the
binary it must still be running (so ``down`` never signals a pid the kernel has
since given to another program), its port and its log. ``Endpoints`` is the
part a client needs: where the API server and Temporal listen and with which
credentials.
"""

import os
import shlex
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ConfigDict


class Endpoints(BaseModel):
    """How to reach a running control plane."""

    model_config = ConfigDict(frozen=True)

    kubeconfig: Path
    """Kubeconfig of ``janus-admin`` (group ``system:masters``)."""
    tester_kubeconfig: Path | None = None
    """Kubeconfig of ``janus-tester``, a user with no RBAC grants; None if unknown."""
    temporal_address: str
    """``host:port`` of the Temporal frontend (gRPC)."""
    temporal_namespace: str = "default"
    ui_url: str | None = None
    """The Temporal web UI; None when the server was not started by Janus."""
    state_dir: Path | None = None
    """The state directory of a control plane Janus started; None for one from the env."""

    def exports(self) -> list[str]:
        """Shell lines that point kubectl, the temporal CLI and the tests here."""
        values = {
            "KUBECONFIG": str(self.kubeconfig),
            "TEMPORAL_ADDRESS": self.temporal_address,
            "TEMPORAL_NAMESPACE": self.temporal_namespace,
        }
        if self.tester_kubeconfig is not None:
            values["JANUS_TESTER_KUBECONFIG"] = str(self.tester_kubeconfig)
        return [f"export {name}={shlex.quote(value)}" for name, value in values.items()]


class Ports(BaseModel):
    """Every port the control plane listens on, all on 127.0.0.1."""

    etcd: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    temporal: int
    temporal_ui: int
    temporal_http: int
    temporal_metrics: int


class Server(BaseModel):
    """One started server process."""

    name: str
    pid: int
    binary: Path
    """``argv[0]``: ``down`` signals the pid only while it still runs this binary."""
    port: int
    log: Path


class ClusterState(BaseModel):
    """The content of ``state.json``: the servers in start order, ports and endpoints."""

    servers: list[Server] = []
    ports: Ports
    endpoints: Endpoints


M = TypeVar("M", bound=BaseModel)


def load_model(path: Path, model: type[M]) -> M | None:
    """Read a JSON model; None when the file is absent."""
    try:
        return model.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        return None


def save_model(path: Path, value: BaseModel) -> None:
    """Write a JSON model atomically, so a killed command never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(value.model_dump_json(indent=2) + "\n")
    tmp.replace(path)
