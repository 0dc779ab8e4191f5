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
from tests.unit.planted_distributions import plant_distribution

JANUS = Path(sys.executable).parent / "janus"


def test_this_installation_passes() -> None:
    check_import_names()


def test_another_distribution_under_one_of_our_names_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = plant_distribution(tmp_path, "other-tool", top_level=("bridge", "unrelated"))
    monkeypatch.syspath_prepend(str(other))
    with pytest.raises(StartupError) as raised:
        check_import_names()
    message = str(raised.value)
    assert "'bridge' also from other-tool" in message
    assert "virtual environment" in message
    assert "unrelated" not in message and "workflows" not in message


def test_janus_worker_refuses_before_it_imports_the_workflow(tmp_path: Path) -> None:
    other = plant_distribution(tmp_path / "site", "other-tool", top_level=("workflows",))
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
