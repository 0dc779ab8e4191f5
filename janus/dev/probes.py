"""Is a server ready? One quick, non-blocking probe per server.

``up`` polls these until each server answers, and calls them once to decide
whether a recorded control plane is still healthy. A probe returns False on any
connection error: not listening yet and listening-but-failing look the same to a
caller who can only wait.
"""

import json
import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from janus.contract import search_attributes
from janus.dev.pki import Pki

TIMEOUT = 2.0
"""Per request: a probe must stay quick, the caller retries."""


@dataclass(frozen=True)
class Probes:
    """The probes of one control plane."""

    pki: Pki
    etcd_port: int
    apiserver_port: int
    controller_manager_port: int
    temporal_cli: str
    temporal_address: str
    temporal_namespace: str

    def etcd(self) -> bool:
        """etcd's ``/health`` says ``"health": "true"``."""
        body = _get(f"http://127.0.0.1:{self.etcd_port}/health", None)
        return body is not None and json.loads(body).get("health") == "true"

    def apiserver(self) -> bool:
        """``/readyz`` answers 200 to the admin: storage, RBAC bootstrap and hooks are done."""
        return _get(self._api("/readyz"), self._admin_tls()) is not None

    def controller_manager(self) -> bool:
        """``/healthz`` of the controller manager answers 200."""
        url = f"https://127.0.0.1:{self.controller_manager_port}/healthz"
        return _get(url, _unverified_tls()) is not None

    def controllers_working(self) -> bool:
        """The serviceaccount controller has created ``default/default``: controllers run."""
        path = "/api/v1/namespaces/default/serviceaccounts/default"
        return _get(self._api(path), self._admin_tls()) is not None

    def temporal(self) -> bool:
        """The frontend answers and Janus's search attributes are registered."""
        argv = [self.temporal_cli, "operator", "search-attribute", "list", "--output=json"]
        argv += [f"--address={self.temporal_address}", f"--namespace={self.temporal_namespace}"]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        except subprocess.TimeoutExpired:
            return False
        return done.returncode == 0 and all(k.name in done.stdout for k in search_attributes.ALL)

    def by_server(self) -> dict[str, Callable[[], bool]]:
        """Each server's name and its readiness probe."""
        return {
            "etcd": self.etcd,
            "kube-apiserver": self.apiserver,
            "kube-controller-manager": self.controller_manager,
            "temporal": self.temporal,
        }

    def _api(self, path: str) -> str:
        return f"https://127.0.0.1:{self.apiserver_port}{path}"

    def _admin_tls(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        context.load_cert_chain(self.pki.cert("admin"), self.pki.key("admin"))
        return context


def _get(url: str, context: ssl.SSLContext | None) -> bytes | None:
    """The body of a 2xx answer; None on any error or other status.

    No proxy: an ``https_proxy`` in the environment must not intercept loopback.
    """
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
    )
    try:
        with opener.open(url, timeout=TIMEOUT) as answer:
            body: bytes = answer.read()
            return body
    except (OSError, urllib.error.URLError, ValueError):
        return None


def _unverified_tls() -> ssl.SSLContext:
    """The controller manager serves a self-signed certificate; only its answer matters."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context
