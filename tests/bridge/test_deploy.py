"""``deploy/`` is accepted by the real API server, and ``janus install`` serves it."""

from __future__ import annotations

import subprocess

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
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
}


def test_kustomize_base_applies_with_server_side_dry_run(deployed: None) -> None:
    applied = kubectl("apply", "-k", str(DEPLOY), "--dry-run=server")

    assert "deployment.apps/janus-bridge" in applied.stdout
    assert "deployment.apps/janus-worker" in applied.stdout
    assert "customresourcedefinition.apiextensions.k8s.io/transactions.backup.janus.io" in (
        applied.stdout
    )


def test_the_worker_has_no_rights_on_targets(deployed: None) -> None:
    """The worker may read (never write) ConfigMaps and Secrets outside janus-system, and
    nothing else: every target is read and written as a Transaction's account."""
    as_worker = "--as=system:serviceaccount:janus-system:janus-worker"
    for verb, resource in (
        ("create", "configmaps"),
        ("patch", "deployments.apps"),
        ("delete", "secrets"),
        ("create", "roles.rbac.authorization.k8s.io"),
    ):
        answer = kubectl("auth", "can-i", verb, resource, "-n", "default", as_worker, check=False)
        assert answer.stdout.strip() == "no", (verb, resource, answer.stdout)


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
