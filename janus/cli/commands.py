"""``janus worker | bridge | run | stop | install | status``: the commands an operator runs.

Each flag also reads an environment variable (shown in ``--help``), using the
names the Temporal CLI and kubectl already use where there are such names, so
a container is configured by its environment and a laptop by ``janus dev env``.
Settings are validated as a whole before anything connects (``janus.contract.settings``),
then the servers are checked (``janus.runtime.preflight``); either failure prints one
message naming what to fix and exits 2 (bad settings) or 1 (unreachable).

Heavy imports (kopf, the Temporal worker) happen inside the commands, so
``janus crd`` and ``janus dev`` stay quick.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, ParamSpec, TypeVar, cast

import click
from pydantic import ValidationError

from janus.contract.config import WorkerSettings
from janus.contract.settings import (
    DEFAULT_SYSTEM_NAMESPACE,
    DEFAULT_TASK_QUEUE,
    BridgeSettings,
    ClusterSettings,
    ProbeSettings,
    TemporalSettings,
    installation_for,
    split_namespaces,
)

P = ParamSpec("P")
R = TypeVar("R")

_FLAGS = {
    "address": "--temporal-address",
    "namespace": "--temporal-namespace",
    "tls_cert": "--tls-cert",
    "tls_key": "--tls-key",
    "tls_ca": "--tls-ca",
    "kubeconfig": "--kubeconfig",
    "namespaces": "--namespace",
    "lease_seconds": "--election-lease-seconds",
    "renew_seconds": "--election-renew-seconds",
    "port": "--metrics-port",
}


def _options(*decorators: Callable[[Any], Any]) -> Callable[[Callable[P, R]], Callable[P, R]]:
    def apply(command: Callable[P, R]) -> Callable[P, R]:
        for decorator in reversed(decorators):
            command = decorator(command)
        return command

    return apply


temporal_options = _options(
    click.option("--temporal-address", envvar="TEMPORAL_ADDRESS", default="localhost:7233",
                 show_default=True, show_envvar=True, help="Temporal frontend, host:port."),
    click.option("--temporal-namespace", envvar="TEMPORAL_NAMESPACE", default="default",
                 show_default=True, show_envvar=True),
    click.option("--task-queue", envvar="JANUS_TASK_QUEUE", default=DEFAULT_TASK_QUEUE,
                 show_default=True, show_envvar=True,
                 help="Where workflows run; worker and bridge must agree."),
    click.option("--tls/--no-tls", "tls", envvar="TEMPORAL_TLS", default=None, show_envvar=True,
                 help="Default: TLS when a client certificate or an API key is given."),
    click.option("--tls-cert", envvar="TEMPORAL_TLS_CLIENT_CERT_PATH", show_envvar=True,
                 type=click.Path(path_type=Path), help="Client certificate (mTLS)."),
    click.option("--tls-key", envvar="TEMPORAL_TLS_CLIENT_KEY_PATH", show_envvar=True,
                 type=click.Path(path_type=Path), help="Client private key (mTLS)."),
    click.option("--tls-ca", envvar="TEMPORAL_TLS_SERVER_CA_CERT_PATH", show_envvar=True,
                 type=click.Path(path_type=Path), help="CA of the server's certificate."),
    click.option("--tls-server-name", envvar="TEMPORAL_TLS_SERVER_NAME", show_envvar=True),
    click.option("--api-key", envvar="TEMPORAL_API_KEY", show_envvar=True,
                 help="Temporal Cloud API key (implies TLS)."),
    click.option("--temporal-ui", envvar="JANUS_TEMPORAL_UI", show_envvar=True,
                 help="Temporal web UI base URL; statuses link to each workflow there."),
)  # fmt: skip

cluster_options = _options(
    click.option("--kubeconfig", envvar="KUBECONFIG", show_envvar=True,
                 help="Default: the pod's service account (in a cluster)."),
)  # fmt: skip

probe_options = _options(
    click.option("--metrics-port", envvar="JANUS_METRICS_PORT", default=8080, type=int,
                 show_default=True, show_envvar=True,
                 help="/healthz, /readyz and /metrics; 0 turns them off."),
    click.option("--metrics-host", envvar="JANUS_METRICS_HOST", default="0.0.0.0",
                 show_default=True, show_envvar=True),
    click.option("--log-level", envvar="JANUS_LOG_LEVEL", default="INFO", show_default=True,
                 show_envvar=True, type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"])),
)  # fmt: skip

bridge_options = _options(
    click.option("-n", "--namespace", "namespaces", envvar="JANUS_NAMESPACES", multiple=True,
                 show_envvar=True,
                 help="Watch only this namespace, by name (repeat; default: all)."),
    click.option("--installation", envvar="JANUS_INSTALLATION", show_envvar=True,
                 help="This Janus's name in the cluster (election Lease, Transaction label "
                      "backup.janus.io/installation); default: from the task queue."),
    click.option("--pinned-only", envvar="JANUS_PINNED_ONLY", is_flag=True, show_envvar=True,
                 help="Handle only Transactions labelled with this installation."),
    click.option("--leader-election/--no-leader-election", envvar="JANUS_LEADER_ELECTION",
                 default=True, show_default=True, show_envvar=True,
                 help="Let one of several replicas act (a Lease)."),
    click.option("--election-namespace", envvar="JANUS_SYSTEM_NAMESPACE",
                 default=DEFAULT_SYSTEM_NAMESPACE, show_default=True, show_envvar=True),
    click.option("--election-name", envvar="JANUS_ELECTION_NAME", default="",
                 show_envvar=True,
                 help="The leader-election Lease [default: <installation>-bridge]."),
    click.option("--election-lease-seconds", envvar="JANUS_ELECTION_LEASE_SECONDS",
                 default=15.0, show_default=True, show_envvar=True),
    click.option("--election-renew-seconds", envvar="JANUS_ELECTION_RENEW_SECONDS",
                 default=5.0, show_default=True, show_envvar=True),
)  # fmt: skip

worker_options = _options(
    click.option("--lease-namespace", envvar="JANUS_LEASE_NAMESPACE",
                 default=DEFAULT_SYSTEM_NAMESPACE, show_default=True, show_envvar=True,
                 help="Where the targets' Leases live; every worker must agree."),
)  # fmt: skip


class BadSettings(Exception):
    """Every problem found in the flags and environment, one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def _problems(err: ValidationError) -> list[str]:
    """Pydantic's errors as ``--flag: what is wrong``."""
    found = []
    for problem in err.errors():
        field = str(problem["loc"][0]) if problem["loc"] else ""
        where = _FLAGS.get(field, field.replace("_", "-"))
        message = problem["msg"].removeprefix("Value error, ")
        found.append(f"{where}: {message}" if where else message)
    return found


