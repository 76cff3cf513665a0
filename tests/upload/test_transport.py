"""The uploader's HTTP client closes a connection whose TLS handshake is cancelled
(bodycamd/upload/transport.py): httpcore left that socket to the garbage collector, so an
undock or a recording start during a handshake leaked it until the next collection."""

from __future__ import annotations

import asyncio
import gc
import ssl
import sys
from collections.abc import Iterator

import httpx
import pytest

from bodycamd.upload.transport import make_http_client


@pytest.fixture
def unraisable(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """What the collector could not clean up quietly (unclosed sockets and transports)."""
    seen: list[str] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: seen.append(repr(u.exc_value)))
    yield seen


async def test_a_handshake_cancelled_leaves_no_socket_open(unraisable: list[str]) -> None:
    accepted = asyncio.Event()
    held: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # takes the connection, never answers the ClientHello
        accepted.set()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with make_http_client(ssl.create_default_context()) as client:
            request = asyncio.ensure_future(client.get(f"https://127.0.0.1:{port}/files/"))
            await accepted.wait()  # connected: the handshake has begun and will not end
            for _ in range(3):  # the ClientHello is on its way
                await asyncio.sleep(0)
            request.cancel()
            with pytest.raises(asyncio.CancelledError):
                await request
    finally:
        for writer in held:
            writer.transport.abort()
        server.close()
        await server.wait_closed()
    for _ in range(3):  # closes scheduled by the aborts run
        await asyncio.sleep(0)
    gc.collect()
    assert [seen for seen in unraisable if "unclosed" in seen] == []


async def test_the_client_still_speaks_tls_and_refuses_an_untrusted_server() -> None:
    """The wrapped streams change nothing else: a handshake that fails is still a
    ConnectError (the uploader's 'server certificate not trusted')."""

    async def hello(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    import trustme

    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    server = await asyncio.start_server(hello, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    try:
        async with make_http_client(ssl.create_default_context()) as client:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await client.get(f"https://127.0.0.1:{port}/")
    finally:
        server.close()
        await server.wait_closed()
