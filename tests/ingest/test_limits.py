"""Every limit and every malformed request gets a tus-correct 4xx with a reason."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bodycamd.ingest.app import running_ingest

from .helpers import Camera, Rig, encode_metadata, make_rig

OFFSET_TYPE = {"Content-Type": "application/offset+octet-stream"}


@pytest.fixture
def small(tmp_path: Path) -> Rig:
    return make_rig(
        tmp_path,
        max_upload_bytes=1_000_000,
        max_uploads_per_device=2,
        max_request_body_bytes=100_000,
    )


async def create(client: httpx.AsyncClient, camera: Camera, length: int = 500_000) -> str:
    sealed = camera.segment()
    response = await client.post(
        "/files/",
        headers={
            "Upload-Length": str(length),
            "Upload-Metadata": encode_metadata(camera.metadata(sealed)),
        },
    )
    assert response.status_code == 201, response.text
    return response.headers["Location"]


async def test_options_advertises_the_server(small: Rig) -> None:
    camera = small.enroll("cam-1")
    async with (
        running_ingest(small.config, port=0) as server,
        small.client(camera, server.url) as c,
    ):
        response = await c.options("/files/")
    assert response.status_code == 204
    assert response.headers["Tus-Version"] == "1.0.0"
    assert response.headers["Tus-Max-Size"] == "1000000"
    assert set(response.headers["Tus-Extension"].split(",")) == {
        "creation",
        "creation-with-upload",
        "termination",
        "checksum",
        "expiration",
    }
    assert response.headers["Tus-Checksum-Algorithm"] == "sha256"


async def test_creation_refusals(small: Rig) -> None:
    camera = small.enroll("cam-1")
    sealed = camera.segment()
    metadata = encode_metadata(camera.metadata(sealed))
    async with (
        running_ingest(small.config, port=0) as server,
        small.client(camera, server.url) as c,
    ):
        cases = [
            ({"Tus-Resumable": "0.2.2", "Upload-Length": "10", "Upload-Metadata": metadata}, 412),
            ({"Upload-Metadata": metadata}, 400),
            ({"Upload-Length": "ten", "Upload-Metadata": metadata}, 400),
            ({"Upload-Defer-Length": "1", "Upload-Metadata": metadata}, 400),
            ({"Upload-Length": "1000001", "Upload-Metadata": metadata}, 413),
            ({"Upload-Length": "10", "Upload-Metadata": "device !!!"}, 400),
            ({"Upload-Length": "10", "Upload-Metadata": encode_metadata({"device": "cam-1"})}, 400),
        ]
        answers = [(await c.post("/files/", headers=h)).status_code for h, _ in cases]
        precondition = await c.post("/files/", headers={"Tus-Resumable": "0.2.2"})
    assert answers == [status for _, status in cases]
    assert precondition.headers["Tus-Version"] == "1.0.0"


async def test_uploads_in_flight_per_device(small: Rig) -> None:
    camera, other = small.enroll("cam-1"), small.enroll("cam-2")
    async with running_ingest(small.config, port=0) as server:
        async with small.client(camera, server.url) as c:
            first = await create(c, camera)
            await create(c, camera)
            sealed = camera.segment()
            refused = await c.post(
                "/files/",
                headers={
                    "Upload-Length": "10",
                    "Upload-Metadata": encode_metadata(camera.metadata(sealed)),
                },
            )
            assert refused.status_code == 429
            assert "2 uploads in flight" in refused.text
            assert (await c.delete(first)).status_code == 204
            await create(c, camera)
        async with small.client(other, server.url) as c:
            await create(c, other)


async def test_patch_refusals(small: Rig) -> None:
    camera = small.enroll("cam-1")
    async with (
        running_ingest(small.config, port=0) as server,
        small.client(camera, server.url) as c,
    ):
        location = await create(c, camera, length=150_000)
        wrong_type = await c.patch(location, content=b"x", headers={"Upload-Offset": "0"})
        assert wrong_type.status_code == 415
        no_offset = await c.patch(location, content=b"x", headers=OFFSET_TYPE)
        assert no_offset.status_code == 400
        ok = await c.patch(
            location, content=b"x" * 10, headers={"Upload-Offset": "0", **OFFSET_TYPE}
        )
        assert ok.status_code == 204
        conflict = await c.patch(
            location, content=b"x", headers={"Upload-Offset": "3", **OFFSET_TYPE}
        )
        assert conflict.status_code == 409
        assert conflict.headers["Upload-Offset"] == "10"
        too_big = await c.patch(
            location, content=b"x" * 100_001, headers={"Upload-Offset": "10", **OFFSET_TYPE}
        )
        assert too_big.status_code == 413

        async def endless() -> AsyncIterator[bytes]:  # chunked: no Content-Length to judge by
            for _ in range(20):
                yield b"y" * 10_000

        streamed = await c.patch(
            location, content=endless(), headers={"Upload-Offset": "10", **OFFSET_TYPE}
        )
        assert streamed.status_code == 413
        head = await c.head(location)
        # a refused body keeps what was received up to the limit, never more
        assert 10 <= int(head.headers["Upload-Offset"]) <= 100_010
        offset = head.headers["Upload-Offset"]
        algorithm = await c.patch(
            location,
            content=b"z",
            headers={"Upload-Offset": offset, "Upload-Checksum": "md5 AAAA", **OFFSET_TYPE},
        )
        assert algorithm.status_code == 400
        long_header = await c.patch(
            location,
            content=b"z",
            headers={"Upload-Offset": offset, "X-Pad": "p" * 9000, **OFFSET_TYPE},
        )
        assert long_header.status_code in (400, 431)
        short = await create(c, camera, length=20)
        past_end = await c.patch(
            short, content=b"z" * 30, headers={"Upload-Offset": "0", **OFFSET_TYPE}
        )
        assert past_end.status_code == 413
        assert "Upload-Length 20" in past_end.text
        missing = await c.head(f"{server.url}/files/{base64.urlsafe_b64encode(b'n' * 18).decode()}")
        assert missing.status_code == 404
