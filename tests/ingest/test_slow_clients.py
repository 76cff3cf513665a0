"""Clients that hold a connection without finishing a request: a trickled request head
(slowloris), a stalled body, a head with too many lines, and more connections than the node
takes. Raw TLS sockets with a camera's certificate, against the real server; every wait is
for the server's answer or its closing of the socket, never a sleep."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bodycamd.errors import ConfigError
from bodycamd.ingest.app import RunningIngest, running_ingest
from bodycamd.ingest.config import load_config

from .helpers import Camera, Rig, encode_metadata, make_rig

OFFSET_TYPE = "application/offset+octet-stream"


@contextlib.asynccontextmanager
async def tls_socket(
    rig: Rig, camera: Camera, server: RunningIngest
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection(
        server.host, server.port, ssl=rig.client_context(camera)
    )
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def upload_whole(rig: Rig, camera: Camera, server: RunningIngest) -> None:
    """A camera's ordinary upload on the same server: create, one PATCH, receipt."""
    sealed = camera.segment()
    data = sealed.path.read_bytes()
    async with rig.client(camera, server.url) as c:
        created = await c.post(
            "/files/",
            headers={
                "Upload-Length": str(len(data)),
                "Upload-Metadata": encode_metadata(camera.metadata(sealed)),
            },
        )
        assert created.status_code == 201, created.text
        patched = await c.patch(
            created.headers["Location"],
            content=data,
            headers={"Upload-Offset": "0", "Content-Type": OFFSET_TYPE},
        )
        assert patched.status_code == 204, patched.text
        assert (await c.get(f"/receipts/{sealed.digest.hex()}")).status_code == 200


async def test_a_trickled_request_head_is_cut_off_at_header_timeout(tmp_path: Path) -> None:
    """The client never stops sending header bytes, one per TLS record, and never ends the
    head: the server closes the connection `header_timeout` after the handshake, without an
    answer (bytes arriving do not extend the deadline). The field limit is raised so that the
    trickle cannot hit it first. A normal upload on the same server still works."""
    rig = make_rig(tmp_path, header_timeout=0.5, max_header_bytes=1 << 20)
    camera = rig.enroll("cam-1")
    loop = asyncio.get_running_loop()
    async with running_ingest(rig.config, port=0) as server:
        async with tls_socket(rig, camera, server) as (reader, writer):
            began = loop.time()  # the server's clock starts later, at its end of the handshake
            sent = 0

            async def trickle() -> None:
                nonlocal sent
                head = b"PATCH /files/x HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
                for byte in head + b"a" * (1 << 30):
                    if reader.at_eof() or writer.is_closing():
                        return
                    writer.write(bytes([byte]))
                    sent += 1
                    await asyncio.sleep(0)  # one turn of the loop (the server shares it)

            trickler = asyncio.create_task(trickle())
            answer = await reader.read()  # until the server closes the connection
            closed_after = loop.time() - began
            trickler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await trickler
        assert answer == b""  # closed, not answered
        assert closed_after >= 0.5
        assert sent > 60  # it was still trickling when cut off
        await upload_whole(rig, camera, server)


async def test_a_stalled_body_is_answered_408_and_keeps_its_bytes(
    tmp_path: Path,
) -> None:
    """Head and 10 of 100 declared body bytes, then nothing: 408 after `read_timeout`, and
    the 10 bytes are the upload's offset."""
    rig = make_rig(tmp_path, read_timeout=0.5)
    camera = rig.enroll("cam-1")
    sealed = camera.segment()
    async with running_ingest(rig.config, port=0) as server:
        async with rig.client(camera, server.url) as c:
            created = await c.post(
                "/files/",
                headers={
                    "Upload-Length": "1000",
                    "Upload-Metadata": encode_metadata(camera.metadata(sealed)),
                },
            )
            assert created.status_code == 201, created.text
            location = created.headers["Location"]
            path = location.removeprefix(server.url)
            async with tls_socket(rig, camera, server) as (reader, writer):
                writer.write(
                    f"PATCH {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\n"
                    f"Upload-Offset: 0\r\nContent-Type: {OFFSET_TYPE}\r\n"
                    "Content-Length: 100\r\n\r\n".encode()
                    + b"x" * 10
                )
                await writer.drain()
                head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 408 "), head
            assert (await c.head(location)).headers["Upload-Offset"] == "10"


async def test_a_head_with_too_many_lines_is_refused(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, max_headers=20)
    camera = rig.enroll("cam-1")
    async with running_ingest(rig.config, port=0) as server, rig.client(camera, server.url) as c:
        many = {f"X-Pad-{n}": "p" for n in range(25)}
        assert (await c.options("/files/", headers=many)).status_code in (400, 431)
        assert (await c.options("/files/")).status_code == 204  # a new connection is served


async def test_connections_past_max_connections_are_dropped_at_once(
    tmp_path: Path,
) -> None:
    """Two connections held open, max_connections 2: a third is dropped before its TLS
    handshake; once one of the two is closed, a new one is taken again."""
    rig = make_rig(tmp_path, max_connections=2)
    camera = rig.enroll("cam-1")
    async with running_ingest(rig.config, port=0) as server:
        async with tls_socket(rig, camera, server), tls_socket(rig, camera, server) as (_, held):
            with pytest.raises((OSError, ssl.SSLError)):
                async with tls_socket(rig, camera, server):
                    pass
            held.close()
            await held.wait_closed()
            for _ in range(100):  # until the server has seen the close: each try is an event
                with contextlib.suppress(OSError, ssl.SSLError):
                    async with tls_socket(rig, camera, server) as (reader, writer):
                        writer.write(b"OPTIONS /files/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                        answer = await reader.readuntil(b"\r\n\r\n")
                        break
            else:
                raise AssertionError("no connection was taken after one of the two closed")
            assert answer.startswith(b"HTTP/1.1 204 ")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('header_timeout = "soon"', r"\[limits\]\.header_timeout: expected float, got str"),
        ("max_connections = 0", r"\[limits\]\.max_connections: expected a positive number"),
        ("max_headers = 1.5", r"\[limits\]\.max_headers: expected int, got float"),
    ],
)
def test_the_new_limits_are_checked(tmp_path: Path, line: str, message: str) -> None:
    rig = make_rig(tmp_path)
    path = rig.directory / "ingest.toml"
    name = line.split(" = ")[0]
    text = path.read_text().replace(f"\n{name} = ", f"\n{line}\n# was: ", 1)
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(rig.directory)


def test_init_writes_the_new_limits(tmp_path: Path) -> None:
    limits = make_rig(tmp_path).config.limits
    assert (limits.header_timeout, limits.max_headers, limits.max_connections) == (30.0, 32, 1024)
    text = (tmp_path / "ingest" / "ingest.toml").read_text()
    assert "\nheader_timeout = 30.0\n" in text and "\nmax_connections = 1024\n" in text
