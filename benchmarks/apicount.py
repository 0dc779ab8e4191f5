"""Count the API server's requests during one run, from its own ``apiserver_request_total``.

Read through ``kubectl get --raw /metrics`` as the admin, before and after. The
controller-manager's reactions (a patched Deployment makes a ReplicaSet, Pods
and status updates) and watches are left out, so what remains is what the
client under test asked for, plus the odd unrelated request (a leader-election
renewal, the namespace controller finishing an earlier deletion), which is why a
quiet interval is measured too.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from benchmarks.environment import Endpoints, kubectl_executable

_SAMPLE = re.compile(r"^apiserver_request_total\{(.*)\} (\d+(?:\.\d+)?(?:e\+\d+)?)$", re.M)
_LABEL = re.compile(r'(\w+)="([^"]*)"')
#: Watches and lists are long-lived or the controllers'; left out.
IGNORED_VERBS = {"WATCH", "LIST"}
#: What the seed example, Janus and the bridge touch ("" is discovery). Others are
#: the controllers' reactions (ReplicaSets, Pods, status) or namespace deletions.
COUNTED = {
    "",
    "configmaps",
    "deployments",
    "secrets",
    "leases",
    "transactions",
    "events",
    "selfsubjectaccessreviews",
    "namespaces",
}

Key = tuple[str, str, str]


def snapshot(endpoints: Endpoints) -> Counter[Key]:
    text = subprocess.run(
        [kubectl_executable(), "get", "--raw", "/metrics"],
        capture_output=True,
        text=True,
        env=endpoints.environ(),
        check=True,
    ).stdout
    counts: Counter[Key] = Counter()
    for labels, value in _SAMPLE.findall(text):
        found = dict(_LABEL.findall(labels))
        key = (found.get("verb", ""), found.get("resource", ""), found.get("subresource", ""))
        counts[key] += int(float(value))
    return counts


def difference(before: Counter[Key], after: Counter[Key]) -> dict[str, int]:
    out: dict[str, int] = {}
    for (verb, resource, sub), n in (after - before).items():
        if (
            verb in IGNORED_VERBS
            or resource not in COUNTED
            or (resource, sub)
            == (
                "deployments",
                "status",
            )
        ):
            continue
        name = f"{verb} {resource or '(discovery)'}" + (f"/{sub}" if sub else "")
        out[name] = n
    return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))


async def count(endpoints: Endpoints, work: Callable[[], Awaitable[Any]]) -> dict[str, int]:
    """The requests made while ``work`` ran (and half a second after, for stragglers)."""
    before = await asyncio.to_thread(snapshot, endpoints)
    await work()
    await asyncio.sleep(0.5)
    after = await asyncio.to_thread(snapshot, endpoints)
    return difference(before, after)
