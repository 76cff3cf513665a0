"""In-progress tus uploads kept entirely in the bucket, so any node can continue any upload.

Modelled on tusd's S3 store. One upload of device D with id U is::

    uploads/D/U.info   JSON: length, metadata, times, the multipart upload id (written once)
    uploads/D/U        the S3 multipart upload; once complete, the whole upload as one object
    uploads/D/U.part   the "incomplete part": bytes after the uploaded parts, fewer than the
                       5 MiB S3 requires of every part but the last; object metadata
                       `part-number` says which part number these bytes will become
    uploads/D/U.lock   the lease of the node writing the upload (s3_lease.py)

The durable offset is computed, never stored: the sizes of parts 1..k (ListParts), plus the
incomplete part's size if its `part-number` is k+1. Whenever a part is uploaded, it starts
with the incomplete part's bytes (read back and prepended, as tusd does), so afterwards the
`.part` object names a number that is no longer k+1 and is ignored until it is deleted or
replaced. This makes every step a single S3 write, and so crash-safe at any instant:

- UploadPart N is atomic: before it the offset counts the old `.part`; after it, part N
  (which holds those bytes and more) instead. The stale `.part` is deleted afterwards.
- PutObject of `.part` replaces the old one atomically with a longer run of the same bytes.
- When the last byte lands, CompleteMultipartUpload turns the parts into the object
  ``uploads/D/U`` ("sealed"); a sealed upload's offset is that object's size.

So an acknowledged offset is always backed by uploaded parts or the `.part` object, and a
node killed at any instant leaves a consistent (offset, bytes) pair that any other node reads
back. The checksum extension needs all-or-nothing chunks: a checksummed chunk is spooled to a
temporary local file (request scratch, like tusd's part buffers; gone with the request) and
only written to S3 once its SHA-256 matched.

Two nodes and one upload: the node appending holds the upload's lease for the whole append
(a second concurrent PATCH gets UploadBusy, 423), and reads the offset under it (a stale
PATCH gets OffsetMismatch, 409, with the true offset). Memory per running append is bounded
by about twice `part_size` (the buffer and the copy being sent) plus one chunk of the body:
`append_bytes`, which the store takes from its byte budget around each append (s3_store.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import secrets
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import IO, Any

from .errors import (
    ChecksumMismatch,
    OffsetMismatch,
    StoreError,
    UploadNotFound,
    UploadTooLarge,
)
from .s3_lease import Leases
from .s3_objects import Bucket, Part
from .store import DEVICE_ID, UPLOAD_ID, UploadInfo

MAX_PARTS = 10_000  # S3's limit per multipart upload
_SPOOL_BLOCK = 1 << 20


@dataclass(frozen=True)
class UploadKeys:
    device_id: str
    upload_id: str

    def __post_init__(self) -> None:
        if not DEVICE_ID.fullmatch(self.device_id) or not UPLOAD_ID.fullmatch(self.upload_id):
            raise UploadNotFound(
                f"upload {self.upload_id!r} of device {self.device_id!r}: no such upload"
            )

    @property
    def data(self) -> str:
        return f"uploads/{self.device_id}/{self.upload_id}"

    @property
    def info(self) -> str:
        return self.data + ".info"

    @property
    def tail(self) -> str:
        return self.data + ".part"

    @property
    def lock(self) -> str:
        return self.data + ".lock"

    def __str__(self) -> str:
        return f"upload {self.upload_id} of device {self.device_id}"


@dataclass
class UploadState:
    """What the bucket says about one upload right now."""

    info: UploadInfo  # its offset is the durable offset computed below
    multipart_id: str
    parts: list[Part] = field(default_factory=list)  # the contiguous parts 1..k
    tail_size: int = 0  # the valid incomplete part's size (0: none or stale)
    sealed: bool = False


def _info_json(info: UploadInfo, multipart_id: str) -> bytes:
    fixed = {k: v for k, v in asdict(info).items() if k != "offset"}
    return json.dumps({**fixed, "multipart_id": multipart_id}, sort_keys=True).encode()


class Uploads:
    """Create, inspect, append to, seal and delete uploads in one bucket."""

    def __init__(self, bucket: Bucket, leases: Leases, clock: Callable[[], float] = time.time):
        self._bucket = bucket
        self._leases = leases
        self._clock = clock
        options = bucket.options
        self._min_part = options.min_part_size
        self._part_size = max(options.part_size, options.min_part_size)
        # what one append holds at most: a part's buffer and its copy being sent (the chunk
        # that overshoots a part is the HTTP layer's read size, small beside a part)
        self.append_bytes = 2 * self._part_size

    async def create(
        self, device_id: str, length: int, metadata: dict[str, str], expires_at: float
    ) -> UploadInfo:
        if length > self._part_size * MAX_PARTS:
            raise UploadTooLarge(
                f"an upload of {length} bytes needs more than {MAX_PARTS} parts of "
                f"{self._part_size} bytes; raise [store] part_size"
            )
        keys = UploadKeys(device_id, secrets.token_urlsafe(18))
        info = UploadInfo(
            keys.upload_id, device_id, length, 0, dict(metadata), self._clock(), expires_at
        )
        multipart_id = await self._bucket.create_multipart(keys.data)
        # The upload exists once its .info does; a multipart upload without one is an orphan
        # that the bucket's AbortIncompleteMultipartUpload lifecycle rule removes.
        if await self._bucket.put(keys.info, _info_json(info, multipart_id), if_none_match=True):
            return info
        raise StoreError(f"{keys}: {keys.info} exists already (upload id collision)")

    async def state(self, keys: UploadKeys) -> UploadState:
        """The upload's state read back from the bucket; UploadNotFound if it is gone."""
        fetched = await self._bucket.get(keys.info)
        if fetched is None:
            raise UploadNotFound(f"{keys}: no such upload")
        fixed: dict[str, Any] = json.loads(fetched.body)
        multipart_id = fixed.pop("multipart_id")
        listed, tail = await asyncio.gather(
            self._bucket.parts(keys.data, multipart_id), self._bucket.head(keys.tail)
        )
        if listed is None:  # completed (sealed) or aborted (being deleted)
            whole = await self._bucket.head(keys.data)
            if whole is None:
                raise UploadNotFound(f"{keys}: no such upload (being removed)")
            info = UploadInfo(**fixed, offset=whole.size)
            return UploadState(info, multipart_id, sealed=True)
        parts: list[Part] = []
        for part in listed:  # only a contiguous run 1..k counts (there is never another)
            if part.number != len(parts) + 1:
                break
            parts.append(part)
        tail_size = 0
        if tail is not None and tail.metadata.get("part-number") == str(len(parts) + 1):
            tail_size = tail.size
        offset = sum(part.size for part in parts) + tail_size
        return UploadState(UploadInfo(**fixed, offset=offset), multipart_id, parts, tail_size)

    async def infos(self, prefix: str) -> list[UploadInfo]:
        """Every upload whose .info is under `prefix`, read in parallel (at most 16 at once)."""
        names = [key async for key in self._bucket.keys(prefix) if key.endswith(".info")]
        gate = asyncio.Semaphore(16)

        async def one(name: str) -> UploadInfo | None:
            keys = UploadKeys(*name.removesuffix(".info").split("/")[-2:])
            async with gate:
                try:
                    return (await self.state(keys)).info
                except UploadNotFound:  # a removal cut short (see `remove`): finish it
                    await self.remove(keys, None)
                    return None

        found = await asyncio.gather(*(one(name) for name in names))
        return [info for info in found if info is not None]

    async def append(
        self,
        keys: UploadKeys,
        offset: int,
        chunks: AsyncIterator[bytes],
        expect_sha256: bytes | None,
    ) -> int:
        """The store's `append` (see store.py for the contract) under the upload's lease."""
        lease = await self._leases.take(keys.lock, str(keys))
        try:
            state = await self.state(keys)
            if offset != state.info.offset:
                raise OffsetMismatch(
                    f"{keys}: Upload-Offset {offset}; the upload is at {state.info.offset}",
                    offset=state.info.offset,
                )
            if state.sealed:  # every byte is there: only an empty body fits
                async for chunk in chunks:
                    if chunk:
                        raise UploadTooLarge(f"{keys}: has all its {state.info.length} bytes")
                return offset
            writer = _PartWriter(self, keys, state, lambda: self._leases.renew(lease, str(keys)))
            if expect_sha256 is None:
                await writer.take(chunks)
            else:
                spool = await asyncio.to_thread(_scratch_file)
                try:
                    await _spool(keys, state.info, chunks, spool, expect_sha256)
                    await writer.take(_unspool(spool))
                finally:
                    await asyncio.to_thread(spool.close)
            if writer.offset == state.info.length:
                await self.seal(keys, await self.state(keys))
            return writer.offset
        finally:
            with contextlib.suppress(StoreError):
                await self._leases.release(lease)

    async def seal(self, keys: UploadKeys, state: UploadState) -> None:
        """Make the upload one object (CompleteMultipartUpload); idempotent. An upload sealed
        before its last byte (to quarantine it) takes its incomplete part along."""
        if state.sealed:
            return
        parts = list(state.parts)
        if state.tail_size or not parts:
            body = await self.tail(keys, state.tail_size) if state.tail_size else b""
            number = len(parts) + 1
            last = await self._bucket.upload_part(keys.data, state.multipart_id, number, body)
            parts.append(last)
        completed = await self._bucket.complete(keys.data, state.multipart_id, parts)
        if completed is False and await self._bucket.head(keys.data) is None:
            raise UploadNotFound(f"{keys}: no such upload (removed while sealing)")
        await self._bucket.delete(keys.tail)

    async def tail(self, keys: UploadKeys, size: int) -> bytes:
        """The incomplete part's first `size` bytes (all that the offset counted)."""
        fetched = await self._bucket.get(keys.tail)
        if fetched is None or len(fetched.body) < size:
            raise StoreError(f"{keys}: its incomplete part changed under us; retry")
        return fetched.body[:size]

    async def remove(self, keys: UploadKeys, multipart_id: str | None) -> None:
        """Delete every object of the upload, .info last. A crash in between leaves a `.info`
        whose bytes are gone: it reads as UploadNotFound, and the next listing (the expiry
        sweep) finishes the removal."""
        if multipart_id is not None:
            await self._bucket.abort(keys.data, multipart_id)
        for key in (keys.data, keys.tail, keys.lock, keys.info):
            await self._bucket.delete(key)


