"""What the Janus processes (``janus worker``, ``janus bridge``, ``janus run``) are told.

The worker and the bridge must agree on Temporal (address, namespace, task
queue) and on the cluster, or a Transaction's workflow is started where no
worker polls. So both read the same settings, from flags or from the
environment names the Temporal CLI and ``kubectl`` already use
(``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE``, ``TEMPORAL_API_KEY``,
``TEMPORAL_TLS_CLIENT_CERT_PATH``…, ``KUBECONFIG``), and every combination is
checked here, before anything connects, so a mistake is reported as the flag
to fix rather than as a stack trace from deep inside a client.

Each process is told one ``ProcessSettings``: a section per part it runs
(``temporal``, ``cluster``, ``probes``, ``worker``, ``bridge``). Each setting is
declared once, as a field here (``setting``): its flag, its environment
variable, its default and its help. The ``janus`` command's options are made
from these fields (``janus.cli.flags``), and the same fields say which
variable to read (``values_from_env``); the ``TEMPORAL_*`` variables and the
Temporal CLI's profile file are read by the SDK (``temporalio.envconfig``,
``janus.clients.temporal.temporal_values``), as every Temporal tool reads them.

These models hold *what was asked*; whether the servers answer is checked at
start by ``janus.runtime.preflight``.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Self, get_args
from urllib.parse import quote

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

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


def setting(
    default: Any = PydanticUndefined,
    *,
    flag: str | None = None,
    short: str | None = None,
    env: str | None = None,
    read_by_sdk: bool = False,
    shown_default: str | None = None,
    description: str | None = None,
    **field: Any,
) -> Any:
    """A settings field, with the flag and the environment variable that set it.

    Args:
        default: As ``pydantic.Field``.
        flag: The ``janus`` option (``--temporal-address``; ``--tls/--no-tls`` for a
            switch); None: set only by ``env``.
        short: A one-letter alias (``-n``).
        env: The environment variable read when the flag is not given.
        read_by_sdk: ``env`` is read by ``temporalio.envconfig`` (with the profile
            file), not by ``values_from_env``.
        shown_default: What ``--help`` says the default is, when it is derived.
        description: The option's help.
    """
    extra: dict[str, JsonValue] = {
        "flag": flag,
        "short": short,
        "env": env,
        "read_by_sdk": read_by_sdk,
    }
    if shown_default is not None:
        extra["shown_default"] = shown_default
    return Field(default, description=description, json_schema_extra=extra, **field)


def sdk_setting(flag: str, env: str, description: str | None = None, **field: Any) -> Any:
    """A Temporal setting whose variable the SDK reads (``temporalio.envconfig``: with the
    profile file, as the Temporal CLI does); default None: the profile's, else the SDK's."""
    return setting(None, flag=flag, env=env, read_by_sdk=True, description=description, **field)


def declared(info: FieldInfo) -> dict[str, Any]:
    """What ``setting`` recorded for a field ({} for a field no flag or variable sets)."""
    extra = info.json_schema_extra
    return dict(extra) if isinstance(extra, dict) and "env" in extra else {}


def values_from_env(
    model: type[BaseModel], given: Mapping[str, Any], env: Mapping[str, str]
) -> dict[str, Any]:
    """``given`` (the flags), plus each variable ``model``'s fields name that is set (not
    empty, as click reads variables) and not read by the SDK; pydantic then parses the
    text (``8080``, ``true``, a path)."""
    values = dict(given)
    for name, info in model.model_fields.items():
        found = declared(info)
        variable = found.get("env")
        if name in values or not variable or found["read_by_sdk"] or not env.get(variable):
            continue
        values[name] = env[variable]
    return values


class TemporalSettings(_Settings):
    """Where the workflows run, and how to authenticate there (self-hosted or Cloud)."""

    address: str = setting(
        "localhost:7233",
        flag="--temporal-address",
        env="TEMPORAL_ADDRESS",
        read_by_sdk=True,
        description="Temporal frontend, host:port.",
    )
    namespace: str = setting(
        "default", flag="--temporal-namespace", env="TEMPORAL_NAMESPACE", read_by_sdk=True
    )
    task_queue: str = setting(
        DEFAULT_TASK_QUEUE,
        flag="--task-queue",
        env="JANUS_TASK_QUEUE",
        description="Where workflows run; worker and bridge must agree.",
    )
    tls: bool | None = sdk_setting(
        "--tls/--no-tls",
        "TEMPORAL_TLS",
        "Default: TLS when a client certificate or an API key is given.",
    )
    tls_cert: Path | None = sdk_setting(
        "--tls-cert", "TEMPORAL_TLS_CLIENT_CERT_PATH", "Client certificate (mTLS)."
    )
    tls_key: Path | None = sdk_setting(
        "--tls-key", "TEMPORAL_TLS_CLIENT_KEY_PATH", "Client private key (mTLS)."
    )
    tls_ca: Path | None = sdk_setting(
        "--tls-ca", "TEMPORAL_TLS_SERVER_CA_CERT_PATH", "CA of the server's certificate."
    )
    tls_server_name: str | None = sdk_setting("--tls-server-name", "TEMPORAL_TLS_SERVER_NAME")
    api_key: SecretStr | None = sdk_setting(
        "--api-key", "TEMPORAL_API_KEY", "Temporal Cloud API key (implies TLS)."
    )
    profile: str | None = sdk_setting(
        "--temporal-profile",
        "TEMPORAL_PROFILE",
        shown_default="default",
        description="The profile of the Temporal client configuration file "
        "(TEMPORAL_CONFIG_FILE, else ~/.config/temporalio/temporal.toml) the settings "
        "above start from; flags and variables override it.",
    )
    ui_url: str | None = setting(
        None,
        flag="--temporal-ui",
        env="JANUS_TEMPORAL_UI",
        description="Temporal web UI base URL; statuses link to each workflow there.",
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

    kubeconfig: str | None = setting(
        None,
        flag="--kubeconfig",
        env="KUBECONFIG",
        description="Default: the pod's service account (in a cluster).",
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

    host: str = setting("0.0.0.0", flag="--metrics-host", env="JANUS_METRICS_HOST")
    port: int = setting(
        8080,
        flag="--metrics-port",
        env="JANUS_METRICS_PORT",
        ge=0,
        le=65535,
        description="/healthz, /readyz and /metrics; 0 turns them off.",
    )


def default_identity() -> str:
    """Who this replica is in the leader-election Lease: the pod name in a cluster."""
    return os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"


def installation_for(task_queue: str) -> str:
    """The default installation name of a task queue: ``janus`` → ``janus``,
    ``Team_A`` → ``team-a`` (a DNS label, as the names built from it need)."""
    name = re.sub(r"[^a-z0-9]+", "-", task_queue.lower()).strip("-")[:INSTALLATION_MAX]
    return name.rstrip("-") or DEFAULT_INSTALLATION


class WorkerSettings(_Settings):
    """What the activities need to know about their cluster.

    (The worker's test seams, ``JANUS_FAULTS`` and the like, are no part of it:
    ``activities.seams`` reads them.)
    """

    lease_namespace: str = setting(
        DEFAULT_SYSTEM_NAMESPACE,
        flag="--lease-namespace",
        env="JANUS_LEASE_NAMESPACE",
        description="Where the targets' Leases live; every worker must agree.",
    )
    require_service_account: bool = setting(
        False,
        env="JANUS_REQUIRE_SERVICE_ACCOUNT",
        description="Refuse Transactions without spec.serviceAccountName, so the worker "
        "never changes a target with its own rights: with the minimal RBAC those still "
        "cover updating ConfigMaps and Secrets (it keeps snapshots in them).",
    )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WorkerSettings:
        """As the environment sets them (``janus worker`` without flags)."""
        return cls.model_validate(values_from_env(cls, {}, os.environ if env is None else env))


def env_flag(variable: str) -> bool:
    """Whether an environment variable turns a test seam on (1, true or yes)."""
    return os.environ.get(variable, "").lower() in ("1", "true", "yes")


class BridgeSettings(_Settings):
    """What the bridge watches, and how replicas decide which one of them acts.

    An *installation* is one Janus (its bridges and workers on one task queue).
    Several can share a cluster: each has its own election Lease
    (``<installation>-bridge``) and handles the Transactions labelled
    ``backup.janus.io/installation=<installation>``, plus the unlabelled ones
    unless ``pinned_only`` (see ``bridge.installations``).
    """

    namespaces: tuple[str, ...] = setting(
        (),
        flag="--namespace",
        short="-n",
        env="JANUS_NAMESPACES",
        description="Watch only this namespace, by name (repeat; default: all).",
    )
    installation: str = setting(
        DEFAULT_INSTALLATION,
        flag="--installation",
        env="JANUS_INSTALLATION",
        shown_default="from the task queue",
        description="This Janus's name in the cluster (election Lease, Transaction label "
        "backup.janus.io/installation).",
    )
    pinned_only: bool = setting(
        False,
        flag="--pinned-only",
        env="JANUS_PINNED_ONLY",
        description="Handle only Transactions labelled with this installation.",
    )
    leader_election: bool = setting(
        True,
        flag="--leader-election/--no-leader-election",
        env="JANUS_LEADER_ELECTION",
        description="Let one of several replicas act (a Lease).",
    )
    election_namespace: str = setting(
        DEFAULT_SYSTEM_NAMESPACE, flag="--election-namespace", env="JANUS_SYSTEM_NAMESPACE"
    )
    election_name: str = setting(
        "",
        flag="--election-name",
        env="JANUS_ELECTION_NAME",
        shown_default="<installation>-bridge",
        description="The leader-election Lease.",
    )
    snapshot_namespace: str = setting(
        DEFAULT_SYSTEM_NAMESPACE,
        env="JANUS_LEASE_NAMESPACE",
        description="Where the workers keep snapshots (their lease namespace): the "
        "bridge deletes a Transaction's there when it releases the finalizer.",
    )
    identity: str = Field(default_factory=default_identity)
    lease_seconds: float = setting(
        15.0, flag="--election-lease-seconds", env="JANUS_ELECTION_LEASE_SECONDS", gt=0
    )
    renew_seconds: float = setting(
        5.0, flag="--election-renew-seconds", env="JANUS_ELECTION_RENEW_SECONDS", gt=0
    )
    retry_seconds: float = Field(
        default=5.0, gt=0, description="Delay before retrying a failed Temporal call."
    )
    rollback_poll_seconds: float = Field(
        default=2.0, gt=0, description="How often a deleted Transaction's rollback is checked."
    )

    @field_validator("namespaces", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        """``-n a,b -n c`` and JANUS_NAMESPACES="a b": names split on commas and spaces."""
        if isinstance(value, str):
            return split_namespaces(value)
        if isinstance(value, list | tuple):
            return tuple(n for text in value for n in split_namespaces(str(text)))
        return value

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


LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class ProcessSettings(_Settings):
    """Everything one ``janus`` process is told: a section per part it runs.

    ``worker`` and ``bridge`` are None in a process that does not run them; the
    bridge's installation defaults to the one named after the task queue, and in
    ``janus run`` its snapshot namespace is the worker's lease namespace.
    """

    temporal: TemporalSettings = Field(default_factory=TemporalSettings)
    cluster: ClusterSettings
    probes: ProbeSettings = Field(default_factory=ProbeSettings)
    worker: WorkerSettings | None = None
    bridge: BridgeSettings | None = None
    log_level: LogLevel = setting("INFO", flag="--log-level", env="JANUS_LOG_LEVEL")

    @model_validator(mode="before")
    @classmethod
    def _bridge_follows_the_others(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("bridge"), dict):
            return data
        temporal, worker = data.get("temporal"), data.get("worker")
        bridge = dict(data["bridge"])
        if not bridge.get("installation"):
            queue = temporal.get("task_queue") if isinstance(temporal, dict) else None
            bridge["installation"] = installation_for(queue or DEFAULT_TASK_QUEUE)
        if isinstance(worker, dict) and worker.get("lease_namespace"):
            bridge["snapshot_namespace"] = worker["lease_namespace"]
        return {**data, "bridge": bridge}

    @classmethod
    def sections(cls) -> dict[str, type[BaseModel]]:
        """The sections by name (``temporal``, ``worker``…), and "" for this model's own
        fields (``log_level``)."""
        found: dict[str, type[BaseModel]] = {"": cls}
        for name, info in cls.model_fields.items():
            for candidate in (info.annotation, *get_args(info.annotation)):
                if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                    found[name] = candidate
        return found