def _settings_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Bad settings: one line per problem, named by its flag; exit 2."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except ValidationError as err:
            problems = _problems(err)
        except BadSettings as err:
            problems = err.problems
        for problem in problems:
            click.echo(f"janus: {problem}", err=True)
        sys.exit(2)

    return wrapper


def _temporal(o: dict[str, Any]) -> TemporalSettings:
    return TemporalSettings(
        address=o["temporal_address"],
        namespace=o["temporal_namespace"],
        task_queue=o["task_queue"],
        tls=o["tls"],
        tls_cert=o["tls_cert"],
        tls_key=o["tls_key"],
        tls_ca=o["tls_ca"],
        tls_server_name=o["tls_server_name"],
        api_key=o["api_key"],
        ui_url=o["temporal_ui"],
    )


def _bridge(o: dict[str, Any]) -> BridgeSettings:
    return BridgeSettings(
        namespaces=tuple(n for text in o["namespaces"] for n in split_namespaces(text)),
        installation=o["installation"] or installation_for(o["task_queue"]),
        pinned_only=o["pinned_only"],
        leader_election=o["leader_election"],
        election_namespace=o["election_namespace"],
        election_name=o["election_name"],
        snapshot_namespace=o.get("lease_namespace")
        or os.environ.get("JANUS_LEASE_NAMESPACE", DEFAULT_SYSTEM_NAMESPACE),
        lease_seconds=o["election_lease_seconds"],
        renew_seconds=o["election_renew_seconds"],
    )


def _worker(o: dict[str, Any]) -> WorkerSettings:
    return WorkerSettings.from_env().model_copy(update={"lease_namespace": o["lease_namespace"]})


def _probes(o: dict[str, Any]) -> ProbeSettings:
    return ProbeSettings(host=o["metrics_host"], port=o["metrics_port"])


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    for noisy in ("kubernetes", "urllib3", "aiohttp.access", "temporalio.activity"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, getattr(logging, level)))


