"""A trial drawn from the campaign's random generator: targets, transactions, faults.

Everything a trial does is decided here, up front, from one ``random.Random``;
the campaign derives each trial's generator from the seed's, so ``--trial N``
replays trial N's choices without running the ones before it. (Timing is the
servers' own: a replay makes the same choices, not the same interleaving.)
"""

from __future__ import annotations

import base64
import random
from typing import Any

from pydantic import BaseModel, Field

from tests.chaos.record import ChangeRecord, TargetRef

GROUP = "chaos.janus.dev"
FOREIGN = ("foreign-edit", "foreign-delete", "foreign-finalizer", "foreign-recreate")
TIMED = (
    *FOREIGN,
    "proxy-hang",
    "proxy-drop",
    "proxy-delay",
    "restart-temporal",
    "restart-apiserver",
    "cancel",
    "kubectl-delete",
    "reset",
    "lease-steal",
)
#: Relative weights: restarts cost the most wall time, so they are drawn least.
WEIGHTS = {
    "foreign-edit": 4,
    "foreign-delete": 2,
    "foreign-finalizer": 2,
    "foreign-recreate": 2,
    "proxy-hang": 2,
    "proxy-drop": 2,
    "proxy-delay": 2,
    "restart-temporal": 1,
    "restart-apiserver": 1,
    "cancel": 2,
    "kubectl-delete": 2,
    "reset": 2,
    "lease-steal": 2,
}
#: What another party does to a target while a transaction is in the middle of it.
AIMED = (*FOREIGN, "lease-steal")
RESET_TYPES = ("FirstWorkflowTask", "LastWorkflowTask", "event")


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class Action(BaseModel):
    """One fault or actor. ``at``: seconds after the trial starts, or, with ``when``,
    after that moment: ``committing`` (its transaction's status says Committing:
    inside a delayed apply's window) or ``worker-down`` (the worker has just died,
    before its replacement starts)."""

    at: float
    kind: str
    when: str = ""
    target: int = 0
    txn: int = 0
    seconds: float = 0.0
    count: int = 1
    how: str = ""


class TxnPlan(BaseModel):
    name: str
    start_at: float
    changes: list[ChangeRecord]


class TrialPlan(BaseModel):
    trial: int
    namespace: str
    targets: list[TargetRef]
    existing: list[bool]
    txns: list[TxnPlan]
    crash_at: str = ""
    faults: str = ""
    delays: str = ""
    actions: list[Action] = Field(default_factory=list)
    retry_failed: bool = False
    env_faults: dict[str, int] = Field(default_factory=dict)


def targets_of(namespace: str) -> tuple[list[TargetRef], list[bool]]:
    """The pool every trial draws from: each kind, one of them cluster-scoped, two absent."""

    def ref(api_version: str, kind: str, name: str, scoped: bool = True) -> TargetRef:
        return TargetRef(
            api_version=api_version, kind=kind, name=name, namespace=namespace if scoped else None
        )

    pool = [
        (ref("v1", "ConfigMap", "cm-0"), True),
        (ref("v1", "ConfigMap", "cm-1"), True),
        (ref("v1", "ConfigMap", "cm-new"), False),
        (ref("v1", "Secret", "sec-0"), True),
        (ref("apps/v1", "Deployment", "web"), True),
        (ref(f"{GROUP}/v1", "Widget", "w-0"), True),
        (ref(f"{GROUP}/v1", "Widget", "w-new"), False),
        (ref(f"{GROUP}/v1", "Gadget", f"g-{namespace}", scoped=False), True),
    ]
    return [t for t, _ in pool], [e for _, e in pool]


def initial_object(target: TargetRef) -> dict[str, Any]:
    """The 'before' state of an existing target."""
    meta: dict[str, Any] = {"name": target.name, "labels": {"chaos": "before"}}
    body: dict[str, Any] = {"apiVersion": target.api_version, "kind": target.kind, "metadata": meta}
    if target.kind == "ConfigMap":
        body["data"] = {"k": "0", "keep": "me"}
    elif target.kind == "Secret":
        body["data"] = {"k": b64("0")}
    elif target.kind == "Deployment":
        body["spec"] = deployment_spec("img:0")
    else:
        body["spec"] = {"size": 0, "color": "red"}
    return body


def deployment_spec(image: str) -> dict[str, Any]:
    labels = {"app": "web"}
    return {
        "replicas": 1,
        "selector": {"matchLabels": labels},
        "template": {
            "metadata": {"labels": labels},
            "spec": {"containers": [{"name": "web", "image": image}]},
        },
    }


def content_of(target: TargetRef, type_: str, tag: str) -> dict[str, Any] | None:
    if type_ == "Delete":
        return None
    if target.kind == "ConfigMap":
        data = {"k": tag, tag: "1"} if type_ == "Patch" else {"u": tag}
        return {"data": data}
    if target.kind == "Secret":
        return {"data": {"k": b64(tag)} if type_ == "Patch" else {"u": b64(tag)}}
    if target.kind == "Deployment":
        if type_ == "Patch":
            containers = [{"name": "web", "image": f"img:{tag}"}]
            return {"spec": {"template": {"spec": {"containers": containers}}}}
        return {"spec": deployment_spec(f"img:{tag}")}
    if type_ == "Patch":
        return {"spec": {"size": len(tag), "color": None, "by": tag}}
    return {"spec": {"size": 1, "by": tag}}