class _PartWriter:
    """Turns a stream of chunks into parts of at least `min_part_size` plus a tail.

    `offset` is the durable offset at every moment: uploaded parts plus the valid `.part`.
    The buffer starts with the valid `.part`'s bytes, so the next part begins with them.
    """

    def __init__(
        self,
        uploads: Uploads,
        keys: UploadKeys,
        state: UploadState,
        renew: Callable[[], Awaitable[None]],
    ) -> None:
        self._uploads = uploads
        self._bucket = uploads._bucket
        self._min_part, self._part_size = uploads._min_part, uploads._part_size
        self._keys = keys
        self._multipart_id = state.multipart_id
        self._length = state.info.length
        self._renew = renew
        self._next = len(state.parts) + 1
        self._parts_size = sum(part.size for part in state.parts)
        self._tail_valid = state.tail_size
        self._tail_stale = False
        self._buffer = bytearray()
        self.offset = state.info.offset

    async def take(self, chunks: AsyncIterator[bytes]) -> None:
        """Upload `chunks`; when they raise (the client went away) or pass the declared
        length, what arrived up to there is made durable first, then the error raised."""
        if self._tail_valid:
            self._buffer += await self._uploads.tail(self._keys, self._tail_valid)
        try:
            async for chunk in chunks:
                room = self._length - self._parts_size - len(self._buffer)
                if len(chunk) > room:
                    self._buffer += chunk[:room]
                    raise UploadTooLarge(
                        f"{self._keys}: more than its Upload-Length {self._length} bytes"
                    )
                self._buffer += chunk
                if len(self._buffer) >= self._part_size:
                    await self._upload_part()
        except StoreError:
            raise  # the store failed: what it acknowledged stands, nothing more is promised
        except BaseException:
            await self._flush()
            raise
        await self._flush()

    async def _upload_part(self) -> None:
        await self._renew()
        part = await self._bucket.upload_part(
            self._keys.data, self._multipart_id, self._next, bytes(self._buffer)
        )
        self._next += 1
        self._parts_size += part.size
        self._buffer.clear()
        if self._tail_valid:  # its bytes are in this part now: delete it on the way out
            self._tail_valid, self._tail_stale = 0, True
        self.offset = self._parts_size

    async def _flush(self) -> None:
        """Make the buffered bytes durable: as the last part, a full part, or the tail."""
        end = self._parts_size + len(self._buffer)
        if end > self.offset:
            if end == self._length or len(self._buffer) >= self._min_part:
                await self._upload_part()
            else:
                await self._renew()
                number = {"part-number": str(self._next)}
                await self._bucket.put(self._keys.tail, bytes(self._buffer), metadata=number)
                self._tail_valid, self._tail_stale = len(self._buffer), False
                self.offset = end
        if self._tail_stale:
            await self._bucket.delete(self._keys.tail)
            self._tail_stale = False


def _scratch_file() -> IO[bytes]:
    return tempfile.TemporaryFile(prefix="bodycamd-ingest-")


async def _spool(
    keys: UploadKeys,
    info: UploadInfo,
    chunks: AsyncIterator[bytes],
    spool: IO[bytes],
    expect_sha256: bytes,
) -> None:
    """Write a checksummed chunk to `spool`; nothing reaches S3 unless it all arrived and
    matches. Bounded by the upload's remaining length (the HTTP layer bounds the body)."""
    digest = hashlib.sha256()
    room = info.length - info.offset
    async for chunk in chunks:
        if len(chunk) > room:
            raise UploadTooLarge(f"{keys}: more than its Upload-Length {info.length} bytes")
        room -= len(chunk)
        digest.update(chunk)
        await asyncio.to_thread(spool.write, chunk)
    if digest.digest() != expect_sha256:
        raise ChecksumMismatch(
            f"{keys}: chunk at offset {info.offset} does not match its Upload-Checksum; discarded"
        )
    await asyncio.to_thread(spool.seek, 0)


async def _unspool(spool: IO[bytes]) -> AsyncIterator[bytes]:
    while block := await asyncio.to_thread(spool.read, _SPOOL_BLOCK):
        yield block
