"""The running ingest: TLS gate, device identity, tus routes, expiry sweep, lifecycle.

TLS is done by a small gate in front of aiohttp rather than by aiohttp's own site, for one
reason: a refused handshake (no client certificate, one from another CA, TLS below 1.3) must
be audited, and asyncio reports a failed server-side handshake to nobody. The gate accepts the
TCP connection with reading paused, runs `loop.start_tls` (TLS 1.3 only, client certificate
required against the ingest's CA) and, once the peer is verified, hands the TLS transport to
aiohttp's request handler. A failure is audited (rate-limited) and the connection dropped.

Every request then passes `identify`: the subject CN of the verified certificate is the
device id; the registry must hold that device, unrevoked, with this certificate's serial.
A refused device gets 403 with the reason, audited.

A connection costs memory and a file descriptor for as long as the client keeps it, so each
wait on a client is bounded ([limits]): the handshake (`tls.handshake_timeout`), the whole
request head (`header_timeout`, through aiohttp's keep-alive timer; also the idle time between
requests), every wait for body bytes (`read_timeout`, tus.py), the head's size
(`max_header_bytes` a line, `max_headers` lines), and the number of connections
(`max_connections`: past it a new one is dropped before any TLS work).

All tasks (handshakes, the sweeper) belong to one TaskGroup that lives as long as the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import ssl
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .audit import AuditLog
from .config import IngestConfig
from .context import CONTEXT, DEVICE, IngestContext
from .errors import EnrolmentError, SegmentRejected, UploadNotFound
from .fs_store import FilesystemStore
from .pki import load_receipt_key, peer_certificate, serial_hex, server_ssl_context, subject_cn
from .store import IngestStore
from .tus import TUS_VERSION, Refusal, add_routes, tus_headers_needed
from .verify import Completion, decode_device_key

log = logging.getLogger(__name__)
Spawn = Callable[[Coroutine[Any, Any, None]], object]


def open_store(config: IngestConfig) -> IngestStore:
    """The store the config names (`[store] kind`)."""
    if config.store_kind == "s3":
        from .s3_store import open_s3_store  # type: ignore[import-not-found,unused-ignore]

        store: IngestStore = open_s3_store(config)
        return store
    return FilesystemStore(config.path(config.store_path), config.limits.max_buffered_bytes)


class Connections:
    """The node's open TCP connections: at most `limit` at once ([limits] max_connections),
    each one aborted when the server stops (TLS close_notify is not awaited then)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._all: weakref.WeakSet[asyncio.Transport] = weakref.WeakSet()
        self._warned = -math.inf

    def admit(self, transport: asyncio.Transport) -> bool:
        """Count `transport` in, or False when `limit` are open. A closed transport stays in
        the weak set until it is collected, so only the ones not closing count."""
        if sum(not t.is_closing() for t in self._all) >= self.limit:
            now = time.monotonic()
            if now - self._warned >= 60.0:  # a flood must not flood the log
                self._warned = now
                log.warning(
                    "%d connections open ([limits] max_connections): refusing more", self.limit
                )
            return False
        self._all.add(transport)
        return True

    def abort_all(self) -> None:
        for transport in list(self._all):
            transport.abort()


class TlsGate(asyncio.Protocol):
    """One per TCP connection: the TLS handshake, then aiohttp's protocol takes over."""

    def __init__(
        self,
        make_protocol: Callable[[], asyncio.Protocol],
        context: ssl.SSLContext,
        timeout: float,
        spawn: Spawn,
        refused: Callable[[str, str], Awaitable[None]],
        connections: Connections,
    ) -> None:
        self._connections = connections
        self._make_protocol = make_protocol
        self._context = context
        self._timeout = timeout
        self._spawn = spawn
        self._refused = refused

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        if not self._connections.admit(transport):
            transport.abort()  # before any TLS work: the camera retries later
            return
        transport.pause_reading()  # the ClientHello waits for start_tls
        self._spawn(self._handshake(transport))

    async def _handshake(self, transport: asyncio.Transport) -> None:
        loop = asyncio.get_running_loop()
        peer = transport.get_extra_info("peername")
        where = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        protocol = self._make_protocol()
        try:
            tls = await loop.start_tls(
                transport,
                protocol,
                self._context,
                server_side=True,
                ssl_handshake_timeout=self._timeout,
            )
        except ssl.SSLError as exc:
            transport.abort()
            await self._refused(where, exc.reason or str(exc))
            return
        except (OSError, TimeoutError):  # the peer went away or stalled: nothing to audit
            transport.abort()
            return
        if tls is None:  # pragma: no cover - start_tls returns None only on a closed transport
            return
        protocol.connection_made(tls)


