"""How kopf reaches the API server: exactly the cluster the bridge was told to use.

kopf's built-in login tries the in-cluster service account first and then
whatever kubeconfig the ``kubernetes`` library finds by itself, through the
library's *global* default configuration. A bridge started with
``--kubeconfig test.kubeconfig`` on a laptop whose ``~/.kube/config`` points at
production must not end up there. So the bridge registers its own login
handler: it builds the credentials from ``ClusterSettings`` (that kubeconfig, or
the in-cluster account and nothing else) and touches no global state.

kopf calls the handler again whenever the API server answers 401, which renews
a rotated service-account token.
"""

from __future__ import annotations

from typing import Any

import kopf
from kubernetes.client import Configuration

from janus.clients.kubernetes import kubernetes_client
from janus.contract.settings import ClusterSettings


def connection_info(cluster: ClusterSettings) -> kopf.ConnectionInfo:
    """kopf's credentials for the configured cluster, read afresh."""
    with kubernetes_client(cluster.kubeconfig) as api:
        return _from_configuration(api.configuration)


def _from_configuration(config: Configuration) -> kopf.ConnectionInfo:
    # For tokens, this calls the refresh hook (in-cluster: re-read the token file).
    header: str | None = config.get_api_key_with_prefix(
        "BearerToken"
    ) or config.get_api_key_with_prefix("authorization")
    scheme, token = _split_authorization(header)
    return kopf.ConnectionInfo(
        server=config.host,
        ca_path=config.ssl_ca_cert,
        insecure=not config.verify_ssl,
        username=config.username or None,
        password=config.password or None,
        scheme=scheme,
        token=token,
        certificate_path=config.cert_file,
        private_key_path=config.key_file,
        priority=100,
    )


def _split_authorization(header: str | None) -> tuple[str | None, str | None]:
    """``Bearer abc`` → ("Bearer", "abc"); a bare token has no scheme."""
    if not header:
        return None, None
    scheme, _, token = header.partition(" ")
    return (scheme, token) if token else (None, scheme)


def login_handler(cluster: ClusterSettings) -> Any:
    """A kopf ``on.login`` handler bound to ``cluster``."""

    def login(**_: Any) -> kopf.ConnectionInfo:
        return connection_info(cluster)

    return login
