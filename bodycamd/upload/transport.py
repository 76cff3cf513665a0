"""The uploader's HTTP client: httpx over httpcore, with one seam changed.

httpcore closes a connection whose TLS handshake fails with an Exception, but not one whose
handshake is *cancelled*: the socket was left to the garbage collector. The uploader
cancels requests on purpose (an undock, a recording starting), so every cancel that landed
in a handshake left a socket open until the next collection (found by tests/upload as
ResourceWarnings in whichever test ran the collector; reproduced in
tests/upload/test_transport.py). The network backend here is httpcore's own, with streams
that close themselves when their handshake does not finish, however it ends.

httpx takes no network backend, so it is set on the transport's connection pool, the one
place the pool reads it (httpx 0.27-0.28, httpcore 1.x; pinned in pyproject.toml).
"""

# The `timeout` parameters are httpcore's interface (AsyncNetworkStream/-Backend), not ours.
# ruff: noqa: ASYNC109

from __future__ import annotations

import ssl
import typing

import httpcore
import httpx


class _HandshakeClosingStream(httpcore.AsyncNetworkStream):
    def __init__(self, stream: httpcore.AsyncNetworkStream) -> None:
        self._stream = stream

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._stream.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._stream.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            return await self._stream.start_tls(ssl_context, server_hostname, timeout)
        except BaseException:
            await self._stream.aclose()  # closes the socket before its first await
            raise

    def get_extra_info(self, info: str) -> typing.Any:
        return self._stream.get_extra_info(info)


class HandshakeClosingBackend(httpcore.AsyncNetworkBackend):
    """httpcore's asyncio backend (anyio), its streams wrapped as above."""

    def __init__(self) -> None:
        self._backend = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._backend.connect_tcp(host, port, timeout, local_address, socket_options)
        return _HandshakeClosingStream(stream)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._backend.connect_unix_socket(path, timeout, socket_options)
        return _HandshakeClosingStream(stream)

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


def make_http_client(
    verify: ssl.SSLContext | bool, *, connect: float = 10.0, io: float = 60.0
) -> httpx.AsyncClient:
    """HTTP/1.1 with keep-alive, timeouts on every phase, no proxies from the environment,
    no redirects (a tus server has no reason to send one)."""
    transport = httpx.AsyncHTTPTransport(
        verify=verify,
        http1=True,
        http2=False,
        trust_env=False,
        limits=httpx.Limits(max_connections=2, max_keepalive_connections=1),
    )
    pool = transport._pool
    assert isinstance(pool, httpcore.AsyncConnectionPool)
    pool._network_backend = HandshakeClosingBackend()
    return httpx.AsyncClient(
        transport=transport,
        trust_env=False,
        follow_redirects=False,
        timeout=httpx.Timeout(io, connect=connect, pool=connect),
    )
