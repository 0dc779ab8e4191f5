"""Two bridge replicas: one workflow per Transaction, with leader election and without.

With election (the default), one replica acts and the other stands by; when the
leader is SIGKILLed, the standby takes over once the Lease expires. Without it,
both act on every Transaction, and Temporal's id policies alone keep it to one
workflow each: correctness never rested on the election.
"""

from __future__ import annotations

import json

import yaml
from temporalio.client import Client

from tests.bridge.support import Janus, JanusProcess, config_map_transaction, kubectl, workflows_of

WAIT = "--timeout=90s"


def apply_transactions(namespace: str, names: list[str]) -> None:
    manifests = [config_map_transaction(name, f"{name}-a", f"{name}-b") for name in names]
    kubectl("-n", namespace, "apply", "-f", "-", stdin=yaml.safe_dump_all(manifests))
    for name in names:
        kubectl(
            "-n", namespace, "wait", "--for=jsonpath={.status.phase}=Committed", f"txn/{name}", WAIT
        )


async def assert_one_workflow_each(client: Client, namespace: str, names: list[str]) -> None:
    for name in names:
        uid = json.loads(kubectl("-n", namespace, "get", "txn", name, "-o", "json").stdout)[
            "metadata"
        ]["uid"]
        runs = await workflows_of(client, namespace, name)
        assert [r.id for r in runs] == [f"txn/{namespace}/{name}/{uid}"], runs


def leader_of(replicas: list[JanusProcess]) -> JanusProcess:
    leading = [r for r in replicas if r.sample("janus_bridge_leader") == 1]
    assert len(leading) == 1, [r.metrics() for r in replicas]
    return leading[0]


async def test_two_replicas_with_leader_election(
    janus: Janus, namespace: str, temporal_client: Client
) -> None:
    janus.worker()
    replicas = [janus.bridge(), janus.bridge()]
    first = [f"txn-{i}" for i in range(3)]
    apply_transactions(namespace, first)
    await assert_one_workflow_each(temporal_client, namespace, first)

    leader = leader_of(replicas)
    leader.kill()
    survivor = next(r for r in replicas if r is not leader)
    then = [f"txn-{i}" for i in range(3, 5)]
    apply_transactions(namespace, then)

    await assert_one_workflow_each(temporal_client, namespace, first + then)
    assert survivor.sample("janus_bridge_leader") == 1


async def test_two_replicas_without_election_still_start_one_workflow_each(
    janus: Janus, namespace: str, temporal_client: Client
) -> None:
    janus.worker()
    janus.bridge("--no-leader-election")
    janus.bridge("--no-leader-election")
    names = [f"txn-{i}" for i in range(4)]
    apply_transactions(namespace, names)
    await assert_one_workflow_each(temporal_client, namespace, names)
