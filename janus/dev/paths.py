"""Where the dev control plane keeps its binaries and its state.

Binaries are expensive (a 10-25 minute Go build) and shared by every state
directory, so they live in a cache (``$JANUS_CACHE_DIR``, default
``~/.cache/janus``). A state directory (``$JANUS_STATE_DIR``, default
``~/.local/state/janus/dev``) holds one control plane: its certificates,
kubeconfigs, etcd data, Temporal database, logs and ``state.json``. Tests use
their own state directory so they never touch the one a developer works with.
"""

import os
from dataclasses import dataclass
from pathlib import Path

CACHE_ENV = "JANUS_CACHE_DIR"
STATE_ENV = "JANUS_STATE_DIR"


def cache_dir() -> Path:
    """The binary cache: ``$JANUS_CACHE_DIR`` or ``~/.cache/janus``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "janus")


def state_dir() -> Path:
    """The developer's control plane: ``$JANUS_STATE_DIR`` or ``~/.local/state/janus/dev``."""
    return Path(os.environ.get(STATE_ENV) or Path.home() / ".local" / "state" / "janus" / "dev")


TEST_STATE_ENV = "JANUS_TEST_STATE_DIR"


def testing_state_dir() -> Path:
    """The test sessions' control plane: ``$JANUS_TEST_STATE_DIR``, else ``$JANUS_STATE_DIR``,
    else ``~/.local/state/janus/test``.

    The first wins so that ``make test`` keeps clear of the demo's directory, which
    the Makefile exports as ``JANUS_STATE_DIR``.
    """
    default = Path.home() / ".local" / "state" / "janus" / "test"
    return Path(os.environ.get(TEST_STATE_ENV) or os.environ.get(STATE_ENV) or default)


@dataclass(frozen=True)
class StateLayout:
    """The files of one state directory, named in one place."""

    root: Path

    @property
    def state_file(self) -> Path:
        """Pids, ports and paths of the running servers; present only while up."""
        return self.root / "state.json"

    @property
    def ports_file(self) -> Path:
        """Ports of the last run, kept across ``down`` so exported variables stay valid."""
        return self.root / "ports.json"

    @property
    def lock_file(self) -> Path:
        """Serialises ``up`` and ``down`` on this directory."""
        return self.root / "lock"

    @property
    def logs(self) -> Path:
        """One ``<server>.log`` per server."""
        return self.root / "logs"

    @property
    def pki(self) -> Path:
        """The CA, the server and client certificates, the service-account key."""
        return self.root / "pki"

    @property
    def etcd_data(self) -> Path:
        """etcd's data directory: the cluster's objects survive a restart."""
        return self.root / "etcd"

    @property
    def temporal_db(self) -> Path:
        """The Temporal dev server's SQLite file: workflow history survives a restart."""
        return self.root / "temporal.db"

    @property
    def controller_manager_certs(self) -> Path:
        """Where kube-controller-manager writes its self-signed serving certificate."""
        return self.root / "controller-manager"

    @property
    def apiserver_certs(self) -> Path:
        """kube-apiserver's ``--cert-dir``, kept out of ``/var/run``."""
        return self.root / "apiserver"

    @property
    def audit_policy(self) -> Path:
        """kube-apiserver's audit policy (written by ``up``)."""
        return self.root / "audit-policy.yaml"

    @property
    def audit_log(self) -> Path:
        """What kube-apiserver recorded of every write to the kinds Janus changes."""
        return self.logs / "audit.log"

    def kubeconfig(self, user: str) -> Path:
        """``<user>.kubeconfig`` for ``admin``, ``tester`` or ``controller-manager``."""
        return self.root / f"{user}.kubeconfig"

    def log(self, server: str) -> Path:
        """The log file a server's stdout and stderr go to."""
        return self.logs / f"{server}.log"
