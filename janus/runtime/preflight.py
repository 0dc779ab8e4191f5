"""Check at start what a process needs of Kubernetes and Temporal; say plainly what is wrong.

A bridge without the CRD would watch nothing, and one whose namespace lacks
the search attributes would fail every start. Every check here either returns
a working client or raises ``StartupError`` whose message names the address or
file, what failed, and what to check, so ``janus worker`` and ``janus bridge``
can print it and exit non-zero. The Temporal client itself, checked the same
way, is ``janus.clients.temporal``.
"""

from __future__ import annotations

import importlib.metadata
import logging
from datetime import timedelta
from typing import Any

from kubernetes import client as k8s
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from kubernetes.config import ConfigException
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.service import RPCError
from urllib3.exceptions import HTTPError

from janus.clients.kubernetes import kubernetes_client
from janus.clients.temporal import CONNECT_TIMEOUT
from janus.contract import search_attributes
from janus.contract.errors import StartupError
from janus.contract.models import API_GROUP, API_VERSION, PLURAL
from janus.contract.settings import ClusterSettings, TemporalSettings

logger = logging.getLogger(__name__)

#: The packages Janus installs under top-level names of their own, beside ``janus``
#: (docs/architecture.md, "Import names").
TOP_LEVEL_PACKAGES = ("workflows", "activities", "bridge")

KUBE_TIMEOUT = 10.0


# -- this installation -----------------------------------------------------------


def check_import_names() -> None:
    """Refuse to start beside another distribution that installs one of Janus's
    top-level packages: one of the two would have overwritten or shadowed the
    other's modules, and the process would run code that is not Janus's.

    Call it before anything imports ``workflows``, ``activities`` or ``bridge``.
    """
    providers = importlib.metadata.packages_distributions()
    ours = set(providers.get("janus", []))  # the distribution this package came from
    clashes = {
        name: others
        for name in TOP_LEVEL_PACKAGES
        if (others := sorted(set(providers.get(name, [])) - ours))
    }
    if clashes:
        listed = "; ".join(
            f"{name!r} also from {', '.join(others)}" for name, others in clashes.items()
        )
        raise StartupError(
            f"another distribution installs a package under a name Janus uses ({listed}): "
            "install Janus in a virtual environment or image of its own"
        )


# -- Temporal ------------------------------------------------------------------


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
