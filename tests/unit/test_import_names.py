"""Janus installs ``workflows``, ``activities`` and ``bridge`` under top-level import
names (docs/architecture.md, "Import names"), so ``janus worker``, ``janus bridge``
and ``janus run`` refuse to start beside another distribution that installs one of
them, naming it, instead of running a mix of its modules and ours.

The other distribution is real metadata on the path (a ``.dist-info`` directory, as
pip leaves it), not a patched function.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from janus.contract.errors import StartupError
from janus.runtime.preflight import check_import_names

JANUS = Path(sys.executable).parent / "janus"


def _other_distribution(directory: Path, *top_level: str) -> Path:
    """A directory holding an installed distribution ``other-tool`` with these packages."""
    info = directory / "other_tool-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: other-tool\nVersion: 1.0\n")
    (info / "top_level.txt").write_text("".join(f"{name}\n" for name in top_level))
    return directory


def test_this_installation_passes() -> None:
    check_import_names()


def test_another_distribution_under_one_of_our_names_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(_other_distribution(tmp_path, "bridge", "unrelated")))
    with pytest.raises(StartupError) as raised:
        check_import_names()
    message = str(raised.value)
    assert "'bridge' also from other-tool" in message
    assert "virtual environment" in message
    assert "unrelated" not in message and "workflows" not in message


def test_janus_worker_refuses_before_it_imports_the_workflow(tmp_path: Path) -> None:
    other = _other_distribution(tmp_path / "site", "workflows")
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.touch()  # never read: the check comes first
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "KUBECONFIG"))}
    done = subprocess.run(
        [str(JANUS), "worker", "--kubeconfig", str(kubeconfig)],
        env={**env, "PYTHONPATH": str(other)},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.strip().splitlines() == [
        "janus: another distribution installs a package under a name Janus uses "
        "('workflows' also from other-tool): install Janus in a virtual environment "
        "or image of its own"
    ]
