"""Real servers on 127.0.0.1 for the uploader's tests, and the instruments around them.

- `Pki`: a trustme CA, a server certificate for 127.0.0.1 and a device client certificate
  (CN = device name), written as PEM files.
- `TuspyPeer`: tuspyserver (PyPI, nobody here wrote it) in uvicorn, in this process, behind
  `Faults`, an ASGI layer that can answer a request itself (503 + Retry-After, 413…) or make
  HEAD lie about the offset so tuspyserver answers a genuine 409 to the PATCH that follows.
  With `receipts`, it also serves `GET /files/receipts/{digest}` from a dict of wire bytes
  (what the project's ingest does), so receipt handling can be tested against a real server.
- `NodePeer`: @tus/server + @tus/file-store (npm, pinned in tests/peers/package-lock.json)
  as a subprocess, over https with required client certificates; can be SIGKILLed and
  restarted on the same port and directory.
- `CuttingProxy`: a TCP relay that counts bytes going up and can hold them at a threshold
  (a request provably in flight) or cut every connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trustme
import uvicorn
from fastapi import FastAPI
from fastapi.responses import Response
from tuspyserver import create_tus_router

PEERS = Path(__file__).resolve().parents[1] / "peers"

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


@dataclass
class Pki:
    root: Path
    ca: trustme.CA = field(default_factory=trustme.CA)
    device: str = "test-cam"

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.ca_file = self.root / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        server = self.ca.issue_cert("127.0.0.1", "localhost")
        self.server_cert = self.root / "server.pem"
        self.server_key = self.root / "server.key"
        server.cert_chain_pems[0].write_to_path(str(self.server_cert))
        server.private_key_pem.write_to_path(str(self.server_key))
        client = self.ca.issue_cert(f"{self.device}.devices.invalid", common_name=self.device)
        self.client_cert = self.root / "client.pem"
        self.client_key = self.root / "client.key"
        client.cert_chain_pems[0].write_to_path(str(self.client_cert))
        client.private_key_pem.write_to_path(str(self.client_key))
        for key in (self.server_key, self.client_key):  # private keys are refused otherwise
            key.chmod(0o600)


@dataclass
class Rule:
    method: str
    status: int | None = None  # answer this status instead of the server
    headers: dict[str, str] = field(default_factory=dict)
    lie_offset: int | None = None  # HEAD: report this Upload-Offset instead
    times: int = 1


class Faults:
    """ASGI wrapper that lets the test decide what the next matching request meets."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.rules: list[Rule] = []
        self.seen: list[tuple[str, str, int]] = []  # (method, path, status)

    def add(self, rule: Rule) -> None:
        self.rules.append(rule)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        rule = next((r for r in self.rules if r.method == method and r.times > 0), None)
        if rule is not None:
            rule.times -= 1
        if rule is not None and rule.status is not None:
            self.seen.append((method, path, rule.status))
            headers = [(k.lower().encode(), v.encode()) for k, v in rule.headers.items()]
            await send({"type": "http.response.start", "status": rule.status, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return

        async def recording_send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                self.seen.append((method, path, message["status"]))
                if rule is not None and rule.lie_offset is not None:
                    message["headers"] = [
                        (k, str(rule.lie_offset).encode() if k.lower() == b"upload-offset" else v)
                        for k, v in message["headers"]
                    ]
            await send(message)

        await self.app(scope, receive, recording_send)


def free_socket() -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


class TuspyPeer:
    def __init__(self, files: Path, pki: Pki | None, *, max_size: int = 2**34) -> None:
        self.files = files
        self.receipts: dict[str, bytes] = {}
        self.completed: list[dict[str, Any]] = []
        app = FastAPI()

        def completed(path: str, metadata: dict[str, Any]) -> None:
            self.completed.append({"path": path, **metadata})

        app.include_router(
            create_tus_router(
                prefix="files",
                files_dir=str(files),
                max_size=max_size,
                on_upload_complete=completed,
            )
        )

        @app.get("/files/receipts/{digest}")
        def receipt(digest: str) -> Response:
            wire = self.receipts.get(digest)
            if wire is None:
                return Response(status_code=404)
            return Response(wire, media_type="application/json")

        self.faults = Faults(app)
        self._sock = free_socket()
        self.port = self._sock.getsockname()[1]
        tls: dict[str, Any] = {}
        if pki is not None:
            tls = {
                "ssl_certfile": str(pki.server_cert),
                "ssl_keyfile": str(pki.server_key),
                "ssl_ca_certs": str(pki.ca_file),
                "ssl_cert_reqs": ssl.CERT_REQUIRED,
            }
        self.scheme = "https" if pki else "http"
        config = uvicorn.Config(self.faults, log_level="warning", lifespan="off", **tls)
        self._server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None

    @property
    def endpoint(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/files"

    async def __aenter__(self) -> TuspyPeer:
        self._task = asyncio.create_task(self._server.serve(sockets=[self._sock]))
        while not self._server.started:  # noqa: ASYNC110 - uvicorn has no started event
            await asyncio.sleep(0.01)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await self._task
        self._sock.close()


class NodePeer:
    """@tus/server with @tus/file-store in node (tests/peers/server.mjs)."""

    def __init__(self, files: Path, pki: Pki | None, *, max_size: int | None = None) -> None:
        self.files = files
        self.pki = pki
        self.max_size = max_size
        self.port = 0
        self.proc: subprocess.Popen[str] | None = None

    @staticmethod
    def available() -> str | None:
        """None when node and the npm packages are there; else why not."""
        if shutil.which("node") is None:
            return "node is not installed"
        if not (PEERS / "node_modules" / "@tus" / "server").is_dir():
            return "npm ci --prefix tests/peers has not run"
        return None

    @property
    def endpoint(self) -> str:
        scheme = "https" if self.pki else "http"
        return f"{scheme}://127.0.0.1:{self.port}/files"

    def start(self) -> None:
        args = ["node", str(PEERS / "server.mjs"), "--dir", str(self.files)]
        args += ["--port", str(self.port)]
        if self.max_size is not None:
            args += ["--max-size", str(self.max_size)]
        if self.pki is not None:
            pki = self.pki
            args += ["--cert", str(pki.server_cert), "--key", str(pki.server_key)]
            args += ["--ca", str(pki.ca_file)]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # {"port": N} once listening
        if not line:
            raise OSError(f"node tus server did not start (exit {self.proc.wait()})")
        self.port = json.loads(line)["port"]

    def kill(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def __enter__(self) -> NodePeer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()


class CuttingProxy:
    """127.0.0.1:port → 127.0.0.1:upstream, byte for byte (TLS passes through)."""

    def __init__(self, upstream: Callable[[], int]) -> None:
        self._upstream = upstream
        self.sent_up = 0
        self.hold_at: int | None = None
        self.held = asyncio.Event()
        self._release = asyncio.Event()
        self._writers: set[asyncio.StreamWriter] = set()
        self._relays: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> CuttingProxy:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Every relay ends here, its sockets closed: a relay left to the loop's teardown
        leaked its sockets into a later test as ResourceWarnings."""
        self.cut()
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
        for relay in self._relays:
            relay.cancel()
        await asyncio.gather(*self._relays, return_exceptions=True)

    def hold_after(self, count: int) -> None:
        """Stop relaying upward once `count` more bytes went up; `held` is set then."""
        self.hold_at = self.sent_up + count
        self.held.clear()
        self._release.clear()

    def release(self) -> None:
        self.hold_at = None
        self._release.set()

    def cut(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        relay = asyncio.current_task()
        assert relay is not None
        self._relays.add(relay)
        up_writer: asyncio.StreamWriter | None = None
        pumps: list[asyncio.Task[None]] = []
        try:
            try:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._upstream())
            except OSError:
                return
            self._writers |= {writer, up_writer}
            pumps = [
                asyncio.create_task(self._pump(reader, up_writer, upward=True)),
                asyncio.create_task(self._pump(up_reader, writer, upward=False)),
            ]
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pumps:
                task.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            for w in (writer, up_writer):
                if w is not None:
                    w.transport.abort()
                    self._writers.discard(w)
            self._relays.discard(relay)

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, upward: bool
    ) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(65536):
                if upward and self.hold_at is not None:
                    room = max(0, self.hold_at - self.sent_up)
                    if len(data) > room:
                        writer.write(data[:room])
                        self.sent_up += room
                        self.held.set()
                        await self._release.wait()
                        data = data[room:]
                if upward:
                    self.sent_up += len(data)
                writer.write(data)
                await writer.drain()


def write_segment(path: Path, size: int, seed: int = 1) -> Path:
    """Bytes standing in for a sealed segment (worker unit tests; the tus peers never look
    inside). Integration tests use segments written by the real writer through storage."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(size) if seed == 0 else _pattern(size, seed))
    return path


def _pattern(size: int, seed: int) -> bytes:
    block = bytes((i * seed + i // 251) % 256 for i in range(65536))
    return (block * (size // len(block) + 1))[:size]
