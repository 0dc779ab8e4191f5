"""One local control plane: start it, check it, stop it.

A control plane is identified by its state directory. ``up`` builds the binaries
if needed, generates certificates once, picks ports (the previous ones when still
free, so a shell's exported ``KUBECONFIG`` and ``TEMPORAL_ADDRESS`` survive a
``down``/``up``), starts etcd and Temporal, then kube-apiserver once etcd answers,
then kube-controller-manager once the API server is ready, and waits until each
answers its probe. ``state.json`` is rewritten after every start, so whatever
happens to ``up`` midway, ``down`` still knows what to stop.

``up`` is idempotent: a recorded control plane whose every server is alive and
healthy is returned as is; a partly dead one is stopped and started afresh on the
same etcd data and Temporal database, so objects and workflow histories survive.
"""

import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import BaseModel

from janus.dev import build, paths, pki, processes, servers
from janus.dev.errors import DevClusterError, PortTaken
from janus.dev.locking import exclusive_lock
from janus.dev.paths import StateLayout
from janus.dev.probes import Probes
from janus.dev.state import ClusterState, Endpoints, Ports, Server, load_model, save_model

SERVER_NAMES = ("etcd", "temporal", "kube-apiserver", "kube-controller-manager")
"""In start order."""

STOPPED_LAST = frozenset({"etcd"})
"""Stopped after the others: kube-apiserver stops in a second while etcd answers,
but retries for minutes (until SIGKILL) once etcd is gone."""

TIMEOUTS = {
    "etcd": 60.0,
    "kube-apiserver": 180.0,
    "kube-controller-manager": 120.0,
    "temporal": 120.0,
}
"""Seconds to wait for each server; generous, since two cores may be busy with tests."""

PORT_ATTEMPTS = 5
"""Starts on fresh ports after losing a port to another process (see ``PortTaken``)."""

PORT_TAKEN = "address already in use"
"""What every server (Go's net package, etcd, Temporal) logs when its port is taken."""

#: How long a server must still run after its probe first passes (a lost port
#: makes it exit within this).
BIND_SETTLE_SECONDS = 0.5


class ServerStatus(BaseModel):
    """A recorded server and whether it still runs."""

    server: Server
    running: bool


def _silent(_: str) -> None:
    """The default progress sink: the Python API prints nothing."""


