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

from janus.cli import flags
from janus.contract.settings import (
    ClusterSettings,
    ProcessSettings,
    values_from_env,
)

P = ParamSpec("P")
R = TypeVar("R")

#: The options of each part of a process (``janus.cli.flags``: made from the settings).
temporal_options = flags.options("temporal")
cluster_options = flags.options("cluster")
probe_options = flags.options("probes", "")
bridge_options = flags.options("bridge")
worker_options = flags.options("worker")


#: The settings sections of ``janus worker`` and ``janus bridge`` (``janus run``: both).
WORKER = ("temporal", "cluster", "probes", "worker")
BRIDGE = ("temporal", "cluster", "probes", "bridge")


class BadSettings(Exception):
    """Every problem found in the flags and environment, one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def _problems(err: ValidationError) -> list[str]:
    """Pydantic's errors as ``--flag: what is wrong``."""
    found = []
    for problem in err.errors():
        where = flags.flag_of(problem["loc"])
        message = problem["msg"].removeprefix("Value error, ")
        found.append(f"{where}: {message}" if where else message)
    return found


def _settings(o: dict[str, Any], *sections: str) -> ProcessSettings:
    """The settings of this process, checked as a whole before anything starts."""
    try:
        return flags.load(o, *sections)
    except ValidationError as err:
        raise BadSettings(_problems(err)) from err
    except ValueError as err:  # the Temporal profile file, a malformed JANUS_FAULTS
        raise BadSettings([str(err)]) from err


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


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    for noisy in ("kubernetes", "urllib3", "aiohttp.access", "temporalio.activity"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, getattr(logging, level)))


def _run(main: Coroutine[Any, Any, None], expected: tuple[type[Exception], ...]) -> None:
    """Run a process's main coroutine; an expected fatal condition is one message, exit 1.

    The exit is ``os._exit`` once output is flushed: the Temporal SDK's native
    threads may still call into Python while the interpreter finalizes, which
    aborts the process (SIGABRT) and would turn a clean exit into a crash.
    """
    code = 0
    try:
        asyncio.run(main)
    except expected as err:
        click.echo(f"janus: {err}", err=True)
        code = 1
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _start(settings: ProcessSettings) -> None:
    _setup_logging(settings.log_level)
    _refuse_shadowed_packages()
    _run(_serve(settings), _fatal_conditions(settings))


def _fatal_conditions(settings: ProcessSettings) -> tuple[type[Exception], ...]:
    """What ends this process with one message: the bridge's only when it runs one
    (importing the bridge loads kopf, which a worker-only process never needs)."""
    from janus.contract.errors import StartupError

    if settings.bridge is None:
        return (StartupError,)
    from bridge.leadership import LeadershipLost

    return (StartupError, LeadershipLost)


def _refuse_shadowed_packages() -> None:
    """Stop, saying why, before importing a ``bridge`` or ``workflows`` that may not be ours."""
    from janus.contract.errors import StartupError
    from janus.runtime.preflight import check_import_names

    try:
        check_import_names()
    except StartupError as err:
        click.echo(f"janus: {err}", err=True)
        sys.exit(1)


async def _serve(settings: ProcessSettings) -> None:
    from janus.runtime import processes

    temporal, cluster = settings.temporal, settings.cluster
    components: list[processes.Component] = []
    if settings.worker is not None:
        components.append(await processes.worker_component(temporal, cluster, settings.worker))
    if settings.bridge is not None:
        components.append(await processes.bridge_component(temporal, cluster, settings.bridge))
    await processes.serve(components, settings.probes)


@click.command()
@temporal_options
@cluster_options
@worker_options
@probe_options
@_settings_errors
def worker(**o: Any) -> None:
    """Run the Temporal worker: the saga workflow and the activities that touch the cluster."""
    _start(_settings(o, *WORKER))


@click.command()
@temporal_options
@cluster_options
@bridge_options
@probe_options
@_settings_errors
def bridge(**o: Any) -> None:
    """Run the bridge: start a workflow per Transaction, cancel it when one is deleted."""
    _start(_settings(o, *BRIDGE))


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
    settings = _settings(o, *WORKER, "bridge")
    if detach:
        _detach(settings, pid_file, log_file)
        return
    _start(settings)


def _detach(settings: ProcessSettings, pid_file: Path | None, log_file: Path | None) -> None:
    from janus.runtime import daemon

    if pid_file is None:
        raise click.UsageError("--detach needs --pid-file")
    pid_file = pid_file.resolve()
    log_file = (log_file or pid_file.with_suffix(".log")).resolve()
    argv = [a for a in sys.argv if a != "--detach"]
    if "--pid-file" not in argv:
        argv += ["--pid-file", str(pid_file)]
    port = settings.probes.port
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
            directory: Path | None, **o: Any) -> None:  # fmt: skip
    """Print the kustomize base (CRD, RBAC, Deployments), or apply it with kubectl."""
    from janus.cli import install as installer

    given = flags.given(o, "cluster")["cluster"]
    kubeconfig = values_from_env(ClusterSettings, given, os.environ).get("kubeconfig")

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
def status(transaction: str, **o: Any) -> None:
    """Say what happened to a Transaction: phase, each change, errors, the Temporal UI link."""
    from janus.cli import report
    from janus.contract.errors import StartupError
    from janus.contract.models import TransactionStatus
    from janus.runtime import preflight

    namespace, _, name = transaction.rpartition("/")
    if not namespace or not name:
        raise click.BadParameter("give NAMESPACE/NAME, e.g. shop/deploy-v2")
    settings = _settings(o, "cluster")
    try:
        api = preflight.kubernetes_api(settings.cluster)
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
def retry(transaction: str, **o: Any) -> None:
    """Run a Failed Transaction's rollback again, once the cause is fixed."""
    from janus.cli.retry import RetryRefused, retry_rollback
    from janus.clients.temporal import temporal_client
    from janus.contract.models import TransactionRef
    from janus.runtime import preflight

    namespace, _, name = transaction.rpartition("/")
    if not namespace or not name:
        raise click.BadParameter("give NAMESPACE/NAME, e.g. shop/deploy-v2")
    settings = _settings(o, "temporal", "cluster")
    api = preflight.kubernetes_api(settings.cluster)
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
        client = await temporal_client(settings.temporal)
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
