"""What the Janus processes (``janus worker``, ``janus bridge``, ``janus run``) are told.

The worker and the bridge must agree on Temporal (address, namespace, task
queue) and on the cluster, or a Transaction's workflow is started where no
worker polls. So both read the same settings, from flags or from the
environment names the Temporal CLI and ``kubectl`` already use
(``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE``, ``TEMPORAL_API_KEY``,
``TEMPORAL_TLS_CLIENT_CERT_PATH``…, ``KUBECONFIG``), and every combination is
checked here, before anything connects, so a mistake is reported as the flag
to fix rather than as a stack trace from deep inside a client.

These models hold *what was asked*; whether the servers answer is checked at
start by ``janus.runtime.preflight``.
"""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path
from typing import Self
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

DEFAULT_TASK_QUEUE = "janus"
DEFAULT_SYSTEM_NAMESPACE = "janus-system"
DEFAULT_INSTALLATION = "janus"
"""The installation of the default task queue; its kopf keys are those of Janus 0.1.0."""
INSTALLATION_MAX = 40
"""Leaves room in the names built from it (``finalizer-<name>``, ``<name>-bridge``)."""
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_GLOB = re.compile(r"[*?\[\]]")
IN_CLUSTER_ENV = "KUBERNETES_SERVICE_HOST"


class _Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TemporalSettings(_Settings):
    """Where the workflows run, and how to authenticate there (self-hosted or Cloud)."""

    address: str = Field(default="localhost:7233", description="host:port of the frontend.")
    namespace: str = "default"
    task_queue: str = DEFAULT_TASK_QUEUE
    tls: bool | None = Field(
        default=None,
        description="None: TLS when a client certificate or an API key is given.",
    )
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_ca: Path | None = None
    tls_server_name: str | None = None
    api_key: SecretStr | None = None
    ui_url: str | None = Field(
        default=None,
        description="Base URL of the Temporal web UI; each Transaction's status links there.",
    )

    @field_validator("address")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(
                f"{value!r} is not host:port (e.g. localhost:7233, or "
                "<namespace>.<account>.tmprl.cloud:7233 for Temporal Cloud)"
            )
        return value

    @field_validator("tls_cert", "tls_key", "tls_ca")
    @classmethod
    def _readable(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"{value} is not a readable file")
        return value

    @field_validator("ui_url")
    @classmethod
    def _no_trailing_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else None

    @model_validator(mode="after")
    def _cert_with_key(self) -> Self:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError(
                "mTLS needs both a client certificate and its key: give --tls-cert and "
                "--tls-key (TEMPORAL_TLS_CLIENT_CERT_PATH, TEMPORAL_TLS_CLIENT_KEY_PATH)"
            )
        if self.tls is False and (self.tls_cert or self.api_key):
            raise ValueError("--no-tls contradicts a client certificate or an API key")
        return self

    @property
    def uses_tls(self) -> bool:
        if self.tls is not None:
            return self.tls
        return self.tls_cert is not None or self.api_key is not None or self.tls_ca is not None

    def workflow_url(self, workflow_id: str) -> str | None:
        """The workflow's page in the Temporal UI, if a UI URL is configured."""
        if not self.ui_url:
            return None
        return (
            f"{self.ui_url}/namespaces/{quote(self.namespace, safe='')}"
            f"/workflows/{quote(workflow_id, safe='')}"
        )


class ClusterSettings(_Settings):
    """Which Kubernetes API server, as whom: a kubeconfig, or the pod's service account."""

    kubeconfig: str | None = Field(
        default=None, description="Path(s) like KUBECONFIG; None means in-cluster."
    )

    @model_validator(mode="after")
    def _reachable_config(self) -> Self:
        if self.kubeconfig is None:
            if not os.environ.get(IN_CLUSTER_ENV):
                raise ValueError(
                    "no kubeconfig: pass --kubeconfig or set KUBECONFIG (outside a cluster); "
                    "inside a pod the service account is used"
                )
            return self
        missing = [p for p in self.kubeconfig.split(os.pathsep) if p and not Path(p).is_file()]
        if missing:
            raise ValueError(f"kubeconfig {', '.join(missing)} does not exist")
        return self

    @property
    def where(self) -> str:
        """How the user named the cluster, for messages."""
        return f"kubeconfig {self.kubeconfig}" if self.kubeconfig else "in-cluster service account"


