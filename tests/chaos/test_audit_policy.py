"""``janus dev`` runs kube-apiserver with the audit log the explorer's checker reads."""

from __future__ import annotations

from pathlib import Path

import yaml

from janus.dev import servers
from janus.dev.paths import StateLayout


def test_the_apiserver_records_writes_to_targets_leases_and_transactions(tmp_path: Path) -> None:
    layout = StateLayout(tmp_path)
    flags = servers._audit(layout)
    assert f"--audit-log-path={layout.audit_log}" in flags
    assert f"--audit-policy-file={layout.audit_policy}" in flags
    policy = yaml.safe_load(layout.audit_policy.read_text())
    recorded = next(r for r in policy["rules"] if r["level"] == "RequestResponse")
    groups = {g["group"]: g.get("resources") for g in recorded["resources"]}
    assert {"", "apps", "coordination.k8s.io", "backup.janus.io", "chaos.janus.dev"} <= set(groups)
    assert policy["rules"][0] == {"level": "None", "verbs": ["get", "list", "watch"]}
    assert servers._audit(layout) == flags  # written once, the same on a restart