class ControlPlane:
    """The control plane of one state directory.

    Args:
        state_dir: defaults to ``$JANUS_STATE_DIR`` or ``~/.local/state/janus/dev``.
        cache_dir: where binaries are built; ``$JANUS_CACHE_DIR`` or ``~/.cache/janus``.
        echo: receives progress messages (the CLI prints them to stderr).
    """

    def __init__(
        self,
        state_dir: Path | None = None,
        *,
        cache_dir: Path | None = None,
        echo: Callable[[str], None] = _silent,
    ) -> None:
        self.layout = StateLayout((state_dir or paths.state_dir()).expanduser().absolute())
        self.cache = (cache_dir or paths.cache_dir()).expanduser().absolute()
        self.echo = echo

    def up(self) -> Endpoints:
        """Start the control plane unless it already runs healthy; return its endpoints."""
        with self._locked():
            state = self._load()
            if state is not None and self._healthy(state):
                self.echo(f"control plane already running ({self.layout.root})")
                return state.endpoints
            if state is not None:
                self.echo("some servers are stopped or unhealthy; restarting all of them")
                self._stop(state)
            return self._start()

    def down(self, *, purge: bool = False) -> list[Server]:
        """Stop the recorded servers; with ``purge`` delete the state directory. Return them."""
        with self._locked():
            state = self._load()
            if state is not None:
                self._stop(state)
            self._warn_strays()
            if purge:
                shutil.rmtree(self.layout.root, ignore_errors=True)
        return state.servers if state else []

    def status(self) -> list[ServerStatus]:
        """Each recorded server and whether it runs; [] when never started or stopped."""
        state = self._load()
        servers_ = state.servers if state else []
        return [ServerStatus(server=s, running=self._runs(s)) for s in servers_]

    def endpoints(self) -> Endpoints | None:
        """The endpoints if every server runs, else None."""
        state = self._load()
        if state is None or not self._complete(state):
            return None
        return state.endpoints

    def _start(self) -> Endpoints:
        """Start every server; on a port lost to another process, again on fresh ports."""
        bins = build.ensure_built(self.cache, echo=self.echo)
        keys = pki.ensure_pki(self.layout.pki)
        for attempt in range(1, PORT_ATTEMPTS + 1):
            try:
                return self._start_on(self._choose_ports(fresh=attempt > 1), bins, keys)
            except PortTaken as taken:
                if attempt == PORT_ATTEMPTS:
                    raise
                first_line = taken.args[0].splitlines()[0].rstrip(";")
                self.echo(f"  {first_line}; starting again on fresh ports")
        raise AssertionError("unreachable")

    def _start_on(self, ports: Ports, bins: build.Binaries, keys: pki.Pki) -> Endpoints:
        self._write_kubeconfigs(keys, ports)
        state = ClusterState(ports=ports, endpoints=self._endpoints_for(ports))
        self.echo(f"starting the control plane in {self.layout.root}")
        try:
            self._launch_all(state, bins, keys)
        except BaseException:
            self._stop(state)
            raise
        return state.endpoints

    def _launch_all(self, state: ClusterState, bins: build.Binaries, keys: pki.Pki) -> None:
        """Start the servers in dependency order, each once what it needs is ready."""
        layout, ports, probes = self.layout, state.ports, self._probes(state)
        etcd = self._spawn(state, servers.etcd(bins, layout, ports), ports.etcd_peer)
        temporal_ports = (ports.temporal_ui, ports.temporal_http, ports.temporal_metrics)
        temporal = self._spawn(state, servers.temporal(layout, ports), *temporal_ports)
        self._wait(etcd, probes.etcd, "/health")
        api = self._spawn(state, servers.apiserver(bins, layout, keys, ports))
        self._wait(api, probes.apiserver, "/readyz")
        kcm = self._spawn(state, servers.controller_manager(bins, layout, keys, ports))
        self._wait(kcm, probes.controller_manager, "/healthz")
        self._wait(kcm, probes.controllers_working, "the ServiceAccount default/default")
        self._wait(temporal, probes.temporal, "search attributes")

    def _spawn(self, state: ClusterState, spec: servers.Spec, *more_ports: int) -> Server:
        """Start one server and record it in state.json at once."""
        for port in (spec.port, *more_ports):
            if not processes.port_free(port):
                raise PortTaken(
                    f"port {port} for {spec.name} is in use by another process; "
                    f"find it with `ss -ltnp 'sport = :{port}'`, stop it, and retry"
                )
        log = self.layout.log(spec.name)
        pid = processes.spawn(spec.argv, log)
        server = Server(name=spec.name, pid=pid, binary=Path(spec.argv[0]), port=spec.port, log=log)
        state.servers.append(server)
        save_model(self.layout.state_file, state)
        self.echo(f"  started {spec.name} (pid {pid}, port {spec.port})")
        return server

    def _wait(self, server: Server, probe: Callable[[], bool], what: str) -> None:
        """Poll ``probe`` until it passes; raise if the server dies or the timeout passes."""
        timeout = TIMEOUTS[server.name]
        deadline = time.monotonic() + timeout
        while not probe():
            if not processes.alive(server.pid):
                raise _exited(server)
            if time.monotonic() > deadline:
                raise DevClusterError(
                    f"{server.name} not ready after {timeout:.0f}s (waiting for {what}); "
                    f"last lines of {server.log}:\n{processes.log_tail(server.log)}"
                )
            time.sleep(0.2)
        # Another plane's server on a port we were both told may answer the probe
        # before ours fails to bind it: ours must still run a moment later.
        time.sleep(BIND_SETTLE_SECONDS)
        if not processes.alive(server.pid):
            raise _exited(server)
        self.echo(f"  {server.name} ready ({what})")

    def _stop(self, state: ClusterState) -> None:
        """Stop the servers in two waves (see STOPPED_LAST), then forget them."""
        for last in (False, True):
            wave = [s for s in state.servers if (s.name in STOPPED_LAST) == last]
            processes.stop(wave, self.layout.root)
        self.layout.state_file.unlink(missing_ok=True)

    def _healthy(self, state: ClusterState) -> bool:
        """Every server recorded, alive, running its binary, and passing its probe."""
        if not self._complete(state):
            return False
        probes = self._probes(state).by_server()
        return all(probes[s.name]() for s in state.servers)

    def _complete(self, state: ClusterState) -> bool:
        names = sorted(s.name for s in state.servers)
        return names == sorted(SERVER_NAMES) and all(self._runs(s) for s in state.servers)

    def _runs(self, server: Server) -> bool:
        return processes.is_ours(server, self.layout.root)

    def _choose_ports(self, *, fresh: bool = False) -> Ports:
        """The previous run's ports where still free (unless ``fresh``), new ones otherwise."""
        previous = None if fresh else load_model(self.layout.ports_file, Ports)
        keep = list(previous.model_dump().values()) if previous else []
        names = list(Ports.model_fields)
        ports = Ports(**dict(zip(names, processes.free_ports(len(names), keep=keep), strict=True)))
        save_model(self.layout.ports_file, ports)
        return ports

    def _write_kubeconfigs(self, keys: pki.Pki, ports: Ports) -> None:
        server = f"https://127.0.0.1:{ports.apiserver}"
        for user in pki.USERS:
            config = pki.kubeconfig(keys, user, server)
            pki.write_kubeconfig(self.layout.kubeconfig(user), config)

    def _endpoints_for(self, ports: Ports) -> Endpoints:
        return Endpoints(
            kubeconfig=self.layout.kubeconfig("admin"),
            tester_kubeconfig=self.layout.kubeconfig("tester"),
            temporal_address=f"127.0.0.1:{ports.temporal}",
            temporal_namespace=servers.TEMPORAL_NAMESPACE,
            ui_url=f"http://127.0.0.1:{ports.temporal_ui}",
            state_dir=self.layout.root,
        )

    def _probes(self, state: ClusterState) -> Probes:
        return Probes(
            pki=pki.Pki(self.layout.pki),
            etcd_port=state.ports.etcd,
            apiserver_port=state.ports.apiserver,
            controller_manager_port=state.ports.controller_manager,
            temporal_cli=str(servers.temporal_cli()),
            temporal_address=state.endpoints.temporal_address,
            temporal_namespace=state.endpoints.temporal_namespace,
        )

    def _load(self) -> ClusterState | None:
        return load_model(self.layout.state_file, ClusterState)

    def _warn_strays(self) -> None:
        """Name processes still using the state directory that state.json did not record."""
        strays = processes.pids_mentioning(self.layout.root)
        if strays:
            self.echo(f"warning: unrecorded processes still use {self.layout.root}: {strays}")

    @contextmanager
    def _locked(self) -> Iterator[None]:
        waiting = f"waiting for another janus dev command on {self.layout.root}"
        with exclusive_lock(self.layout.lock_file, waiting=waiting, echo=self.echo):
            yield


def _exited(server: Server) -> DevClusterError:
    """Why a server died while starting: its exit status, the lines of its own output
    that name an error (a Go panic's reason sits above a long stack), and the tail.

    A port taken meanwhile is a ``PortTaken``, which ``up`` answers with fresh ports.
    """
    how = processes.exit_description(server.pid) or "exited"
    reasons = processes.log_reasons(server.log)
    tail = processes.log_tail(server.log)
    said = "".join(f"  {line}\n" for line in reasons if line not in tail)
    details = f"{said}last lines of {server.log}:\n{tail}"
    if any(PORT_TAKEN in line for line in reasons):
        return PortTaken(f"{server.name} lost a port to another process ({how});\n{details}")
    return DevClusterError(f"{server.name} exited while starting ({how});\n{details}")
