"""A TCP proxy on loopback in front of the API server, to make requests hang or drop.

The worker's kubeconfig points here; TLS passes through untouched (the
proxy sees bytes only). Faults are armed for the next requests: the next
``count`` chunks a client sends, on any connection, are delayed, held back
for ``seconds`` and then the connection closed (a request that hangs past any
timeout), or dropped at once (a connection reset mid-request). It runs its own
event loop in a thread, so the campaign's loop never blocks on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from dataclasses import dataclass
from typing import Literal

ProxyFault = Literal["delay", "hang", "drop"]
CHUNK = 65536


@dataclass
class Armed:
    kind: ProxyFault
    count: int
    seconds: float


class FaultProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self.fired: dict[str, int] = {"delay": 0, "hang": 0, "drop": 0}
        self._armed: Armed | None = None
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="fault-proxy")
        self._writers: set[asyncio.StreamWriter] = set()

    def start(self) -> FaultProxy:
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("the fault proxy did not start")
        return self

    def arm(self, kind: ProxyFault, count: int, seconds: float = 0.0) -> None:
        with self._lock:
            self._armed = Armed(kind, count, seconds)

    def disarm(self) -> None:
        with self._lock:
            self._armed = None

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _take(self) -> Armed | None:
        with self._lock:
            armed = self._armed
            if armed is None:
                return None
            armed.count -= 1
            if armed.count <= 0:
                self._armed = None
            self.fired[armed.kind] += 1
            return Armed(armed.kind, 1, armed.seconds)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._started.set()
        self._loop.run_forever()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            client_w.close()
            return
        upward = asyncio.ensure_future(self._pipe(client_r, server_w, faulty=True))
        downward = asyncio.ensure_future(self._pipe(server_r, client_w, faulty=False))
        await asyncio.wait([upward, downward], return_when=asyncio.FIRST_COMPLETED)
        for task in (upward, downward):
            task.cancel()
        for writer in (client_w, server_w):
            with contextlib.suppress(Exception):
                writer.close()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, faulty: bool
    ) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while chunk := await reader.read(CHUNK):
                fault = self._take() if faulty else None
                if fault is not None:
                    if fault.kind == "drop":
                        return
                    await asyncio.sleep(fault.seconds)
                    if fault.kind == "hang":
                        return
                writer.write(chunk)
                await writer.drain()
