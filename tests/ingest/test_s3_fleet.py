"""Two ingest nodes sharing one bucket: an upload begun on node A, node A SIGKILLed in the
middle of a PATCH, the upload continued (HEAD + PATCH) and completed on node B; one receipt.

Both nodes are real `bodycamd-ingest serve` processes with the S3 store, on the same
ingest.toml (one CA, one receipt key), in front of moto's S3 server."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from bodycamd.ingest import cli
from bodycamd.ingest.s3_objects import S3Options
from bodycamd.ingest.s3_store import S3Store
from bodycamd.ingest.store import SegmentKey
from bodycamd.receipt import check_covers, parse_receipt, receipt_key_id

from .helpers import encode_metadata
from .s3_moto import MotoServer, free_port, make_bucket, make_s3_rig

MiB = 1 << 20
LEASE = 2.0  # how long a dead node's claim blocks the upload (the camera retries past it)


@contextlib.asynccontextmanager
async def ingest_node(directory: Path) -> AsyncIterator[tuple[str, asyncio.subprocess.Process]]:
    """`bodycamd-ingest serve` as its own process; yields its URL once it listens."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bodycamd.ingest.cli",
        "serve",
        "-c",
        str(directory),
        "--port",
        str(free_port()),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
        assert "listening on " in line, f"node did not start: {line!r}"
        yield line.split("listening on ")[1].strip(), process
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


async def test_an_upload_survives_its_node_being_killed(
    tmp_path: Path, moto: MotoServer, s3_env: dict[str, str]
) -> None:
    bucket = await make_bucket(moto.endpoint)
    rig = make_s3_rig(tmp_path, moto.endpoint, bucket, lease_seconds=LEASE)
    camera = rig.enroll("cam-1")
    sealed = camera.segment(size=7 * MiB)
    data = sealed.path.read_bytes()
    digest = sealed.digest.hex()
    store = S3Store(S3Options(bucket=bucket, endpoint_url=moto.endpoint))  # the test's eyes

    async with ingest_node(rig.directory) as (url_a, node_a), ingest_node(rig.directory) as (
        url_b,
        _node_b,
    ):
        async with rig.client(camera, url_a) as on_a, rig.client(camera, url_b) as on_b:
            created = await on_a.post(
                "/files/",
                headers={
                    "Upload-Length": str(len(data)),
                    "Upload-Metadata": encode_metadata(camera.metadata(sealed)),
                },
            )
            assert created.status_code == 201, created.text
            path = httpx.URL(created.headers["Location"]).path
            upload = path.rsplit("/", 1)[1]
            first = await on_a.patch(
                path,
                content=data[: 3 * MiB],
                headers={"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"},
            )
            assert first.status_code == 204 and first.headers["Upload-Offset"] == str(3 * MiB)
            assert (await on_b.head(path)).headers["Upload-Offset"] == str(3 * MiB)

            # Node A dies in the middle of the next PATCH, holding the upload's lease.
            never = asyncio.Event()

            async def stalled_body() -> AsyncIterator[bytes]:
                yield data[3 * MiB : 5 * MiB]
                await never.wait()

            headers = {
                "Upload-Offset": str(3 * MiB),
                "Content-Type": "application/offset+octet-stream",
                "Content-Length": str(len(data) - 3 * MiB),
            }
            cut = asyncio.create_task(on_a.patch(path, content=stalled_body(), headers=headers))
            for _ in range(600):  # until node A has claimed the upload (seen in the bucket)
                if await store.bucket.head(f"uploads/cam-1/{upload}.lock") is not None:
                    break
                await asyncio.sleep(0.02)
            else:
                raise AssertionError("node A never claimed the upload")
            node_a.kill()
            await node_a.wait()
            cut.cancel()  # the camera's request hangs on a dead peer until it gives up
            with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                await cut

            # The camera goes on with node B: HEAD, then PATCH from the durable offset,
            # retrying while the dead node's lease runs out (423), as its backoff does.
            offset = int((await on_b.head(path)).headers["Upload-Offset"])
            assert offset == 3 * MiB  # acknowledged bytes survived; unacknowledged ones none
            statuses = []
            for _ in range(200):
                done = await on_b.patch(
                    path,
                    content=data[offset:],
                    headers={
                        "Upload-Offset": str(offset),
                        "Content-Type": "application/offset+octet-stream",
                    },
                )
                statuses.append(done.status_code)
                if done.status_code != 423:
                    break
                await asyncio.sleep(LEASE / 10)
            assert statuses[-1] == 204, (statuses, done.text)
            assert set(statuses) <= {423, 204}
            assert done.headers["Upload-Offset"] == str(len(data))
            receipt_doc = await on_b.get(f"/receipts/{digest}")
            assert receipt_doc.status_code == 200
            assert (await on_b.get(f"/receipts/{digest}")).content == receipt_doc.content

    public = rig.receipt_public()
    receipt = parse_receipt(receipt_doc.content, {receipt_key_id(public): public})
    check_covers(receipt, digest=digest, size=len(data), device_id="cam-1")
    assert receipt.stored_at == f"s3://{bucket}/segments/cam-1/{sealed.recording_id}/000000.seg"
    assert [key async for key in store.bucket.keys("receipts/")] == [f"receipts/{digest}.json"]
    assert [key async for key in store.bucket.keys("uploads/")] == []
    segment = SegmentKey("cam-1", str(sealed.recording_id), 0)
    assert b"".join([block async for block in store.read_segment(segment)]) == data
    client = await store.bucket.client()
    assert (await client.list_multipart_uploads(Bucket=bucket)).get("Uploads", []) == []
    # One audit chain written by two nodes: created on A, receipt issued on B.
    events = [line async for line in store.read_audit()]
    assert any(b'"upload.created"' in e for e in events)
    assert any(b'"receipt.issued"' in e for e in events)
    await store.close()
    assert await asyncio.to_thread(cli.main, ["audit", "verify", "-c", str(rig.directory)]) == 0
