"""``deploy/`` is accepted by the real API server, and ``janus install`` serves it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import yaml

from tests.bridge.support import DEPLOY, JANUS, kubectl

KINDS = {
    "CustomResourceDefinition",
    "Namespace",
    "ConfigMap",
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "Deployment",
    "Service",
}


def test_kustomize_base_applies_with_server_side_dry_run(deployed: None) -> None:
    applied = kubectl("apply", "-k", str(DEPLOY), "--dry-run=server")

    assert "deployment.apps/janus-bridge" in applied.stdout
    assert "deployment.apps/janus-worker" in applied.stdout
    assert "customresourcedefinition.apiextensions.k8s.io/transactions.backup.janus.io" in (
        applied.stdout
    )


def test_least_privilege_overlay_drops_the_target_rights(deployed: None, tmp_path: Path) -> None:
    """The README's overlay for impersonation-only installs (spec.serviceAccountName)."""
    overlay = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [os.path.relpath(DEPLOY, tmp_path)],
        "patches": [
            {"patch": f"$patch: delete\napiVersion: rbac.authorization.k8s.io/v1\nkind: {kind}\n"
             "metadata:\n  name: janus-worker-targets\n"}
            for kind in ("ClusterRoleBinding", "ClusterRole")
        ],
    }  # fmt: skip
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(overlay))

    applied = kubectl("apply", "-k", str(tmp_path), "--dry-run=server").stdout

    assert "clusterrole.rbac.authorization.k8s.io/janus-worker " in applied
    assert "janus-worker-targets" not in applied


def test_janus_install_prints_the_base_and_applies_it(deployed: None) -> None:
    printed = run_janus("install", "--image", "registry.example/janus:1.2.3")
    documents = [d for d in yaml.safe_load_all(printed) if d]
    assert {d["kind"] for d in documents} == KINDS
    images = {
        c["image"]
        for d in documents
        if d["kind"] == "Deployment"
        for c in d["spec"]["template"]["spec"]["containers"]
    }
    assert images == {"registry.example/janus:1.2.3"}
    build_ids = {
        e["value"]
        for d in documents
        if d["kind"] == "Deployment"
        for c in d["spec"]["template"]["spec"]["containers"]
        for e in c.get("env", [])
        if e["name"] == "JANUS_BUILD_ID"
    }
    assert build_ids == {"registry.example/janus:1.2.3"}

    applied = run_janus("install", "--apply", "--dry-run=server")
    assert "serviceaccount/janus-worker" in applied


def run_janus(*args: str) -> str:
    done = subprocess.run([str(JANUS), *args], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout
