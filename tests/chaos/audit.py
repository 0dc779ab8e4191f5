"""The API server's audit log, read back as the writes the checker reasons about.

``janus dev`` runs kube-apiserver with an audit policy (``janus/dev/servers.py``)
that records every write to the kinds the explorer uses, with request and
response bodies, one JSON object per line. A line's position is the order the
API server completed the request in: the checker orders everything by it.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

WRITE_VERBS = frozenset({"create", "update", "patch", "delete"})


class Write(BaseModel):
    """One write request as the API server completed it."""

    seq: int
    received: datetime
    completed: datetime
    user: str
    """The effective user: the impersonated one when the caller impersonated."""
    verb: str
    group: str
    resource: str
    namespace: str
    name: str
    subresource: str = ""
    code: int
    request: Any = None
    response: dict[str, Any] | None = None

    @property
    def key(self) -> str:
        return f"{self.group}/{self.resource}/{self.namespace}/{self.name}"

    @property
    def succeeded(self) -> bool:
        return 200 <= self.code < 300

    def effect(self) -> tuple[bool, dict[str, Any] | None]:
        """(changed the object?, the object after it, or None when it is gone)."""
        if not self.succeeded or self.subresource:
            return False, None
        body = self.response if (self.response or {}).get("kind") != "Status" else None
        if body is None:
            return True, None
        meta = body.get("metadata") or {}
        if (self.verb == "delete" or meta.get("deletionTimestamp")) and not meta.get("finalizers"):
            return True, None
        return True, body


def parse_line(seq: int, line: str) -> Write | None:
    """A Write from one audit line; None for anything that is not a completed write."""
    try:
        event = json.loads(line)
    except json.JSONDecodeError:
        return None  # a line cut short by a kill of the API server
    if event.get("stage") != "ResponseComplete" or event.get("verb") not in WRITE_VERBS:
        return None
    if "dryRun=" in event.get("requestURI", ""):
        return None  # Janus's prepare step: the API server changed nothing
    ref = event.get("objectRef") or {}
    request, response = event.get("requestObject"), event.get("responseObject")
    name = ref.get("name") or _name_of(response) or _name_of(request)
    if not name:
        return None
    user = (event.get("impersonatedUser") or event.get("user") or {}).get("username", "")
    return Write(
        seq=seq,
        received=event["requestReceivedTimestamp"],
        completed=event["stageTimestamp"],
        user=user,
        verb=event["verb"],
        group=ref.get("apiGroup", ""),
        resource=ref.get("resource", ""),
        namespace=ref.get("namespace", ""),
        name=name,
        subresource=ref.get("subresource", ""),
        code=(event.get("responseStatus") or {}).get("code", 0),
        request=request,
        response=response,
    )


def _name_of(body: dict[str, Any] | None) -> str | None:
    if not body:
        return None
    name = (body.get("metadata") or {}).get("name")
    return name if isinstance(name, str) else None


def parse(lines: list[str]) -> list[Write]:
    found = (parse_line(seq, line) for seq, line in enumerate(lines))
    return [w for w in found if w is not None]


class AuditTail:
    """Reads what the audit log gained since a mark, across one rotation."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._inode, self._offset = self._position()

    def _position(self) -> tuple[int, int]:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return 0, 0
        return stat.st_ino, stat.st_size

    def mark(self) -> None:
        self._inode, self._offset = self._position()

    def read(self) -> list[str]:
        """The lines written since the mark (only whole lines)."""
        inode, _ = self._position()
        text = b""
        if inode != self._inode:  # rotated: the rest of the old file is the newest backup
            backups = sorted(self.path.parent.glob(f"{self.path.stem}-*{self.path.suffix}"))
            if backups:
                text += _read_from(backups[-1], self._offset)
            text += _read_from(self.path, 0)
        else:
            text += _read_from(self.path, self._offset)
        return [line for line in text.decode(errors="replace").split("\n") if line.strip()]


def _read_from(path: Path, offset: int) -> bytes:
    with path.open("rb") as handle:
        handle.seek(offset)
        return handle.read()
