"""Fixtures of the upgrade tests: the last release checked out, the Transaction CRD."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.replay.releases import checked_out, last_release
from tests.saga.conftest import crd_installed

__all__ = ["crd_installed"]


@pytest.fixture(scope="session")
def release_tree() -> Iterator[Path]:
    """The last release's code (RELEASES.toml), in a temporary git worktree."""
    with checked_out(last_release()) as tree:
        yield tree
