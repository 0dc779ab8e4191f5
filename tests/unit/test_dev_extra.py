"""Without the dev extra (``janus[dev]``) the ``janus`` command works, and ``janus dev``
says which extra to install.

The extra's absence is simulated in a fresh interpreter: ``cryptography`` (which
only ``janus.dev`` imports) is made unimportable before the command loads.
"""

from __future__ import annotations

import subprocess
import sys

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