def _run(main: Coroutine[Any, Any, None]) -> None:
    """Run a process's main coroutine; an expected fatal condition is one message, exit 1.

    The exit is ``os._exit`` once output is flushed: the Temporal SDK's native
    threads may still call into Python while the interpreter finalizes, which
    aborts the process (SIGABRT) and would turn a clean exit into a crash.
    """
    from bridge.leadership import LeadershipLost
    from janus.contract.errors import StartupError

    code = 0
    try:
        asyncio.run(main)
    except (StartupError, LeadershipLost) as err:
        click.echo(f"janus: {err}", err=True)
        code = 1
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


async def _serve(o: dict[str, Any], *, worker: bool, bridge: bool) -> None:
    from janus.runtime import processes

    temporal, cluster = _temporal(o), ClusterSettings(kubeconfig=o["kubeconfig"])
    components: list[processes.Component] = []
    if worker:
        components.append(await processes.worker_component(temporal, cluster, _worker(o)))
    if bridge:
        components.append(await processes.bridge_component(temporal, cluster, _bridge(o)))
    await processes.serve(components, _probes(o))


@click.command()
@temporal_options
@cluster_options
@worker_options
@probe_options
@_settings_errors
def worker(**o: Any) -> None:
    """Run the Temporal worker: the saga workflow and the activities that touch the cluster."""
    _validate(o, bridge=False)
    _setup_logging(o["log_level"])
    _run(_serve(o, worker=True, bridge=False))


@click.command()
@temporal_options
@cluster_options
@bridge_options
@probe_options
@_settings_errors
def bridge(**o: Any) -> None:
    """Run the bridge: start a workflow per Transaction, cancel it when one is deleted."""
    _validate(o, worker=False)
    _setup_logging(o["log_level"])
    _run(_serve(o, worker=False, bridge=True))


@click.command()
@temporal_options
@cluster_options
@worker_options
@bridge_options
@probe_options
@click.option("--detach", is_flag=True, help="Run in the background (needs --pid-file).")
@click.option("--pid-file", type=click.Path(path_type=Path), help="Where --detach records the pid.")
@click.option("--log-file", type=click.Path(path_type=Path), help="Output of --detach.")
@_settings_errors
def run(detach: bool, pid_file: Path | None, log_file: Path | None, **o: Any) -> None:
    """Run the worker and the bridge in one process (a laptop, a demo)."""
    _validate(o)
    if detach:
        _detach(o, pid_file, log_file)
        return
    _setup_logging(o["log_level"])
    _run(_serve(o, worker=True, bridge=True))


def _validate(o: dict[str, Any], *, worker: bool = True, bridge: bool = True) -> None:
    """Build every settings model once, so bad flags fail before anything starts, together."""
    builders: list[Callable[[dict[str, Any]], object]] = [
        _temporal,
        lambda o: ClusterSettings(kubeconfig=o["kubeconfig"]),
        _probes,
        *([_bridge] if bridge else []),
        *([_worker] if worker else []),
    ]
    problems: list[str] = []
    for build in builders:
        try:
            build(o)
        except ValidationError as err:
            problems += _problems(err)
        except ValueError as err:  # e.g. a malformed JANUS_FAULTS
            problems.append(str(err))
    if problems:
        raise BadSettings(problems)


def _detach(o: dict[str, Any], pid_file: Path | None, log_file: Path | None) -> None:
    from janus.runtime import daemon

    if pid_file is None:
        raise click.UsageError("--detach needs --pid-file")
    pid_file = pid_file.resolve()
    log_file = (log_file or pid_file.with_suffix(".log")).resolve()
    argv = [a for a in sys.argv if a != "--detach"]
    if "--pid-file" not in argv:
        argv += ["--pid-file", str(pid_file)]
    port = o["metrics_port"]
    ready = f"http://127.0.0.1:{port}/readyz" if port else None
    try:
        pid = daemon.detach(argv, pid_file=pid_file, log_file=log_file, ready_url=ready)
    except daemon.DaemonError as err:
        click.echo(f"janus run --detach: {err}", err=True)
        sys.exit(1)
    click.echo(f"janus run: running as pid {pid} (log {log_file}, pid file {pid_file})")


@click.command()
@click.option("--pid-file", type=click.Path(path_type=Path), required=True)
def stop(pid_file: Path) -> None:
    """Stop a `janus run --detach` by its pid file."""
    from janus.runtime import daemon

    pid = daemon.stop(pid_file.resolve())
    click.echo(f"janus: stopped pid {pid}" if pid else "janus: nothing was running")


