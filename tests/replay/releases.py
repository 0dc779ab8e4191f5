"""The released versions named in ``RELEASES.toml``, and their code checked out.

A release's code runs in the current virtual environment with ``PYTHONPATH``
pointing at a checkout of its commit (a detached ``git worktree``): its
dependencies are the current ones, which is what an upgrade in place of the
Python package does too, and it costs seconds instead of a venv per release.
"""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RELEASES_FILE = ROOT / "RELEASES.toml"
HISTORIES = ROOT / "tests" / "replay" / "histories"


@dataclass(frozen=True)
class Release:
    version: str
    commit: str

    @property
    def histories(self) -> Path:
        return HISTORIES / self.version


def releases() -> list[Release]:
    data = tomllib.loads(RELEASES_FILE.read_text())
    return [Release(version=r["version"], commit=r["commit"]) for r in data["release"]]


def last_release() -> Release:
    return releases()[-1]


def release(version: str) -> Release:
    for candidate in releases():
        if candidate.version == version:
            return candidate
    known = ", ".join(r.version for r in releases())
    raise SystemExit(f"release {version!r} is not in {RELEASES_FILE.name} (known: {known})")


@contextlib.contextmanager
def checked_out(rel: Release) -> Iterator[Path]:
    """The release's tree in a temporary detached worktree of this repository."""
    parent = Path(tempfile.mkdtemp(prefix=f"janus-{rel.version}-"))
    tree = parent / "tree"
    _git("worktree", "add", "--detach", "--quiet", str(tree), rel.commit)
    try:
        yield tree
    finally:
        _git("worktree", "remove", "--force", str(tree))
        with contextlib.suppress(OSError):
            parent.rmdir()


def _git(*args: str) -> None:
    done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {done.stderr.strip()}")
