"""The S3 store: `IngestStore` on any S3-compatible service, for a fleet of stateless nodes.

Everything lives in one bucket (under an optional prefix), so nodes can be added or killed at
any time and any node continues any upload::

    uploads/<device>/<upload>[.info|.part|.lock]   in-progress uploads (s3_uploads.py)
    segments/<device>/<recording>/<index:06d>.seg  finished segments, written once
    quarantine/<device>/<upload>[.json]            uploads kept apart, with the reason
    receipts/, devices/, audit/, audit.head        records (s3_records.py)

What survives a crash of a node at any instant (the Protocol's contract, made concrete):

- `create_upload`: the multipart upload first, then `.info` (If-None-Match). Before the
  `.info` exists there is no upload, only an orphan multipart upload, which the bucket's
  AbortIncompleteMultipartUpload lifecycle rule removes (docs/ingest.md).
- `append`: see s3_uploads.py — every acknowledged offset is backed by uploaded parts or
  the incomplete-part object, and each step is one atomic S3 write.
- `finish`: the complete upload is first sealed (CompleteMultipartUpload into
  ``uploads/<device>/<upload>``, which the verifier has already read back), then copied
  server-side to its final key with CompleteMultipartUpload If-None-Match: *, so a final key
  is written once and never replaced. Then the upload's objects are deleted, `.info` last.
  A crash in between leaves the upload, and a retried `finish` finds the final key holding
  the same digest (object metadata `sha256`) and only deletes the upload.
- `quarantine`: seal, copy the bytes next to their note, write the note, delete the upload;
  a retry repeats the same copy and note.
- `terminate`: abort the multipart upload, delete the objects, `.info` last.

Concurrency between nodes is settled by the bucket, never by the nodes: the upload lease
and the offset check for appends (s3_uploads.py, s3_lease.py), conditional writes for final
keys, receipts and audit entries, a single writer (the operator) for the device registry.
Requires conditional writes (If-None-Match / If-Match), which AWS S3, MinIO and Ceph RGW
offer. Configured by `[store]` with kind = "s3" in ingest.toml (docs/ingest.md).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .budget import ByteBudget
from .config import IngestConfig
from .errors import SegmentExists, StoreError, UploadNotFound
from .s3_lease import Leases
from .s3_objects import Bucket, S3Options
from .s3_records import Records
from .s3_uploads import UploadKeys, Uploads, UploadState
from .store import (
    DEVICE_ID,
    DeviceRecord,
    Quarantined,
    SegmentKey,
    SegmentRecord,
    StoredReceipt,
    UploadInfo,
)


class S3Store:
    """`IngestStore` in one bucket of an S3-compatible service."""

    def __init__(
        self,
        options: S3Options,
        *,
        clock: Callable[[], float] = time.time,
        buffered_bytes: int = 256 << 20,
    ) -> None:
        self._bucket = Bucket(options)
        self._clock = clock
        leases = Leases(self._bucket, options.lease_seconds, clock)
        # request-body bytes held in memory by all appends at once ([limits] max_buffered_bytes)
        self.budget = ByteBudget(buffered_bytes)
        self._uploads = Uploads(self._bucket, leases, clock)
        self._records = Records(self._bucket)

    @property
    def bucket(self) -> Bucket:
        """The bucket the store works in (operator tools and tests look inside)."""
        return self._bucket

    def describe(self) -> str:
        return self._bucket.url().rstrip("/")

    async def close(self) -> None:
        await self._bucket.close()

    # -- in-progress uploads --------------------------------------------------------------
    async def create_upload(
        self, device_id: str, length: int, metadata: dict[str, str], expires_at: float
    ) -> UploadInfo:
        return await self._uploads.create(device_id, length, metadata, expires_at)

    async def upload_info(self, device_id: str, upload_id: str) -> UploadInfo:
        return (await self._uploads.state(UploadKeys(device_id, upload_id))).info

    async def uploads(self, device_id: str | None = None) -> list[UploadInfo]:
        if device_id is not None and not DEVICE_ID.fullmatch(device_id):
            return []
        return await self._uploads.infos(f"uploads/{device_id}/" if device_id else "uploads/")

    async def append(
        self,
        device_id: str,
        upload_id: str,
        offset: int,
        chunks: AsyncIterator[bytes],
        *,
        expect_sha256: bytes | None = None,
    ) -> int:
        """The upload's append, with what it can hold in memory taken from the store's byte
        budget first: all appends of the node together stay within the budget, the ones past
        it wait their turn before they take the upload's lease or read a byte of the body
        (a wait holds no lease, which could run out meanwhile)."""
        keys = UploadKeys(device_id, upload_id)
        async with self.budget.holding(self._uploads.append_bytes):
            return await self._uploads.append(keys, offset, chunks, expect_sha256)

    async def _sealed(self, keys: UploadKeys, *, whole: bool) -> UploadState:
        """The upload as one object; with `whole`, only once every declared byte arrived."""
        state = await self._uploads.state(keys)
        if whole and state.info.offset != state.info.length:
            raise StoreError(
                f"{keys}: has {state.info.offset} of {state.info.length} bytes; only a "
                "complete upload is finished"
            )
        await self._uploads.seal(keys, state)
        return state

    async def read_upload(self, device_id: str, upload_id: str) -> AsyncIterator[bytes]:
        """A complete upload is sealed and read as one object. S3 cannot read back the parts
        of an unfinished multipart upload, so an incomplete one is readable only while all
        its bytes are in the incomplete part (under 5 MiB); else StoreError."""
        keys = UploadKeys(device_id, upload_id)
        state = await self._uploads.state(keys)
        if state.sealed or state.info.offset == state.info.length:
            await self._uploads.seal(keys, state)
            async for block in self._bucket.stream(keys.data):
                yield block
        elif not state.parts:
            if state.tail_size:
                yield await self._uploads.tail(keys, state.tail_size)
        else:
            raise StoreError(
                f"{keys}: has {state.info.offset} of {state.info.length} bytes in "
                f"{len(state.parts)} parts; S3 reads an upload back only once it is complete"
            )

    def local_upload_path(self, device_id: str, upload_id: str) -> Path | None:
        return None

    async def finish(self, device_id: str, upload_id: str, key: SegmentKey, digest: str) -> str:
        keys = UploadKeys(device_id, upload_id)
        state = await self._sealed(keys, whole=True)
        target = _segment(key)
        tags = {"sha256": digest, "upload": upload_id}
        if not await self._bucket.copy(keys.data, target, state.info.length, tags, once=True):
            held = await self._bucket.head(target)
            if held is None or held.metadata.get("sha256") != digest:
                raise SegmentExists(
                    f"{key.path()}: already holds a different segment; refusing to replace it"
                )
        await self._uploads.remove(keys, None)
        return self._bucket.url(target)

    async def quarantine(self, device_id: str, upload_id: str, reason: str) -> str:
        keys = UploadKeys(device_id, upload_id)
        state = await self._sealed(keys, whole=False)
        target = f"quarantine/{device_id}/{upload_id}"
        await self._bucket.copy(keys.data, target, state.info.offset, {}, once=False)
        note = {**asdict(state.info), "reason": reason, "at": self._clock()}
        await self._bucket.put(f"{target}.json", json.dumps(note, sort_keys=True).encode())
        await self._uploads.remove(keys, None)
        return self._bucket.url(target)

    async def terminate(self, device_id: str, upload_id: str) -> None:
        keys = UploadKeys(device_id, upload_id)
        fetched = await self._bucket.get(keys.info)
        if fetched is None:
            raise UploadNotFound(f"{keys}: no such upload")
        await self._uploads.remove(keys, json.loads(fetched.body)["multipart_id"])

    # -- finished segments and receipts -----------------------------------------------------
    async def read_segment(self, key: SegmentKey) -> AsyncIterator[bytes]:
        async for block in self._bucket.stream(_segment(key)):
            yield block

    def local_segment_path(self, key: SegmentKey) -> Path | None:
        return None

    async def put_receipt(self, record: SegmentRecord, wire: bytes) -> None:
        await self._records.put_receipt(record, wire)

    async def get_receipt(self, digest: str) -> StoredReceipt | None:
        return await self._records.get_receipt(digest)

    async def receipts(self) -> list[StoredReceipt]:
        return await self._records.receipts()

    async def quarantined(self) -> list[Quarantined]:
        return await self._records.quarantined()

    # -- device registry and audit log ------------------------------------------------------
    async def get_device(self, device_id: str) -> DeviceRecord | None:
        return await self._records.get_device(device_id)

    async def put_device(self, record: DeviceRecord) -> None:
        await self._records.put_device(record)

    async def devices(self) -> list[DeviceRecord]:
        return await self._records.devices()

    async def append_audit(self, make_entry: Callable[[bytes | None], bytes]) -> bytes:
        return await self._records.append_audit(make_entry)

    def read_audit(self) -> AsyncIterator[bytes]:
        return self._records.read_audit()


def _segment(key: SegmentKey) -> str:
    return f"segments/{key.path()}.seg"  # named as the filesystem store names its files


def s3_options(table: dict[str, Any], where: str) -> S3Options:
    """`[store]` keys (without `kind` and `path`) as S3Options; ConfigError naming the key."""
    known = {f.name: f for f in fields(S3Options)}
    defaults = S3Options(bucket="")
    values: dict[str, Any] = {}
    for name, value in table.items():
        if name not in known:
            raise ConfigError(f"{where}: unknown key {name!r}; expected one of {sorted(known)}")
        default = getattr(defaults, name)
        expected: type[Any] = str if default is None or isinstance(default, str) else type(default)
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, expected) or isinstance(value, bool):
            raise ConfigError(f"{where}.{name}: expected {expected.__name__}, got {value!r}")
        if expected is not str and value <= 0:
            raise ConfigError(f"{where}.{name}: expected a positive number, got {value}")
        values[name] = value
    if not values.get("bucket"):
        raise ConfigError(f"{where}: kind 's3' needs bucket = \"NAME\"")
    options = S3Options(**values)
    if options.part_size < options.min_part_size:
        raise ConfigError(
            f"{where}.part_size: expected at least min_part_size ({options.min_part_size})"
        )
    return options


def open_s3_store(config: IngestConfig) -> S3Store:
    """The S3 store that ingest.toml's `[store]` describes (called by app.open_store)."""
    options = s3_options(config.store_options, f"{config.directory}: [store]")
    return S3Store(options, buffered_bytes=config.limits.max_buffered_bytes)
