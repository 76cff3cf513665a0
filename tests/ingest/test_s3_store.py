"""What the S3 store adds to the store contract (test_store.py, which runs on S3 too), against
moto's S3 server: incomplete parts under S3's real 5 MiB minimum, a crash point at every S3
write, two nodes on one upload and on one audit chain, quarantine's copy, config."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import os
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from bodycamd.errors import ConfigError
from bodycamd.ingest.errors import (
    ChecksumMismatch,
    OffsetMismatch,
    UploadBusy,
    UploadNotFound,
    UploadTooLarge,
)
from bodycamd.ingest.s3_objects import S3Options
from bodycamd.ingest.s3_store import S3Store, s3_options
from bodycamd.ingest.store import SegmentKey

MiB = 1 << 20
U = 64 << 10  # with `small_parts` (parts of 5U to 8U), U plays the part of a MiB
WRITES = ("put", "delete", "upload_part", "complete", "create_multipart", "abort", "copy_part")


async def stream(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def start(store: S3Store, data: bytes, device: str = "cam-1") -> str:
    info = await store.create_upload(device, len(data), {"name": "x"}, time.time() + 3600)
    return info.upload_id


async def multipart_id(store: S3Store, device: str, upload: str) -> str:
    fetched = await store.bucket.get(f"uploads/{device}/{upload}.info")
    assert fetched is not None
    return str(json.loads(fetched.body)["multipart_id"])


async def read_back(store: S3Store, device: str, upload: str) -> bytes:
    return b"".join([block async for block in store.read_upload(device, upload)])


async def test_chunks_under_5_mib_wait_as_the_incomplete_part(bucket_options: S3Options) -> None:
    node, other = S3Store(bucket_options), S3Store(bucket_options)  # other: a second node reading
    data = os.urandom(12 * MiB + 123)
    upload = await start(node, data)
    mpu = await multipart_id(node, "cam-1", upload)
    tail_key, data_key = f"uploads/cam-1/{upload}.part", f"uploads/cam-1/{upload}"

    assert await node.append("cam-1", upload, 0, stream(data[:MiB])) == MiB
    tail = await node.bucket.head(tail_key)
    assert tail is not None and tail.size == MiB and tail.metadata == {"part-number": "1"}
    assert await node.bucket.parts(data_key, mpu) == []
    assert (await other.upload_info("cam-1", upload)).offset == MiB

    assert await other.append("cam-1", upload, MiB, stream(data[MiB : 3 * MiB])) == 3 * MiB
    tail = await node.bucket.head(tail_key)
    assert tail is not None and tail.size == 3 * MiB  # the same part-to-be, grown

    # 6 MiB more: the first 8 MiB (tail prepended) become part 1, 1 MiB waits as part 2's tail
    assert await node.append("cam-1", upload, 3 * MiB, stream(data[3 * MiB : 9 * MiB])) == 9 * MiB
    parts = await node.bucket.parts(data_key, mpu)
    assert parts is not None and [(p.number, p.size) for p in parts] == [(1, 8 * MiB)]
    tail = await node.bucket.head(tail_key)
    assert tail is not None and tail.size == MiB and tail.metadata == {"part-number": "2"}
    assert (await other.upload_info("cam-1", upload)).offset == 9 * MiB

    # the rest: the last part may be small; the upload is sealed into one object
    assert await other.append("cam-1", upload, 9 * MiB, stream(data[9 * MiB :])) == len(data)
    assert await node.bucket.head(tail_key) is None
    assert await node.bucket.parts(data_key, mpu) is None  # completed
    info = await node.upload_info("cam-1", upload)
    assert info.offset == info.length == len(data)
    assert await read_back(node, "cam-1", upload) == data

    digest = hashlib.sha256(data).hexdigest()
    where = await other.finish("cam-1", upload, SegmentKey("cam-1", "rec", 3), digest)
    assert where == f"s3://{bucket_options.bucket}/segments/cam-1/rec/000003.seg"
    stored = b"".join([b async for b in node.read_segment(SegmentKey("cam-1", "rec", 3))])
    assert stored == data
    assert [key async for key in node.bucket.keys("uploads/")] == []
    with pytest.raises(UploadNotFound):
        await node.upload_info("cam-1", upload)
    await node.close()
    await other.close()


class NodeDied(BaseException):
    """The process running the store is gone: this and every later S3 call fails."""


def kill_at(store: S3Store, monkeypatch: pytest.MonkeyPatch, write: int) -> Callable[[], bool]:
    """Crash point: the store's `write`-th S3 write, and every S3 call after it, never happen
    (as if the node was SIGKILLed just before sending it)."""
    state = {"count": 0, "dead": False}

    def wrap(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        async def call(*args: Any, **kwargs: Any) -> Any:
            if name in WRITES:
                state["count"] += 1
                state["dead"] = state["dead"] or state["count"] >= write
            if state["dead"]:
                raise NodeDied(name)
            return await original(*args, **kwargs)

        return call

    for name in (*WRITES, "get", "head", "parts"):
        monkeypatch.setattr(store.bucket, name, wrap(name, getattr(store.bucket, name)))
    return lambda: bool(state["dead"])


# The S3 writes of the three appends below: (lease, tail, release), (lease, part 1 holding
# the tail, delete tail, release), (lease, last part, complete, delete tail, release).
WRITES_IN_THREE_APPENDS = 12


@pytest.mark.parametrize("write", range(1, WRITES_IN_THREE_APPENDS + 2))
async def test_a_node_killed_at_any_s3_write_loses_no_acknowledged_byte(
    small_parts: S3Options, monkeypatch: pytest.MonkeyPatch, write: int
) -> None:
    """Three appends (tail; tail + more = a part; the last part and the seal), the node
    killed before its `write`-th S3 write. Another node must then see an offset between the
    last one acknowledged and the bytes sent, wait out the dead node's lease, and complete
    the upload with exactly the original bytes. The last case is the run without a crash."""
    data = os.urandom(7 * U + 5)
    cuts = [0, 3 * U, 6 * U, len(data)]
    node = S3Store(small_parts)
    upload = await start(node, data)
    died = kill_at(node, monkeypatch, write)
    acknowledged, sent = 0, 0
    with contextlib.suppress(NodeDied):
        for begin, end in itertools.pairwise(cuts):
            sent = end
            acknowledged = await node.append("cam-1", upload, begin, stream(data[begin:end]))
            assert acknowledged == end
    await node.close()
    assert died() == (write <= WRITES_IN_THREE_APPENDS)

    now = S3Store(small_parts)
    later = S3Store(small_parts, clock=lambda: time.time() + 2 * small_parts.lease_seconds)
    offset = (await now.upload_info("cam-1", upload)).offset
    assert acknowledged <= offset <= sent
    if offset < len(data):
        if await now.bucket.head(f"uploads/cam-1/{upload}.lock") is not None:
            with pytest.raises(UploadBusy):  # the dead node's lease still runs
                await now.append("cam-1", upload, offset, stream(data[offset:]))
        await later.append("cam-1", upload, offset, stream(data[offset:]))
    assert await read_back(later, "cam-1", upload) == data
    await now.close()
    await later.close()


# finish's S3 writes: the copy (CreateMultipartUpload, UploadPartCopy, conditional
# CompleteMultipartUpload), then deleting the upload's data, .part, .lock and .info.
WRITES_IN_FINISH = 7


@pytest.mark.parametrize("write", range(1, WRITES_IN_FINISH + 2))
async def test_a_node_killed_while_finishing(
    small_parts: S3Options, monkeypatch: pytest.MonkeyPatch, write: int
) -> None:
    """Killed before any of finish's writes, another node either finishes the upload again
    (same location, nothing replaced) or finds it gone with the segment stored; a removal
    cut short is completed by the next listing (the sweep). Nothing is left behind."""
    data = os.urandom(3 * U)
    key = SegmentKey("cam-1", "rec", 1)
    digest = hashlib.sha256(data).hexdigest()
    node, other = S3Store(small_parts), S3Store(small_parts)
    upload = await start(node, data)
    await node.append("cam-1", upload, 0, stream(data))
    died = kill_at(node, monkeypatch, write)
    with contextlib.suppress(NodeDied):
        await node.finish("cam-1", upload, key, digest)
    await node.close()
    assert died() == (write <= WRITES_IN_FINISH)
    try:
        await other.finish("cam-1", upload, key, digest)
    except UploadNotFound:
        assert write > 4  # gone only once the copy completed
    assert await other.uploads() == []
    assert [k async for k in other.bucket.keys("uploads/")] == []
    assert b"".join([block async for block in other.read_segment(key)]) == data
    await other.close()


async def test_two_nodes_on_one_upload(small_parts: S3Options) -> None:
    """A second PATCH while one runs gets UploadBusy (423); a stale one OffsetMismatch (409)."""
    node_a, node_b = S3Store(small_parts), S3Store(small_parts)
    data = os.urandom(3 * U)
    upload = await start(node_a, data)
    holding, release = asyncio.Event(), asyncio.Event()

    async def slow_client() -> AsyncIterator[bytes]:
        yield data[:U]
        holding.set()
        await release.wait()
        yield data[U : 2 * U]

    first = asyncio.create_task(node_a.append("cam-1", upload, 0, slow_client()))
    await holding.wait()
    with pytest.raises(UploadBusy, match=upload):
        await node_b.append("cam-1", upload, 0, stream(data[:U]))
    release.set()
    assert await first == 2 * U
    with pytest.raises(OffsetMismatch) as stale:
        await node_b.append("cam-1", upload, U, stream(data[U:]))
    assert stale.value.offset == 2 * U
    assert await node_b.append("cam-1", upload, 2 * U, stream(data[2 * U :])) == len(data)
    assert await node_a.append("cam-1", upload, len(data), stream(b"")) == len(data)
    with pytest.raises(UploadTooLarge):
        await node_a.append("cam-1", upload, len(data), stream(b"more"))
    assert await read_back(node_a, "cam-1", upload) == data
    await node_a.close()
    await node_b.close()


async def test_checksummed_chunks_are_all_or_nothing(small_parts: S3Options) -> None:
    store = S3Store(small_parts)
    data = os.urandom(6 * U)
    upload = await start(store, data)
    assert await store.append("cam-1", upload, 0, stream(data[:U])) == U
    chunk = data[U : 4 * U]
    with pytest.raises(ChecksumMismatch):
        await store.append("cam-1", upload, U, stream(chunk), expect_sha256=b"\0" * 32)

    async def cut() -> AsyncIterator[bytes]:
        yield chunk[:U]
        raise ConnectionResetError("client went away")

    good = hashlib.sha256(chunk).digest()
    with pytest.raises(ConnectionResetError):
        await store.append("cam-1", upload, U, cut(), expect_sha256=good)
    assert (await store.upload_info("cam-1", upload)).offset == U
    tail = await store.bucket.get(f"uploads/cam-1/{upload}.part")
    assert tail is not None and tail.body == data[:U]
    assert await store.append("cam-1", upload, U, stream(chunk), expect_sha256=good) == 4 * U
    await store.append("cam-1", upload, 4 * U, stream(data[4 * U :]))
    assert await read_back(store, "cam-1", upload) == data
    await store.close()


async def test_quarantine_and_terminate(small_parts: S3Options) -> None:
    store = S3Store(small_parts)
    data = os.urandom(3 * U)
    kept, dropped = await start(store, data), await start(store, data, device="cam-2")
    await store.append("cam-1", kept, 0, stream(data[:U]))  # an incomplete part only
    await store.append("cam-2", dropped, 0, stream(data[:U]))
    assert {u.upload_id for u in await store.uploads()} == {kept, dropped}
    assert [u.upload_id for u in await store.uploads("cam-2")] == [dropped]

    where = await store.quarantine("cam-1", kept, "digest mismatch")
    assert where == f"s3://{small_parts.bucket}/quarantine/cam-1/{kept}"
    [note] = await store.quarantined()
    assert (note.upload_id, note.device_id, note.reason) == (kept, "cam-1", "digest mismatch")
    assert note.location == where and note.metadata == {"name": "x"}
    bytes_kept = b"".join([b async for b in store.bucket.stream(f"quarantine/cam-1/{kept}")])
    assert bytes_kept == data[:U]

    await store.terminate("cam-2", dropped)
    with pytest.raises(UploadNotFound):
        await store.terminate("cam-2", dropped)
    assert [key async for key in store.bucket.keys("uploads/")] == []
    client = await store.bucket.client()
    listed = await client.list_multipart_uploads(Bucket=small_parts.bucket)
    assert listed.get("Uploads", []) == []  # aborted and completed, none left behind
    await store.close()


async def test_two_nodes_append_to_one_audit_chain(small_parts: S3Options) -> None:
    """Each node keeps its own appenders in turn; between nodes, If-None-Match decides."""
    node_a, node_b = S3Store(small_parts), S3Store(small_parts)

    async def append(store: S3Store, n: int) -> None:
        def entry(previous: bytes | None) -> bytes:
            prev = hashlib.sha256(previous).hexdigest() if previous else "0" * 64
            return json.dumps({"n": n, "prev": prev}).encode()

        await store.append_audit(entry)

    await asyncio.gather(*(append(node_a if n % 2 else node_b, n) for n in range(8)))
    cold = S3Store(small_parts)  # a node (or the operator's CLI) that starts after them
    await append(cold, 8)
    await cold.close()
    entries = [entry async for entry in node_a.read_audit()]
    assert sorted(json.loads(e)["n"] for e in entries) == list(range(9))
    previous = "0" * 64
    for entry in entries:  # one unbroken chain although two nodes appended at once
        assert json.loads(entry)["prev"] == previous
        previous = hashlib.sha256(entry).hexdigest()
    await node_a.close()
    await node_b.close()


def test_store_options_are_checked() -> None:
    assert s3_options({"bucket": "b", "lease_seconds": 5}, "x").lease_seconds == 5.0
    for table, message in (
        ({}, "needs bucket"),
        ({"bucket": "b", "colour": "red"}, "unknown key 'colour'"),
        ({"bucket": "b", "part_size": "big"}, "part_size: expected int"),
        ({"bucket": "b", "part_size": 1 << 20}, "at least min_part_size"),
        ({"bucket": "b", "lease_seconds": 0}, "positive"),
    ):
        with pytest.raises(ConfigError, match=message):
            s3_options(table, "ingest.toml: [store]")