@click.command()
@click.option("--apply", "do_apply", is_flag=True, help="Apply instead of printing.")
@click.option("--dry-run", type=click.Choice(["server", "client"]), help="With --apply.")
@click.option("--image", help="The Janus image to deploy instead of janus:latest.")
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path, file_okay=False),
    help="The kustomize base (default: deploy/ of this checkout).",
)
@cluster_options
def install(do_apply: bool, dry_run: str | None, image: str | None,
            directory: Path | None, kubeconfig: str | None) -> None:  # fmt: skip
    """Print the kustomize base (CRD, RBAC, Deployments), or apply it with kubectl."""
    from janus.cli import install as installer

    try:
        manifests = installer.render(directory or installer.DEPLOY_DIR, image=image)
        if not do_apply:
            click.echo(manifests, nl=False)
            return
        click.echo(installer.apply(manifests, kubeconfig=kubeconfig, dry_run=dry_run), nl=False)
    except installer.InstallError as err:
        click.echo(f"janus install: {err}", err=True)
        sys.exit(1)


@click.command()
@click.argument("transaction", metavar="NAMESPACE/NAME")
@cluster_options
@_settings_errors
def status(transaction: str, kubeconfig: str | None) -> None:
    """Say what happened to a Transaction: phase, each change, errors, the Temporal UI link."""
    from janus.cli import report
    from janus.contract.errors import StartupError
    from janus.contract.models import TransactionStatus
    from janus.runtime import preflight

    namespace, _, name = transaction.rpartition("/")
    if not namespace or not name:
        raise click.BadParameter("give NAMESPACE/NAME, e.g. shop/deploy-v2")
    try:
        api = preflight.kubernetes_api(ClusterSettings(kubeconfig=kubeconfig))
    except StartupError as err:
        click.echo(f"janus status: {err}", err=True)
        sys.exit(1)
    obj = _read_transaction(api, namespace, name)
    raw = obj.get("status")
    found = TransactionStatus.model_validate(raw) if raw and raw.get("phase") else None
    click.echo(report.render(namespace, name, found), nl=False)


@click.command()
@click.argument("transaction", metavar="NAMESPACE/NAME")
@temporal_options
@cluster_options
@_settings_errors
def retry(transaction: str, kubeconfig: str | None, **o: Any) -> None:
    """Run a Failed Transaction's rollback again, once the cause is fixed."""
    from janus.cli.retry import RetryRefused, retry_rollback
    from janus.clients.temporal import temporal_client
    from janus.contract.models import TransactionRef
    from janus.runtime import preflight

    namespace, _, name = transaction.rpartition("/")
    if not namespace or not name:
        raise click.BadParameter("give NAMESPACE/NAME, e.g. shop/deploy-v2")
    api = preflight.kubernetes_api(ClusterSettings(kubeconfig=kubeconfig))
    obj = _read_transaction(api, namespace, name)
    phase = (obj.get("status") or {}).get("phase")
    if phase != "Failed":
        click.echo(
            f"janus retry: {transaction} is {phase or 'not started'}; only a Failed "
            "transaction's rollback can be retried",
            err=True,
        )
        sys.exit(1)
    meta = obj["metadata"]
    workflow_id = TransactionRef(namespace=namespace, name=name, uid=meta["uid"]).workflow_id()

    async def reset() -> str:
        client = await temporal_client(_temporal(o))
        return await retry_rollback(client, workflow_id, reason=f"janus retry {transaction}")

    try:
        run_id = asyncio.run(reset())
    except RetryRefused as err:
        click.echo(f"janus retry: {err}", err=True)
        sys.exit(1)
    click.echo(
        f"Retrying the rollback of {transaction}: workflow {workflow_id}, new run "
        f"{run_id}. Follow it with: janus status {transaction}"
    )


def _read_transaction(api: Any, namespace: str, name: str) -> dict[str, Any]:
    from kubernetes import client as k8s
    from kubernetes.client.exceptions import ApiException

    from janus.contract.models import API_GROUP, API_VERSION, PLURAL

    try:
        found = k8s.CustomObjectsApi(api).get_namespaced_custom_object(
            API_GROUP, API_VERSION, namespace, PLURAL, name
        )
    except ApiException as err:
        what = "not found" if err.status == 404 else f"HTTP {err.status} {err.reason}"
        click.echo(f"janus status: transaction {namespace}/{name}: {what}", err=True)
        sys.exit(1)
    return cast(dict[str, Any], found)


COMMANDS = (worker, bridge, run, stop, install, status, retry)
