"""Starting, recognising and stopping the server processes.

Each server runs in its own session (``start_new_session=True``): it outlives the
``janus dev up`` that started it, Ctrl-C in that terminal does not reach it, and
``down`` can signal the whole process group, children included. Because a pid
can be reused once its process is gone, ``down`` signals a recorded pid only
while ``/proc/<pid>/cmdline`` still starts with the recorded binary and names
the state directory.
"""

import contextlib
import os
import random
import signal
import socket
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from janus.clients.launcher import ChildProcess
from janus.dev.errors import DevClusterError
from janus.dev.state import Server

PORT_RANGE = (20000, 32000)
"""Below Linux's ephemeral range (32768+), so outgoing connections never take our ports."""

_children: dict[int, ChildProcess] = {}
"""The servers this process started, kept so they can be reaped and so a server
that died while starting can be described by its exit status."""


def spawn(argv: Sequence[str], log: Path) -> int:
    """Start ``argv`` in a new session, output to ``log``; return its pid.

    The previous run's log is kept as ``<log>.1``, so logs never grow without bound.
    """
    child = ChildProcess(Path(argv[0]).name, argv, log, session=True).start(rotate=True)
    _children[child.pid] = child
    return child.pid


def cmdline(pid: int) -> list[str]:
    """The argv of a live process, or [] if it is gone, a zombie or not readable."""
    _reap(pid)
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def is_ours(server: Server, marker: Path) -> bool:
    """Whether ``server.pid`` still runs ``server.binary`` with ``marker`` in its arguments
    (for a server this process started and that still runs: yes, see ``alive``)."""
    child = _children.get(server.pid)
    if child is not None and child.alive:
        return True
    argv = cmdline(server.pid)
    return bool(argv) and argv[0] == str(server.binary) and any(str(marker) in a for a in argv)


def pids_mentioning(marker: Path) -> list[int]:
    """All other live processes whose command line mentions ``marker`` (a state directory)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        if any(str(marker) in a for a in cmdline(int(entry.name))):
            found.append(int(entry.name))
    return found


def stop(servers: Iterable[Server], marker: Path, *, grace: float = 15.0) -> None:
    """SIGTERM each server's process group, SIGKILL what outlives ``grace``, wait for all."""
    ours = [s for s in servers if is_ours(s, marker)]
    for server in ours:
        _signal_group(server.pid, signal.SIGTERM)
    left = _wait_gone([s.pid for s in ours], grace)
    for pid in left:
        _signal_group(pid, signal.SIGKILL)
    if _wait_gone(left, 10.0):
        raise DevClusterError(f"processes {left} survived SIGKILL; check them with `ps -fp`")


def exit_description(pid: int) -> str:
    """How a server this process started ended ("exit status 1", "killed by SIGKILL"),
    or "" when it is not ours or still runs: a server that dies before writing
    anything must still say something."""
    child = _children.get(pid)
    code = child.exit_code() if child is not None else None
    if code is None:
        return ""
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit status {code}"


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live (not zombie) process.

    For a server this process started, its exit status decides: ``/proc/<pid>/cmdline``
    can read empty for a moment while the process runs (seen with etcd while other
    planes started beside it), which made a starting server look dead.
    """
    child = _children.get(pid)
    if child is not None and child.alive:
        return True
    return child is None and bool(cmdline(pid))


def port_free(port: int) -> bool:
    """Whether nothing listens on 127.0.0.1:``port``.

    SO_REUSEADDR, as Go's listeners use: connections in TIME_WAIT from a previous
    run do not make a port busy.
    """
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(count: int, *, keep: Sequence[int] = ()) -> list[int]:
    """``count`` distinct free ports; each of ``keep`` is reused when still free."""
    chosen: list[int] = []
    for wanted in [*keep, *([0] * (count - len(keep)))][:count]:
        port = wanted if wanted and wanted not in chosen and port_free(wanted) else 0
        chosen.append(port or _random_free_port(chosen))
    return chosen


def log_tail(path: Path, lines: int = 25) -> str:
    """The last ``lines`` lines of a log, or a note that it is missing."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"({path} does not exist)"
    return "\n".join(text.splitlines()[-lines:])


FATAL_MARKERS = ("panic:", '"level":"fatal"', "address already in use", "error:", "Error:")
"""Lines that say why a server stopped; a Go panic puts its reason above a long stack."""


def log_reasons(path: Path, lines: int = 5) -> list[str]:
    """The first ``lines`` lines of a log that name a fatal error (see FATAL_MARKERS)."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return []
    found = [line for line in text.splitlines() if any(m in line for m in FATAL_MARKERS)]
    return found[:lines]


def _random_free_port(taken: Sequence[int]) -> int:
    for _ in range(1000):
        port = random.randrange(*PORT_RANGE)
        if port not in taken and port_free(port):
            return port
    raise DevClusterError(f"no free port in {PORT_RANGE}; stop some servers and retry")


def _signal_group(pid: int, sig: signal.Signals) -> None:
    """Signal the group ``pid`` leads (it does: new session); the pid alone otherwise."""
    with contextlib.suppress(ProcessLookupError):
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)


def _wait_gone(pids: Sequence[int], timeout: float) -> list[int]:
    """Wait until no pid is alive; return those still alive at the deadline."""
    deadline = time.monotonic() + timeout
    left = list(pids)
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = [pid for pid in left if alive(pid)]
    return left


def _reap(pid: int) -> None:
    """Collect the exit status of a child we started, so it does not linger as a zombie."""
    child = _children.get(pid)
    if child is not None:
        child.exit_code()
