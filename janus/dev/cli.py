"""``janus dev up | down | status | env | build``: the local control plane from a shell.

Progress goes to stderr and the ``export`` lines to stdout, so both
``janus dev up`` and ``eval "$(janus dev env)"`` are useful in a terminal.
"""

import functools
import signal
import sys
from collections.abc import Callable
from types import FrameType
from typing import ParamSpec, TypeVar

import click

from janus.dev import build, paths
from janus.dev.controlplane import ControlPlane, ServerStatus
from janus.dev.errors import DevClusterError
from janus.dev.state import Endpoints

P = ParamSpec("P")
R = TypeVar("R")


def _errors_to_exit(command: Callable[P, R]) -> Callable[P, R]:
    """Print a DevClusterError's message (it says what to do) and exit 1."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except DevClusterError as error:
            click.echo(f"janus dev: {error}", err=True)
            sys.exit(1)

    return wrapper


def _progress(message: str) -> None:
    click.echo(message, err=True)


def _plane() -> ControlPlane:
    return ControlPlane(paths.state_dir(), cache_dir=paths.cache_dir(), echo=_progress)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _print_endpoints(endpoints: Endpoints) -> None:
    for line in endpoints.exports():
        click.echo(line)
    if endpoints.ui_url:
        click.echo(f"# Temporal UI: {endpoints.ui_url}")


def _status_line(status: ServerStatus) -> str:
    server = status.server
    state = "running" if status.running else "STOPPED"
    return (
        f"{server.name:<24} {state:<8} pid {server.pid:<8} port {server.port:<6} log {server.log}"
    )


@click.group()
def dev() -> None:
    """A local etcd, kube-apiserver, kube-controller-manager and Temporal server.

    State lives in $JANUS_STATE_DIR (default ~/.local/state/janus/dev), built
    binaries in $JANUS_CACHE_DIR (default ~/.cache/janus).
    """


@dev.command()
@_errors_to_exit
def up() -> None:
    """Start the control plane (building it first if needed) and print what to export."""
    # `kill` cleans up like Ctrl-C: servers started so far are stopped, not orphaned.
    signal.signal(signal.SIGTERM, _interrupt)
    endpoints = _plane().up()
    _progress('control plane ready; run: eval "$(janus dev env)"')
    _print_endpoints(endpoints)


@dev.command()
@click.option("--purge", is_flag=True, help="Also delete the state directory (data, certs).")
@_errors_to_exit
def down(purge: bool) -> None:
    """Stop the servers `up` started; keep their data unless --purge."""
    stopped = _plane().down(purge=purge)
    names = ", ".join(s.name for s in stopped) or "nothing was running"
    _progress(f"stopped: {names}" + (" (state directory deleted)" if purge else ""))


@dev.command()
@_errors_to_exit
def status() -> None:
    """Show each server: running or not, pid, port, log file. Exit 1 unless all run."""
    plane = _plane()
    statuses = plane.status()
    if not statuses:
        click.echo(f"not running (state directory: {plane.layout.root})")
        sys.exit(1)
    for item in statuses:
        click.echo(_status_line(item))
    endpoints = plane.endpoints()
    if endpoints is None:
        _progress("some servers are stopped; `janus dev up` restarts them all")
        sys.exit(1)
    if endpoints.ui_url:
        click.echo(f"Temporal UI: {endpoints.ui_url}")


@dev.command()
@_errors_to_exit
def env() -> None:
    """Print the export lines of the running control plane: eval "$(janus dev env)"."""
    endpoints = _plane().endpoints()
    if endpoints is None:
        raise DevClusterError("the control plane is not running; start it with `janus dev up`")
    _print_endpoints(endpoints)


@dev.command("build")
@_errors_to_exit
def build_() -> None:
    """Build kube-apiserver, kube-controller-manager and etcd into the cache, if missing."""
    bins = build.ensure_built(paths.cache_dir(), echo=_progress)
    click.echo(f"binaries ready in {bins.directory}")
