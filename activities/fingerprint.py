"""What counts as 'changed' for conflict checks: what a user sees, not the resourceVersion.

A resourceVersion moves on every write, including a controller's status update
or its bookkeeping annotations (a Deployment's revision). Treating those as
conflicts would make every transaction over a live Deployment fail or refuse to
roll back. So a target counts as changed by someone else only when its
user-visible parts differ: everything but status and server-set metadata, plus
labels, annotations (minus controllers' bookkeeping and our own marker) and
ownerReferences.

A fingerprint travels through the workflow's history, and an unkeyed digest of a
Secret would let anyone who reads the history test guesses of a weak value. So
it is an HMAC under a key only the worker holds (``activities.keys``), marked
``KEYED``. A fingerprint recorded by 0.1.0 is an unkeyed digest and is compared
as one (``same``), so transactions in flight across an upgrade keep working.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from janus.contract.operations import CHANGE_MARKER

#: Annotations controllers maintain on objects they own; not a user's change.
CONTROLLER_ANNOTATION_PREFIXES = ("deployment.kubernetes.io/",)


def _user_annotation(key: str) -> bool:
    return key != CHANGE_MARKER and not key.startswith(CONTROLLER_ANNOTATION_PREFIXES)


def comparable(obj: dict[str, Any]) -> dict[str, Any]:
    """The parts of an object a user would compare."""
    meta = obj.get("metadata", {})
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if _user_annotation(k)}
    body = {k: v for k, v in obj.items() if k not in ("metadata", "status")}
    return {
        **body,
        "labels": meta.get("labels") or {},
        "annotations": annotations,
        "ownerReferences": meta.get("ownerReferences") or [],
    }


#: The prefix of a keyed fingerprint.
KEYED = "k1:"


def fingerprint(obj: dict[str, Any] | None, key: bytes = b"") -> str:
    """A digest of ``comparable(obj)``, keyed when ``key`` is given; '' for an absent object."""
    if obj is None:
        return ""
    text = json.dumps(comparable(obj), sort_keys=True, separators=(",", ":")).encode()
    if key:
        return KEYED + hmac.new(key, text, hashlib.sha256).hexdigest()
    return hashlib.sha256(text).hexdigest()[:32]


def same(obj: dict[str, Any] | None, recorded: str, key: bytes) -> bool:
    """Whether ``obj`` has the ``recorded`` fingerprint, keyed or (from 0.1.0) not."""
    return hmac.compare_digest(
        fingerprint(obj, key if recorded.startswith(KEYED) else b""), recorded
    )