#: A hang past a lease's duration (60 s) and an activity's timeout; drawn where a
#: 35 s hang would be, in long campaigns only (it makes a trial last minutes).
LONG_HANG = 75.0


def draw(rng: random.Random, trial: int, namespace: str, *, long_hangs: bool = False) -> TrialPlan:
    targets, existing = targets_of(namespace)
    txns = []
    for t in range(rng.randint(1, 3)):
        name = f"t{t}"
        picked = rng.sample(range(len(targets)), rng.randint(1, 4))
        changes = []
        for index, i in enumerate(picked):
            if existing[i]:
                type_ = rng.choices(["Patch", "Update", "Delete"], weights=[4, 2, 1])[0]
            else:
                type_ = "Create"
            if not existing[i] or type_ != "Delete":
                content = content_of(targets[i], type_, name)
            else:
                content = None
            changes.append(
                ChangeRecord(index=index, target=targets[i], type=type_, content=content)
            )
        txns.append(TxnPlan(name=name, start_at=round(rng.uniform(0, 2), 2), changes=changes))
    plan = TrialPlan(
        trial=trial, namespace=namespace, targets=targets, existing=existing, txns=txns
    )
    _worker_faults(rng, plan)
    kinds = list(WEIGHTS)
    for _ in range(rng.randint(1, 3)):
        kind = rng.choices(kinds, weights=[WEIGHTS[k] for k in kinds])[0]
        plan.actions.append(_action(rng, plan, kind))
    for action in plan.actions:
        if long_hangs and action.kind == "proxy-hang" and action.seconds == 35.0:
            action.seconds = LONG_HANG
    plan.actions.sort(key=lambda a: a.at)
    plan.retry_failed = rng.random() < 0.5
    return plan


def _worker_faults(rng: random.Random, plan: TrialPlan) -> None:
    """Crashes, API errors and delays through the worker's own seams (JANUS_*)."""
    victim = rng.choice(plan.txns)
    n = len(victim.changes)
    crash, errors, delays = [], [], []
    if rng.random() < 0.6:
        op = rng.choice(["apply", "apply", "undo", "snapshot", "acquire", "release"])
        point = rng.choice(["before", "after", "after"])
        crash.append(f"{op}:{rng.randrange(n)}:{point}@{victim.name}")
        plan.env_faults["crash"] = 1
    if rng.random() < 0.5:
        op, point = rng.choice([("apply", "before"), ("apply", "after"), ("undo", "after")])
        errors.append(f"{op}:{rng.randrange(n)}:{point}@{victim.name}")
        plan.env_faults["api-error"] = 1
    if rng.random() < 0.6:
        delayed = rng.choice(plan.txns)
        i = rng.randrange(len(delayed.changes))
        delays.append(f"apply:{i}:before:{rng.choice([1, 2, 3])}s@{delayed.name}")
        plan.env_faults["delay"] = 1
        if rng.random() < 0.7:  # another writer in the window, then (maybe) a rollback
            kind = rng.choice((*AIMED, "cancel"))
            aimed = _aimed(rng, plan, delayed, "committing", kind)
            if i > 0:  # at a change already applied: the rollback will meet it
                aimed.target = plan.targets.index(delayed.changes[rng.randrange(i)].target)
            plan.actions.append(aimed)
            if rng.random() < 0.6:
                last = len(delayed.changes) - 1
                errors.append(f"apply:{last}:before@{delayed.name}")
                plan.env_faults["api-error"] = 1
    if crash and rng.random() < 0.7:
        plan.actions.append(_aimed(rng, plan, victim, "worker-down", rng.choice(AIMED)))
    plan.crash_at, plan.faults, plan.delays = ",".join(crash), ",".join(errors), ",".join(delays)


def _aimed(rng: random.Random, plan: TrialPlan, txn: TxnPlan, when: str, kind: str) -> Action:
    """An action at one of ``txn``'s targets, at a moment when it hurts most."""
    action = _action(rng, plan, kind)
    action.when, action.at = when, round(rng.uniform(0, 0.5), 2)
    action.txn = plan.txns.index(txn)
    action.target = plan.targets.index(rng.choice(txn.changes).target)
    return action


def _action(rng: random.Random, plan: TrialPlan, kind: str) -> Action:
    action = Action(at=round(rng.uniform(0.5, 6), 2), kind=kind)
    action.txn = rng.randrange(len(plan.txns))
    touched = sorted({plan.targets.index(c.target) for t in plan.txns for c in t.changes})
    action.target = rng.choice(touched)
    if kind == "proxy-hang":
        action.seconds, action.count = rng.choice([5.0, 15.0, 35.0]), rng.randint(1, 2)
    elif kind == "proxy-delay":
        action.seconds, action.count = rng.uniform(0.5, 3), rng.randint(1, 4)
    elif kind == "proxy-drop":
        action.count = rng.randint(1, 3)
    elif kind.startswith("restart"):
        action.seconds = rng.choice([0.0, 2.0])
    elif kind == "reset":
        action.how = rng.choice(RESET_TYPES)
        action.count = rng.randint(1, 1000)  # picks the event, when the reset is to one
    elif kind in FOREIGN:
        action.how = f"x{rng.randint(0, 99)}"
    return action
