"""A TLS proxy in front of the API server that can hold chosen requests: a hung call.

Janus must bound every request in time and never let one that completes late
write behind its own rollback. To test that on the real API server, the worker
is pointed (by a kubeconfig) at this proxy on loopback. The proxy terminates
TLS with the API server's own serving certificate (valid for 127.0.0.1 on any
port), reads each HTTP request, and forwards it upstream as the admin user,
one request per connection. A ``Hold`` rule matching a request's method and
path delays it, or keeps it forever: the client sees a request that never
answers. A delayed request is forwarded when its time is up *even if the client
has given up*: it models a request already on its way, which the API server
still carries out.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml


@dataclass
class Hold:
    """Hold requests whose ``METHOD path`` matches ``pattern``: for ``seconds``, or
    forever (None); at most ``times`` of them."""

    pattern: str
    seconds: float | None = None
    times: int = 1
    body: str | None = None
    held: list[str] = field(default_factory=list)
    begun: threading.Event = field(default_factory=threading.Event)
    delivered: threading.Event = field(default_factory=threading.Event)

    def matches(self, line: str, request: bytes) -> bool:
        if len(self.held) >= self.times or re.search(self.pattern, line) is None:
            return False
        return self.body is None or self.body.encode() in request


class HoldProxy:
    """The proxy, run on its own event loop in a thread; ``kubeconfig`` points at it."""

    def __init__(self, state_dir: Path, admin_kubeconfig: Path, out_dir: Path) -> None:
        pki = state_dir / "pki"
        config = yaml.safe_load(admin_kubeconfig.read_text())
        self.upstream = urlsplit(config["clusters"][0]["cluster"]["server"])
        self._serve_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._serve_tls.load_cert_chain(pki / "apiserver.crt", pki / "apiserver.key")
        self._upstream_tls = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        self._upstream_tls.load_cert_chain(pki / "admin.crt", pki / "admin.key")
        self.rules: list[Hold] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stopping: asyncio.Event | None = None
        self.port = 0
        self._thread = threading.Thread(target=self._main, name="hold-proxy", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{self.port}"
        self.kubeconfig = out_dir / "proxied.kubeconfig"
        self.kubeconfig.write_text(yaml.safe_dump(config))

    def hold(
        self, pattern: str, seconds: float | None = None, times: int = 1, body: str | None = None
    ) -> Hold:
        rule = Hold(pattern, seconds, times, body)
        self.rules.append(rule)
        return rule

    def close(self) -> None:
        if self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(10)

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        server = await asyncio.start_server(self._connection, "127.0.0.1", 0, ssl=self._serve_tls)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stopping.wait()

    async def _connection(self, reader: asyncio.StreamReader, writer: Any) -> None:
        try:
            request = await _read_request(reader)
            if request is None:
                return
            line = request.split(b"\r\n", 1)[0].decode(errors="replace")
            method, path = line.split(" ")[:2]
            target = f"{method} {path}"
            held = next((r for r in self.rules if r.matches(target, request)), None)
            if held is not None:
                held.held.append(target)
                held.begun.set()
                if held.seconds is None:
                    await self._stopping.wait()  # type: ignore[union-attr]
                    return
                await asyncio.sleep(held.seconds)
            response = await self._forward(request)
            if held is not None:
                held.delivered.set()
            try:
                writer.write(response)
                await writer.drain()
            except (ConnectionError, OSError):
                pass  # the client gave up; the request was carried out all the same
        except (ConnectionError, OSError, ssl.SSLError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _forward(self, request: bytes) -> bytes:
        host, port = self.upstream.hostname, self.upstream.port or 443
        reader, writer = await asyncio.open_connection(
            host, port, ssl=self._upstream_tls, server_hostname=host
        )
        try:
            writer.write(request)
            await writer.drain()
            return await reader.read(-1)
        finally:
            writer.close()


async def _read_request(reader: asyncio.StreamReader) -> bytes | None:
    """One request, its headers rewritten to close the connection after it."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head[:-4].split(b"\r\n")
    length = 0
    kept = [lines[0]]
    for header in lines[1:]:
        name, _, value = header.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
        if name.strip().lower() in (b"connection", b"keep-alive"):
            continue
        kept.append(header)
    kept.append(b"Connection: close")
    body = await reader.readexactly(length) if length else b""
    return b"\r\n".join(kept) + b"\r\n\r\n" + body
