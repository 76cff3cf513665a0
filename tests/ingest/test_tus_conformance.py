"""tus 1.0.0 conformance against tuspy, a client nobody here wrote: create, upload in chunks,
resume after a cut connection, checksum mismatch (460), expiry, termination."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import socket
import ssl
from typing import Any

import pytest
from tusclient.client import TusClient
from tusclient.exceptions import TusCommunicationError, TusUploadFailed
from tusclient.uploader import Uploader

from bodycamd.evidence.writer import SealedSegment
from bodycamd.ingest.app import running_ingest, sweep_once
from bodycamd.receipt import check_covers, parse_receipt, receipt_key_id

from .helpers import Camera, FakeClock, Rig, audit_events

pytestmark = pytest.mark.usefixtures("trust_ingest_ca")


class Sha256Uploader(Uploader):
    CHECKSUM_ALGORITHM_PAIR = ("sha256", hashlib.sha256)


def _wrong_sha256(data: bytes) -> Any:
    return hashlib.sha256(data + b"not what was sent")


class LyingUploader(Uploader):
    CHECKSUM_ALGORITHM_PAIR = ("sha256", _wrong_sha256)


def tus_client(url: str, camera: Camera) -> TusClient:
    return TusClient(f"{url}/files/", client_cert=camera.cert_pair)


def tus_upload(
    base: str, camera: Camera, sealed: SealedSegment, cls: type[Uploader] = Uploader, **kw: Any
) -> Uploader:
    """A tuspy uploader for `sealed` (from memory: tuspy leaves files it opens unclosed)."""
    if "url" not in kw:
        kw["metadata"] = camera.metadata(sealed)
    stream = io.BytesIO(sealed.path.read_bytes())
    return cls(file_stream=stream, client=tus_client(base, camera), **kw)


async def started(base: str, camera: Camera, sealed: SealedSegment) -> Uploader:
    """An upload of `sealed` created and its first 50,000 bytes sent."""
    uploader = tus_upload(base, camera, sealed, chunk_size=50_000)
    await asyncio.to_thread(uploader.upload, 50_000)
    return uploader


async def fetch_receipt(rig: Rig, url: str, camera: Camera, digest: str) -> Any:
    async with rig.client(camera, url) as client:
        return await client.get(f"/receipts/{digest}")


async def test_chunked_upload_gets_a_receipt_that_verifies(rig: Rig) -> None:
    camera = rig.enroll("cam-1")
    sealed = camera.segment(size=300_000)
    async with running_ingest(rig.config, port=0) as server:
        uploader = tus_upload(
            server.url,
            camera,
            sealed,
            Sha256Uploader,
            chunk_size=64 * 1024,
            upload_checksum=True,
        )
        await asyncio.to_thread(uploader.upload)
        assert uploader.offset == sealed.size
        response = await fetch_receipt(rig, server.url, camera, sealed.digest.hex())
    assert response.status_code == 200
    public = rig.receipt_public()
    receipt = parse_receipt(response.content, {receipt_key_id(public): public})
    check_covers(receipt, digest=sealed.digest.hex(), size=sealed.size, device_id="cam-1")
    assert (receipt.verdict, receipt.index) == ("complete", 0)
    assert receipt.recording_id == str(sealed.recording_id)
    stored = rig.config.path(rig.config.store_path) / "segments" / "cam-1"
    assert (stored / str(sealed.recording_id) / "000000.seg").read_bytes() == (
        sealed.path.read_bytes()
    )


def _cut_patch(url: str, rig: Rig, camera: Camera, body: bytes, offset: int, sent: int) -> None:
    """Send a PATCH that announces `body` but stops after `sent` bytes: a cable pulled."""
    authority, path = url.removeprefix("https://").split("/", 1)
    host, port = authority.rsplit(":", 1)
    context = rig.client_context(camera)
    with socket.create_connection((host, int(port))) as raw:
        with context.wrap_socket(raw, server_hostname=host) as tls:
            head = (
                f"PATCH /{path} HTTP/1.1\r\nHost: {host}:{port}\r\nTus-Resumable: 1.0.0\r\n"
                f"Upload-Offset: {offset}\r\nContent-Type: application/offset+octet-stream\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            )
            tls.sendall(head.encode() + body[:sent])
            with contextlib.suppress(ssl.SSLError, OSError):
                tls.unwrap()


async def test_resume_after_a_cut_keeps_what_arrived(rig: Rig) -> None:
    camera = rig.enroll("cam-1")
    sealed = camera.segment(size=400_000)
    data = sealed.path.read_bytes()
    async with running_ingest(rig.config, port=0) as server:
        first = tus_upload(
            server.url,
            camera,
            sealed,
            Uploader,
            chunk_size=100_000,
        )
        await asyncio.to_thread(first.upload, 100_000)
        assert first.offset == 100_000
        url = first.url
        await asyncio.to_thread(_cut_patch, url, rig, camera, data[100_000:], 100_000, 150_000)
        resumed = await asyncio.to_thread(
            tus_upload, server.url, camera, sealed, url=url, chunk_size=100_000
        )
        # tuspy asked the server (HEAD) where to go on. The bytes of the cut PATCH that the
        # server had consumed are kept, exactly; none that never arrived (how many were consumed
        # before the cut is the network's business; test_fs_store pins it down).
        assert 100_000 <= resumed.offset <= 250_000
        upload = url.rsplit("/", 1)[1]
        stored = rig.config.path(rig.config.store_path) / "uploads" / "cam-1" / upload / "data"
        assert stored.read_bytes()[: resumed.offset] == data[: resumed.offset]
        await asyncio.to_thread(resumed.upload)
        response = await fetch_receipt(rig, server.url, camera, sealed.digest.hex())
    assert response.status_code == 200


async def test_checksum_mismatch_is_460_and_the_chunk_is_discarded(rig: Rig) -> None:
    camera = rig.enroll("cam-1")
    sealed = camera.segment()
    async with running_ingest(rig.config, port=0) as server:
        good = tus_upload(
            server.url,
            camera,
            sealed,
            Sha256Uploader,
            chunk_size=50_000,
            upload_checksum=True,
        )
        await asyncio.to_thread(good.upload, 50_000)
        lying = await asyncio.to_thread(
            tus_upload,
            server.url,
            camera,
            sealed,
            LyingUploader,
            url=good.url,
            chunk_size=50_000,
            upload_checksum=True,
        )
        with pytest.raises(TusUploadFailed) as refused:
            await asyncio.to_thread(lying.upload_chunk)
        assert refused.value.status_code == 460
        assert b"does not match its Upload-Checksum" in refused.value.response_content
        assert await asyncio.to_thread(lying.get_offset) == 50_000


async def test_expired_upload_is_gone(rig: Rig, clock: FakeClock) -> None:
    camera = rig.enroll("cam-1")
    sealed = camera.segment()
    async with running_ingest(rig.config, port=0, clock=clock, sweep=False) as server:
        uploader = await started(server.url, camera, sealed)
        async with rig.client(camera, server.url) as http:
            head = await http.head(uploader.url)
        expires = head.headers["Upload-Expires"]
        assert expires.endswith("GMT")
        clock.advance(rig.config.limits.upload_expiry - 1)
        await sweep_once(server.context)
        assert await asyncio.to_thread(uploader.get_offset) == 50_000
        clock.advance(2)
        await sweep_once(server.context)
        with pytest.raises(TusCommunicationError) as gone:
            await asyncio.to_thread(uploader.get_offset)
        assert gone.value.status_code == 404
    assert not list((rig.config.path(rig.config.store_path) / "uploads" / "cam-1").iterdir())


async def test_head_after_expiry_says_gone_before_the_sweep(rig: Rig, clock: FakeClock) -> None:
    camera = rig.enroll("cam-1")
    sealed = camera.segment()
    async with running_ingest(rig.config, port=0, clock=clock, sweep=False) as server:
        uploader = await started(server.url, camera, sealed)
        clock.advance(rig.config.limits.upload_expiry + 1)
        with pytest.raises(TusCommunicationError) as gone:
            await asyncio.to_thread(uploader.get_offset)
        assert gone.value.status_code == 410


async def test_termination(rig: Rig) -> None:
    camera = rig.enroll("cam-1")
    sealed = camera.segment()
    async with running_ingest(rig.config, port=0) as server:
        uploader = await started(server.url, camera, sealed)
        async with rig.client(camera, server.url) as http:
            deleted = await http.delete(uploader.url)
            assert deleted.status_code == 204
            again = await http.delete(uploader.url)
            assert again.status_code == 404
        with pytest.raises(TusCommunicationError) as gone:
            await asyncio.to_thread(uploader.get_offset)
        assert gone.value.status_code == 404
    events = [e["event"] for e in await audit_events(rig)]
    assert "upload.terminated" in events