class ProbeSettings(_Settings):
    """The HTTP endpoint for liveness, readiness and Prometheus metrics."""

    host: str = "0.0.0.0"
    port: int = Field(default=8080, ge=0, le=65535, description="0 turns the endpoint off.")


def default_identity() -> str:
    """Who this replica is in the leader-election Lease: the pod name in a cluster."""
    return os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"


def installation_for(task_queue: str) -> str:
    """The default installation name of a task queue: ``janus`` → ``janus``,
    ``Team_A`` → ``team-a`` (a DNS label, as the names built from it need)."""
    name = re.sub(r"[^a-z0-9]+", "-", task_queue.lower()).strip("-")[:INSTALLATION_MAX]
    return name.rstrip("-") or DEFAULT_INSTALLATION


class BridgeSettings(_Settings):
    """What the bridge watches, and how replicas decide which one of them acts.

    An *installation* is one Janus (its bridges and workers on one task queue).
    Several can share a cluster: each has its own election Lease
    (``<installation>-bridge``) and handles the Transactions labelled
    ``backup.janus.io/installation=<installation>``, plus the unlabelled ones
    unless ``pinned_only`` (see ``bridge.installations``).
    """

    namespaces: tuple[str, ...] = Field(
        default=(), description="Watch only these namespaces; empty means all."
    )
    installation: str = Field(
        default=DEFAULT_INSTALLATION,
        description="This Janus's name in the cluster; default: derived from the task queue.",
    )
    pinned_only: bool = Field(
        default=False,
        description="Handle only Transactions labelled with this installation, "
        "none without the label (a second installation beside a default one).",
    )
    leader_election: bool = True
    election_namespace: str = DEFAULT_SYSTEM_NAMESPACE
    election_name: str = Field(
        default="", description="The election Lease; default: ``<installation>-bridge``."
    )
    snapshot_namespace: str = Field(
        default=DEFAULT_SYSTEM_NAMESPACE,
        description="Where the workers keep snapshots (their lease namespace): the "
        "bridge deletes a Transaction's there when it releases the finalizer.",
    )
    identity: str = Field(default_factory=default_identity)
    lease_seconds: float = Field(default=15.0, gt=0)
    renew_seconds: float = Field(default=5.0, gt=0)
    retry_seconds: float = Field(
        default=5.0, gt=0, description="Delay before retrying a failed Temporal call."
    )
    rollback_poll_seconds: float = Field(
        default=2.0, gt=0, description="How often a deleted Transaction's rollback is checked."
    )

    @field_validator("namespaces")
    @classmethod
    def _no_patterns(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        patterns = [n for n in value if _GLOB.search(n)]
        if patterns:
            raise ValueError(
                f"--namespace {patterns[0]!r} is a pattern; the bridge watches named "
                "namespaces only (it has no right to list namespaces): repeat -n for each "
                "(-n team-a -n team-b), or omit -n to watch all namespaces"
            )
        return value

    @field_validator("installation")
    @classmethod
    def _dns_label(cls, value: str) -> str:
        if len(value) > INSTALLATION_MAX or not _LABEL.match(value):
            raise ValueError(
                f"--installation {value!r} must be lower-case letters, digits and '-', "
                f"at most {INSTALLATION_MAX} characters (it names a Lease, a label "
                "value and a finalizer)"
            )
        return value

    @property
    def election_lease(self) -> str:
        """The election Lease's name: ``election_name``, else ``<installation>-bridge``."""
        return self.election_name or f"{self.installation}-bridge"

    @model_validator(mode="after")
    def _renew_within_lease(self) -> Self:
        if self.renew_seconds * 2 > self.lease_seconds:
            raise ValueError(
                f"the election lease ({self.lease_seconds}s) must last at least twice the "
                f"renew interval ({self.renew_seconds}s), or a slow renewal loses leadership"
            )
        return self


def split_namespaces(text: str | None) -> tuple[str, ...]:
    """``a,b c`` → ``("a", "b", "c")``: JANUS_NAMESPACES accepts commas or spaces."""
    return tuple(part for part in (text or "").replace(",", " ").split() if part)
