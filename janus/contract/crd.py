"""Generate the Transaction CRD from the pydantic models.

The API server wants a *structural* OpenAPI v3 schema: no ``$ref``, no ``anyOf``
for optional fields, no ``additionalProperties: false`` beside ``properties``,
free-form objects marked ``x-kubernetes-preserve-unknown-fields``. Pydantic emits
JSON Schema; this module rewrites it, so the models stay the one definition and
``deploy/crd.yaml`` is only ever generated (``janus crd > deploy/crd.yaml``).
"""

from __future__ import annotations

from typing import Any

import yaml

from janus.contract.models import (
    API_GROUP,
    API_VERSION,
    KIND,
    PLURAL,
    STALE_STATUS_MESSAGE,
    STATUS_SEQUENCE_RULE,
    TransactionSpec,
    TransactionStatus,
)

_DROPPED_KEYS = {"title", "additionalProperties"}


def _resolve(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_resolve(n, defs) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _resolve(merged, defs)
    if "anyOf" in node:
        return _resolve(_without_null(node), defs)
    return _structural({k: _resolve(v, defs) for k, v in node.items()})


def _without_null(node: dict[str, Any]) -> dict[str, Any]:
    """``X | None`` becomes ``X``: an absent field is how Kubernetes says None."""
    options = [o for o in node["anyOf"] if o.get("type") != "null"]
    if len(options) != 1:
        raise ValueError(f"cannot express {node} in a structural schema")
    rest = {k: v for k, v in node.items() if k != "anyOf" and (k, v) != ("default", None)}
    return {**options[0], **rest}


def _structural(node: dict[str, Any]) -> dict[str, Any]:
    free_form = node.get("type") == "object" and "properties" not in node
    out = {k: v for k, v in node.items() if k not in _DROPPED_KEYS and k != "$defs"}
    if free_form:
        out["x-kubernetes-preserve-unknown-fields"] = True
    if "default" in out and out["default"] in (None, [], {}):
        del out["default"]
    return out


def schema_of(model: type[TransactionSpec] | type[TransactionStatus]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    return dict(_resolve(raw, raw.get("$defs", {})))


def _spec_schema() -> dict[str, Any]:
    spec = schema_of(TransactionSpec)
    spec.setdefault("x-kubernetes-validations", []).append(
        {
            "rule": "self == oldSelf",
            "message": "spec is immutable: create a new Transaction instead of editing this one",
        }
    )
    return spec


def _status_schema() -> dict[str, Any]:
    """The status, whose writes must not go back in ``sequence`` (a transition rule:
    checked on updates only, against the stored status)."""
    status = schema_of(TransactionStatus)
    status["properties"]["sequence"]["format"] = "int64"
    status.setdefault("x-kubernetes-validations", []).append(
        {"rule": STATUS_SEQUENCE_RULE, "message": STALE_STATUS_MESSAGE}
    )
    return status


_PRINTER_COLUMNS = [
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Changes", "type": "integer", "jsonPath": ".status.summary.total"},
    {"name": "Committed", "type": "integer", "jsonPath": ".status.summary.committed"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    {"name": "Message", "type": "string", "jsonPath": ".status.message"},
]


def custom_resource_definition() -> dict[str, Any]:
    """The CRD object for ``transactions.backup.janus.io``."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{API_GROUP}"},
        "spec": {
            "group": API_GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": KIND.lower(),
                "shortNames": ["txn"],
                "categories": ["janus"],
            },
            "versions": [
                {
                    "name": API_VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": _PRINTER_COLUMNS,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": "An atomic, all-or-nothing set of changes.",
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": _spec_schema(),
                                "status": _status_schema(),
                            },
                        }
                    },
                }
            ],
        },
    }


def crd_yaml() -> str:
    header = "# Generated by `janus crd` from janus/contract/models.py; do not edit by hand.\n"
    return header + yaml.safe_dump(custom_resource_definition(), sort_keys=False, width=100)
