"""The store contract (bodycamd/ingest/store.py) that every store kind must keep: durable
offsets, all-or-nothing checksummed appends, a cut stream keeping what arrived, one-step
finish/quarantine/terminate, receipts, registry, and one unbroken audit chain."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path

import pytest

from bodycamd.ingest.errors import (
    ChecksumMismatch,
    OffsetMismatch,
    SegmentExists,
    UploadBusy,
    UploadNotFound,
    UploadTooLarge,
)
from bodycamd.ingest.fs_store import FilesystemStore
from bodycamd.ingest.store import DeviceRecord, IngestStore, SegmentKey, SegmentRecord

META = {"device": "cam-1", "recording": "r", "index": "0", "digest": "d"}


async def chunks(
    pieces: Iterable[bytes], fail: BaseException | None = None
) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece
    if fail is not None:
        raise fail


async def read_all(store: IngestStore, upload_id: str) -> bytes:
    return b"".join([block async for block in store.read_upload("cam-1", upload_id)])


async def test_append_resumes_only_at_the_durable_offset(store: IngestStore) -> None:
    info = await store.create_upload("cam-1", 10, META, 2e9)
    assert (info.offset, info.length, info.metadata) == (0, 10, META)
    assert await store.append("cam-1", info.upload_id, 0, chunks([b"abc", b"de"])) == 5
    with pytest.raises(OffsetMismatch) as wrong:
        await store.append("cam-1", info.upload_id, 3, chunks([b"x"]))
    assert wrong.value.offset == 5
    assert (await store.upload_info("cam-1", info.upload_id)).offset == 5
    assert await store.append("cam-1", info.upload_id, 5, chunks([b"fghij"])) == 10
    assert await read_all(store, info.upload_id) == b"abcdefghij"
    assert (await store.upload_info("cam-1", info.upload_id)).complete


async def test_a_cut_stream_keeps_exactly_what_arrived(store: IngestStore) -> None:
    info = await store.create_upload("cam-1", 100, META, 2e9)
    with pytest.raises(ConnectionResetError):
        await store.append(
            "cam-1", info.upload_id, 0, chunks([b"12345", b"678"], ConnectionResetError())
        )
    assert (await store.upload_info("cam-1", info.upload_id)).offset == 8
    assert await read_all(store, info.upload_id) == b"12345678"


async def test_checksummed_append_is_all_or_nothing(store: IngestStore) -> None:
    info = await store.create_upload("cam-1", 100, META, 2e9)
    good = hashlib.sha256(b"hello").digest()
    assert (
        await store.append("cam-1", info.upload_id, 0, chunks([b"he", b"llo"]), expect_sha256=good)
        == 5
    )
    with pytest.raises(ChecksumMismatch):
        await store.append("cam-1", info.upload_id, 5, chunks([b"world"]), expect_sha256=good)
    with pytest.raises(ConnectionResetError):
        await store.append(
            "cam-1", info.upload_id, 5, chunks([b"wor"], ConnectionResetError()), expect_sha256=good
        )
    assert (await store.upload_info("cam-1", info.upload_id)).offset == 5
    assert await read_all(store, info.upload_id) == b"hello"


async def test_no_byte_past_the_declared_length(store: IngestStore) -> None:
    info = await store.create_upload("cam-1", 4, META, 2e9)
    with pytest.raises(UploadTooLarge):
        await store.append("cam-1", info.upload_id, 0, chunks([b"abc", b"defg"]))
    assert await read_all(store, info.upload_id) == b"abcd"


async def test_one_append_at_a_time(store: IngestStore) -> None:
    info = await store.create_upload("cam-1", 100, META, 2e9)
    started, gate = asyncio.Event(), asyncio.Event()

    async def slow() -> AsyncIterator[bytes]:
        yield b"a"
        started.set()
        await gate.wait()

    first = asyncio.create_task(store.append("cam-1", info.upload_id, 0, slow()))
    await started.wait()
    with pytest.raises(UploadBusy):
        await store.append("cam-1", info.upload_id, 0, chunks([b"b"]))
    gate.set()
    assert await first == 1


async def test_uploads_belong_to_their_device(store: IngestStore) -> None:
    info = await store.create_upload("cam-1", 10, META, 2e9)
    with pytest.raises(UploadNotFound):
        await store.upload_info("cam-2", info.upload_id)
    with pytest.raises(UploadNotFound):
        await store.append("cam-2", info.upload_id, 0, chunks([b"x"]))
    assert [u.upload_id for u in await store.uploads("cam-1")] == [info.upload_id]
    assert await store.uploads("cam-2") == []
    await store.terminate("cam-1", info.upload_id)
    assert await store.uploads() == []
    with pytest.raises(UploadNotFound):
        await store.terminate("cam-1", info.upload_id)


async def test_finish_is_idempotent_and_never_replaces(store: IngestStore) -> None:
    key = SegmentKey("cam-1", "rec", 0)
    data = b"segment bytes"
    first = await store.create_upload("cam-1", len(data), META, 2e9)
    await store.append("cam-1", first.upload_id, 0, chunks([data]))
    digest = hashlib.sha256(data).hexdigest()
    location = await store.finish("cam-1", first.upload_id, key, digest)
    assert location.endswith("cam-1/rec/000000.seg")
    assert b"".join([b async for b in store.read_segment(key)]) == data
    again = await store.create_upload("cam-1", len(data), META, 2e9)
    await store.append("cam-1", again.upload_id, 0, chunks([data]))
    assert await store.finish("cam-1", again.upload_id, key, digest) == location
    other = await store.create_upload("cam-1", 5, META, 2e9)
    await store.append("cam-1", other.upload_id, 0, chunks([b"other"]))
    with pytest.raises(SegmentExists):
        await store.finish("cam-1", other.upload_id, key, hashlib.sha256(b"other").hexdigest())
    assert (await store.upload_info("cam-1", other.upload_id)).offset == 5
    assert [u.upload_id for u in await store.uploads()] == [other.upload_id]


async def test_quarantine_keeps_the_bytes_and_the_reason(store: IngestStore) -> None:
    info = await store.create_upload("cam-1", 3, META, 2e9)
    await store.append("cam-1", info.upload_id, 0, chunks([b"bad"]))
    await store.quarantine("cam-1", info.upload_id, "digest mismatch")
    [kept] = await store.quarantined()
    assert (kept.device_id, kept.upload_id, kept.reason) == (
        "cam-1",
        info.upload_id,
        "digest mismatch",
    )
    assert kept.metadata == META
    with pytest.raises(UploadNotFound):
        await store.upload_info("cam-1", info.upload_id)


async def test_receipts_and_registry(store: IngestStore) -> None:
    digest = "ab" * 32
    record = SegmentRecord(
        SegmentKey("cam-1", "rec", 2),
        digest,
        10,
        "torn",
        False,
        True,
        "00" * 32,
        "pending",
        "file:///x",
        "2026-01-01T00:00:00+00:00",
        "upload",
    )
    assert await store.get_receipt(digest) is None
    await store.put_receipt(record, b'{"receipt":1}')
    stored = await store.get_receipt(digest)
    assert stored is not None and stored.record == record and stored.wire == b'{"receipt":1}'
    assert [r.record for r in await store.receipts()] == [record]
    assert await store.get_receipt("../" + digest[3:]) is None
    device = DeviceRecord("cam-1", "a2V5", "1f", "2026-01-01T00:00:00+00:00")
    await store.put_device(device)
    assert await store.get_device("cam-1") == device
    assert await store.get_device("cam-2") is None
    assert await store.devices() == [device]


async def test_concurrent_audit_appends_make_one_chain(store: IngestStore) -> None:
    def entry(n: int) -> Callable[[bytes | None], bytes]:
        def make(previous: bytes | None) -> bytes:
            seq = 0 if previous is None else json.loads(previous)["seq"] + 1
            prev = None if previous is None else hashlib.sha256(previous).hexdigest()
            return json.dumps({"seq": seq, "prev": prev, "who": n}).encode()

        return make

    await asyncio.gather(*(store.append_audit(entry(n)) for n in range(20)))
    lines = [line async for line in store.read_audit()]
    assert [json.loads(line)["seq"] for line in lines] == list(range(20))
    for before, after in itertools.pairwise(lines):
        assert json.loads(after)["prev"] == hashlib.sha256(before).hexdigest()
    assert sorted(json.loads(line)["who"] for line in lines) == list(range(20))


async def test_filesystem_drops_what_was_never_acknowledged(tmp_path: Path) -> None:
    """A crash between write and commit leaves junk past the offset, and a torn audit line;
    the next append cuts both off (the crash test shows the same through a killed server)."""
    store = FilesystemStore(tmp_path)
    info = await store.create_upload("cam-1", 10, META, 2e9)
    await store.append("cam-1", info.upload_id, 0, chunks([b"abc"]))
    with (tmp_path / "uploads" / "cam-1" / info.upload_id / "data").open("ab") as data:
        data.write(b"JUNK")
    assert (await store.upload_info("cam-1", info.upload_id)).offset == 3
    await store.append("cam-1", info.upload_id, 3, chunks([b"def"]))
    assert await read_all(store, info.upload_id) == b"abcdef"
    await store.append_audit(lambda previous: b'{"n":0}')
    with (tmp_path / "audit.log").open("ab") as log:
        log.write(b'{"n":1, torn')
    assert [line async for line in store.read_audit()] == [b'{"n":0}']
    seen: list[bytes | None] = []
    await store.append_audit(lambda previous: seen.append(previous) or b'{"n":1}')
    assert seen == [b'{"n":0}']
    assert (tmp_path / "audit.log").read_bytes() == b'{"n":0}\n{"n":1}\n'


async def test_filesystem_append_over_several_write_batches(tmp_path: Path) -> None:
    """A body longer than the 4 MiB write batch (written in worker threads while the next is
    read): a checksummed one is all or nothing across batches, and a stream cut after a batch
    went to disk keeps exactly the bytes that arrived."""
    store = FilesystemStore(tmp_path)
    body = hashlib.sha256(b"batches").digest() * (9 * 2**20 // 32 + 5)  # 9 MiB and a bit
    pieces = [body[i : i + 2**18] for i in range(0, len(body), 2**18)]  # as TLS hands them
    info = await store.create_upload("cam-1", 2 * len(body), META, 2e9)
    with pytest.raises(ChecksumMismatch):
        await store.append(
            "cam-1", info.upload_id, 0, chunks(pieces), expect_sha256=hashlib.sha256().digest()
        )
    assert (await store.upload_info("cam-1", info.upload_id)).offset == 0
    good = hashlib.sha256(body).digest()
    assert await store.append(
        "cam-1", info.upload_id, 0, chunks(pieces), expect_sha256=good
    ) == len(body)
    with pytest.raises(ConnectionResetError):
        await store.append(
            "cam-1", info.upload_id, len(body), chunks(pieces[:30], ConnectionResetError())
        )
    kept = len(body) + 30 * 2**18
    assert (await store.upload_info("cam-1", info.upload_id)).offset == kept
    assert await read_all(store, info.upload_id) == body + body[: 30 * 2**18]
