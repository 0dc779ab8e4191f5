"""Connect to Temporal and Kubernetes at start, and say plainly what is wrong.

A worker pointed at the wrong Temporal address would otherwise retry quietly
forever, and a bridge without the CRD would watch nothing. Every check here
either returns a working client or raises ``StartupError`` whose message names
the address or file, what failed, and what to check, so ``janus worker`` and
``janus bridge`` can print it and exit non-zero.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from kubernetes import client as k8s
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from kubernetes.config import ConfigException
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError, RPCStatusCode, TLSConfig
from urllib3.exceptions import HTTPError

from janus.clients.kubernetes import kubernetes_client
from janus.contract import search_attributes
from janus.contract.models import API_GROUP, API_VERSION, PLURAL
from janus.contract.settings import ClusterSettings, TemporalSettings

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT = 15.0
KUBE_TIMEOUT = 10.0


class StartupError(Exception):
    """A process cannot start: the message says what to fix."""


# -- Temporal ------------------------------------------------------------------


async def temporal_client(settings: TemporalSettings, *, identity: str | None = None) -> Client:
    """A connected client (pydantic data converter), its namespace checked to exist."""
    try:
        client = await asyncio.wait_for(
            Client.connect(
                settings.address,
                namespace=settings.namespace,
                api_key=settings.api_key.get_secret_value() if settings.api_key else None,
                tls=_tls(settings),
                data_converter=pydantic_data_converter,
                connect_timeout=timedelta(seconds=CONNECT_TIMEOUT),
                identity=identity,
            ),
            timeout=CONNECT_TIMEOUT,
        )
    except (RuntimeError, TimeoutError, RPCError, OSError) as err:
        raise StartupError(_unreachable(settings, err)) from err
    await _check_namespace(client, settings)
    return client


def _tls(settings: TemporalSettings) -> bool | TLSConfig:
    if not settings.uses_tls:
        return False
    if not (settings.tls_cert or settings.tls_ca or settings.tls_server_name):
        return True
    return TLSConfig(
        client_cert=settings.tls_cert.read_bytes() if settings.tls_cert else None,
        client_private_key=settings.tls_key.read_bytes() if settings.tls_key else None,
        server_root_ca_cert=settings.tls_ca.read_bytes() if settings.tls_ca else None,
        domain=settings.tls_server_name,
    )


def _unreachable(settings: TemporalSettings, err: BaseException) -> str:
    reason = str(err) or type(err).__name__
    tls = "with TLS" if settings.uses_tls else "without TLS"
    return (
        f"cannot reach Temporal at {settings.address} ({tls}): {reason}\n"
        "check: the address (--temporal-address or TEMPORAL_ADDRESS; the frontend's gRPC "
        "port, usually 7233), that the server runs and this host can reach it, and for "
        "Temporal Cloud an API key (TEMPORAL_API_KEY) or a client certificate and key "
        "(TEMPORAL_TLS_CLIENT_CERT_PATH, TEMPORAL_TLS_CLIENT_KEY_PATH)"
    )


async def _check_namespace(client: Client, settings: TemporalSettings) -> None:
    try:
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=settings.namespace),
            timeout=timedelta(seconds=CONNECT_TIMEOUT),
        )
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise StartupError(
                f"Temporal at {settings.address} has no namespace {settings.namespace!r}: "
                "create it (temporal operator namespace create) or fix --temporal-namespace "
                "(TEMPORAL_NAMESPACE)"
            ) from err
        if err.status in (RPCStatusCode.UNAUTHENTICATED, RPCStatusCode.PERMISSION_DENIED):
            raise StartupError(
                f"Temporal at {settings.address} refused access to namespace "
                f"{settings.namespace!r}: {err.message}; check the API key or the client "
                "certificate, and that it is allowed in this namespace"
            ) from err
        raise StartupError(_unreachable(settings, err)) from err


async def check_search_attributes(client: Client, settings: TemporalSettings) -> None:
    """The bridge sets TransactionNamespace/TransactionName at start: they must exist."""
    try:
        response = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=settings.namespace),
            timeout=timedelta(seconds=CONNECT_TIMEOUT),
        )
    except RPCError as err:
        # Temporal Cloud and restricted keys may not expose the operator API.
        logger.warning("could not list search attributes (%s); not checking them", err.message)
        return
    missing = [k.name for k in search_attributes.ALL if k.name not in response.custom_attributes]
    if missing:
        creates = " && ".join(
            f"temporal operator search-attribute create --namespace {settings.namespace} "
            f"--name {name} --type Keyword"
            for name in missing
        )
        raise StartupError(
            f"Temporal namespace {settings.namespace!r} lacks the search attributes "
            f"{', '.join(missing)} that Janus workflows set; register them: {creates} "
            "(in Temporal Cloud: tcld namespace search-attributes add)"
        )


def workflow_url(settings: TemporalSettings, workflow_id: str) -> str | None:
    """The workflow's page in the Temporal UI, if a UI URL is configured."""
    if not settings.ui_url:
        return None
    return (
        f"{settings.ui_url}/namespaces/{quote(settings.namespace, safe='')}"
        f"/workflows/{quote(workflow_id, safe='')}"
    )


# -- Kubernetes ----------------------------------------------------------------


def kubernetes_api(settings: ClusterSettings) -> ApiClient:
    """An API client for the configured cluster, checked to answer."""
    try:
        api = kubernetes_client(settings.kubeconfig)
    except (ConfigException, OSError, ValueError) as err:
        raise StartupError(f"cannot load the {settings.where}: {err}") from err
    try:
        k8s.VersionApi(api).get_code(_request_timeout=KUBE_TIMEOUT)
    except (ApiException, HTTPError, OSError) as err:
        host = api.configuration.host
        raise StartupError(
            f"cannot reach the Kubernetes API server at {host} ({settings.where}): "
            f"{_kube_reason(err)}; check that it runs and that the kubeconfig's "
            "server, certificates and credentials are current"
        ) from err
    return api


def check_transactions_served(api: ApiClient) -> None:
    """The bridge watches Transactions: the CRD must be installed and served."""
    group_version = f"{API_GROUP}/{API_VERSION}"
    try:
        found: Any = k8s.CustomObjectsApi(api).get_api_resources(
            API_GROUP, API_VERSION, _request_timeout=KUBE_TIMEOUT
        )
    except ApiException as err:
        if err.status != 404:
            raise StartupError(f"cannot read {group_version}: {_kube_reason(err)}") from err
        found = None
    names = {r.name for r in found.resources} if found is not None else set()
    if PLURAL not in names:
        raise StartupError(
            f"the API server at {api.configuration.host} does not serve {PLURAL}.{API_GROUP} "
            f"({group_version}): install the CRD with `janus install --apply` or "
            "`kubectl apply -f deploy/crd.yaml`"
        )


def _kube_reason(err: BaseException) -> str:
    if isinstance(err, ApiException):
        return f"HTTP {err.status} {err.reason}"
    return str(err) or type(err).__name__