@web.middleware
async def identify(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Bind the request to the enrolled device of its verified client certificate."""
    context = request.app[CONTEXT]
    transport = request.transport
    cert = peer_certificate(transport.get_extra_info("ssl_object") if transport else None)
    if cert is None:
        raise Refusal(403, "a client certificate is required")
    try:
        device_id = subject_cn(cert.subject, "client certificate")
    except EnrolmentError as exc:
        raise Refusal(403, str(exc)) from exc
    device = await context.store.get_device(device_id)
    reason = None
    if device is None:
        reason = f"device {device_id!r} is not enrolled"
    elif device.revoked:
        reason = f"device {device_id!r} is revoked"
    elif device.cert_serial != serial_hex(cert):
        reason = f"device {device_id!r}: this certificate was replaced by a newer enrolment"
    if reason is not None or device is None:
        await context.audit.record_refusal(
            "device.refused", device=device_id, serial=serial_hex(cert), reason=reason
        )
        raise Refusal(403, reason or "refused")
    if tus_headers_needed(request) and request.headers.get("Tus-Resumable") != TUS_VERSION:
        raise Refusal(412, f"Tus-Resumable: {TUS_VERSION} required", {"Tus-Version": TUS_VERSION})
    request[DEVICE] = device
    return await handler(request)


def build_app(context: IngestContext) -> web.Application:
    app = web.Application(
        middlewares=[identify], client_max_size=context.config.limits.max_request_body_bytes
    )
    app[CONTEXT] = context
    add_routes(app)
    return app


async def sweep_once(context: IngestContext) -> None:
    """Expire incomplete uploads past Upload-Expires; finish complete ones a crash left.
    One upload's failure is logged and does not stop the sweep (nor the server)."""
    for info in await context.store.uploads():
        try:
            if info.complete:
                device = await context.store.get_device(info.device_id)
                if device is not None:
                    key = decode_device_key(device.signing_key)
                    with contextlib.suppress(SegmentRejected, UploadNotFound):
                        await context.completion.complete(info, key)
            elif info.expires_at <= context.clock():
                await context.expire(info)
        except Exception:
            log.exception("sweep: upload %s of %s", info.upload_id, info.device_id)


@dataclass
class RunningIngest:
    context: IngestContext
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"


@contextlib.asynccontextmanager
async def running_ingest(
    config: IngestConfig,
    *,
    clock: Callable[[], float] = time.time,
    port: int | None = None,
    sweep: bool = True,
) -> AsyncIterator[RunningIngest]:
    """Serve until the block exits. `port=0` picks a free port (see `.port`)."""
    store = open_store(config)
    key = load_receipt_key(config.path(config.receipts.key))
    audit = AuditLog(store, key, clock)
    context = IngestContext(config, store, audit, Completion(store, audit, key, clock), clock)
    limits = config.limits
    runner = web.AppRunner(
        build_app(context),
        access_log=None,
        max_line_size=limits.max_header_bytes,
        max_field_size=limits.max_header_bytes,
        max_headers=limits.max_headers,
        # aiohttp's keep-alive timer runs from the connection's start and from each answer,
        # and closes the connection if no whole request head has arrived by then: exactly a
        # deadline for the head, which aiohttp has no other setting for
        keepalive_timeout=limits.header_timeout,
        handle_signals=False,
    )
    await runner.setup()
    ssl_context = server_ssl_context(config)
    loop = asyncio.get_running_loop()
    connections = Connections(limits.max_connections)

    async def refused(peer: str, why: str) -> None:
        await audit.record_refusal("tls.refused", peer=peer, reason=why)

    try:
        async with asyncio.TaskGroup() as tasks:
            server_factory = runner.server
            assert server_factory is not None
            server = await loop.create_server(
                lambda: TlsGate(
                    server_factory,
                    ssl_context,
                    config.tls.handshake_timeout,
                    tasks.create_task,
                    refused,
                    connections,
                ),
                config.server.listen,
                config.server.port if port is None else port,
            )
            bound = server.sockets[0].getsockname()
            sweeper = tasks.create_task(_sweeper(context)) if sweep else None
            try:
                yield RunningIngest(context, bound[0], bound[1])
            finally:
                server.close()
                if sweeper is not None:
                    sweeper.cancel()
                await runner.cleanup()
                connections.abort_all()
                await server.wait_closed()
    finally:
        await store.close()


async def _sweeper(context: IngestContext) -> None:
    while True:
        try:
            await sweep_once(context)
        except Exception:  # the store is unreachable now; the next sweep tries again
            log.exception("sweep failed")
        await asyncio.sleep(context.config.limits.sweep_interval)
