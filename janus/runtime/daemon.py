"""``janus run --detach`` and ``janus stop``: a laptop's worker and bridge in the background.

The demo needs the worker and the bridge running while the shell goes on to
``kubectl apply``. A pid file makes that idempotent: a second ``--detach`` finds
the first process alive (its command line still names the pid file) and leaves
it; a stale pid file, whose process is gone or was replaced by another
program, is ignored. Output goes to a log file, the process gets its own
session (Ctrl-C in the terminal does not reach it), and ``--detach`` returns
only once the process answers ``/readyz``, or prints the log's tail if it died.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Sequence
from pathlib import Path

from janus.clients.launcher import ChildProcess, LaunchError, answers

READY_TIMEOUT = 90.0
STOP_TIMEOUT = 30.0


class DaemonError(Exception):
    """The background process could not be started or stopped; the message says why."""


def running_pid(pid_file: Path) -> int | None:
    """The pid recorded in ``pid_file`` if that process still runs and is ours."""
    try:
        pid = int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    return pid if any(str(pid_file).encode() in part for part in argv) else None


def detach(argv: Sequence[str], *, pid_file: Path, log_file: Path, ready_url: str | None) -> int:
    """Start ``argv`` in the background unless already running; return its pid."""
    existing = running_pid(pid_file)
    if existing is not None:
        return existing
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    child = ChildProcess("the process", argv, log_file, session=True).start()
    pid_file.write_text(f"{child.pid}\n")
    try:
        child.wait_ready(
            (lambda: answers(ready_url)) if ready_url else None,
            timeout=READY_TIMEOUT,
            interval=0.5,
        )
    except LaunchError as err:
        raise DaemonError(str(err)) from err
    return child.pid


def stop(pid_file: Path) -> int | None:
    """SIGTERM the recorded process and wait for it; return its pid, None if none ran."""
    pid = running_pid(pid_file)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        return None
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while running_pid(pid_file) is not None and time.monotonic() < deadline:
        time.sleep(0.2)
    if running_pid(pid_file) is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    return pid
