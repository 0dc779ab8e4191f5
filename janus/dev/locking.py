"""Advisory file locks, so two ``janus dev`` commands never race on one directory.

Two terminals running ``janus dev build`` (or a test session and a shell running
``janus dev up``) would otherwise compile into, or start servers from, the same
directory at once. ``fcntl.flock`` is released by the kernel when the holder dies,
so a killed command never leaves a stale lock behind.
"""

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator
from pathlib import Path


@contextlib.contextmanager
def exclusive_lock(path: Path, *, waiting: str, echo: Callable[[str], None]) -> Iterator[None]:
    """Hold an exclusive lock on ``path``; say ``waiting`` if someone else holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            echo(waiting)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
