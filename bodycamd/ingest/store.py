"""The store behind an ingest node: everything a node needs, so that nodes keep no state.

An ingest node holds nothing between requests: in-progress uploads, finished segments,
quarantined uploads, receipts, the device registry and the audit log all live in an
`IngestStore`. Two implementations: `fs_store.FilesystemStore` (one machine, the default and
the tests' store) and the S3 store (a fleet of nodes sharing one bucket; any node continues
any upload). The HTTP layer only ever talks to this Protocol.

Names. A device id is the enrolled device name (the client certificate's subject CN, checked
against `DEVICE_ID` at enrolment), so it is safe as a path or key component. An upload is
addressed by (device id, upload id): a device can never reach another device's upload, and a
per-device listing is one prefix. A finished segment lives at `SegmentKey.path()`,
``<device>/<recording>/<index:06d>``.

Crash contract (what every implementation guarantees at a crash or power cut at any instant;
"acknowledged" means the coroutine returned):

- `create_upload`: after it returns the upload exists with offset 0 and its metadata; before,
  it may or may not exist (an orphan is removed by the expiry sweep).
- `append`: every byte up to the offset it returns is durable (fsync of file and offset on the
  filesystem; uploaded parts plus the "incomplete part" object on S3). A crash during the call
  leaves the upload at an offset between the one it started at and the one it would have
  returned, with exactly the bytes received up to that offset — never a byte that was not
  received, never less than the previous acknowledged offset. A checksummed append is all or
  nothing: on mismatch or a cut stream the offset stays where it was.
- `finish`: moves the complete upload to its final key as one step; after it returns the
  segment is durable at the returned location and the upload is gone. A crash leaves either
  the upload (retry `finish`) or the finished segment; `finish` is idempotent for the same
  bytes, so a retry after a crash between the move and the receipt succeeds.
- `quarantine` and `terminate`: one step; after return the upload is gone (moved apart with
  its reason, or deleted).
- `put_receipt`: the receipt and its segment record become visible together, durable on return.
  It is called only after `finish` returned, so a receipt never names bytes that are not
  durably stored.
- `put_device`: replaces the registry entry as one step, durable on return.
- `append_audit`: the entry is durable on return, and the log stays one unbroken chain even
  with several appenders (nodes, the operator's CLI) at once.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

DEVICE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
UPLOAD_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
Verdict = Literal["complete", "torn"]
Link = Literal["first", "linked", "pending"]


@dataclass(frozen=True)
class UploadInfo:
    """An in-progress upload as the store holds it. Times are seconds since the epoch."""

    upload_id: str
    device_id: str
    length: int  # Upload-Length declared at creation
    offset: int  # durable (acknowledged) bytes
    metadata: dict[str, str]  # decoded Upload-Metadata
    created_at: float
    expires_at: float

    @property
    def complete(self) -> bool:
        return self.offset == self.length


@dataclass(frozen=True)
class SegmentKey:
    """Where a finished segment lives: one object per device, recording and index."""

    device_id: str
    recording_id: str
    index: int

    def path(self) -> str:
        return f"{self.device_id}/{self.recording_id}/{self.index:06d}"


@dataclass(frozen=True)
class SegmentRecord:
    """What the ingest learnt about a stored segment when it issued the receipt.

    `prev_digest` is the previous segment's digest from the signed header (zeros for index 0)
    and `link` what it matched then: "first" (index 0), "linked" (the previous segment of the
    recording is stored with that digest) or "pending" (not stored yet) — `list` recomputes
    the chain from all records, since a later upload can turn "pending" into "linked".
    """

    key: SegmentKey
    digest: str  # hex SHA-256 of the whole file
    size: int
    verdict: Verdict
    end_of_recording: bool
    sealed_torn: bool
    prev_digest: str
    link: Link
    stored_at: str
    received_at: str  # RFC 3339 UTC
    upload_id: str
    # the device's recovery sealed it empty because its journal says it could not be opened
    # (not a power loss); records stored before this field existed read False
    open_failed: bool = False


@dataclass(frozen=True)
class StoredReceipt:
    record: SegmentRecord
    wire: bytes  # the signed receipt exactly as served


@dataclass(frozen=True)
class DeviceRecord:
    """The registry's binding of a device id to its signing key and client certificate."""

    device_id: str
    signing_key: str  # base64 of the raw Ed25519 public key (as `bodycamd keys show` prints)
    cert_serial: str  # hex serial of the one client certificate accepted for this device
    enrolled_at: str
    revoked: bool = False
    revoked_at: str | None = None


@dataclass(frozen=True)
class Quarantined:
    upload_id: str
    device_id: str
    reason: str
    location: str
    metadata: dict[str, str] = field(default_factory=dict)


class IngestStore(Protocol):
    """Everything an ingest node keeps. Methods raise `StoreError` when the store fails and
    `UploadNotFound` for an upload that the device does not have."""

    def describe(self) -> str:
        """One line naming the store for logs and `stored_at`, e.g. "file:///srv/ingest"."""
        ...

    async def close(self) -> None:
        """Release connections and files; the store's contents are unaffected."""
        ...

    # -- in-progress uploads --------------------------------------------------------------
    async def create_upload(
        self, device_id: str, length: int, metadata: dict[str, str], expires_at: float
    ) -> UploadInfo:
        """A new empty upload with a fresh random id (matching UPLOAD_ID)."""
        ...

    async def upload_info(self, device_id: str, upload_id: str) -> UploadInfo:
        """The upload's durable state. Raises UploadNotFound."""
        ...

    async def uploads(self, device_id: str | None = None) -> list[UploadInfo]:
        """In-progress uploads of one device (for the in-flight limit) or of all (the sweep)."""
        ...

    async def append(
        self,
        device_id: str,
        upload_id: str,
        offset: int,
        chunks: AsyncIterator[bytes],
        *,
        expect_sha256: bytes | None = None,
    ) -> int:
        """Append the bytes of `chunks` at `offset`; return the new durable offset.

        Raises OffsetMismatch unless `offset` is the durable offset, UploadBusy if another
        append to this upload is running, UploadTooLarge if the bytes would pass the declared
        length (bytes before that point are kept). When `chunks` raises (the client went
        away), what arrived is made durable and the exception propagates; the next HEAD shows
        the offset. With `expect_sha256` the append is all or nothing: on a mismatch the bytes
        are discarded and ChecksumMismatch raised; a cut stream keeps nothing. An
        implementation may buffer internally (S3 keeps a tail under the 5 MiB part minimum as
        an "incomplete part" object) as long as the returned offset is durable.
        """
        ...

    def read_upload(self, device_id: str, upload_id: str) -> AsyncIterator[bytes]:
        """The upload's bytes from 0 to its durable offset, re-read from the store."""
        ...

    def local_upload_path(self, device_id: str, upload_id: str) -> Path | None:
        """The upload's bytes as a local file, if the store has one (filesystem); else None
        and the reader spools `read_upload` to a temporary file."""
        ...

    async def finish(self, device_id: str, upload_id: str, key: SegmentKey, digest: str) -> str:
        """Move the complete upload to `key`; return the location (`stored_at`). Idempotent:
        if `key` already holds these bytes (same `digest`) the upload is dropped and the
        location returned. Raises SegmentExists, leaving the upload, if it holds others."""
        ...

    async def quarantine(self, device_id: str, upload_id: str, reason: str) -> str:
        """Move the upload apart with `reason` (never delete it); return its location."""
        ...

    async def terminate(self, device_id: str, upload_id: str) -> None:
        """Delete an in-progress upload and its bytes."""
        ...

    # -- finished segments and receipts -----------------------------------------------------
    def read_segment(self, key: SegmentKey) -> AsyncIterator[bytes]:
        """A stored segment's bytes (for `verify`)."""
        ...

    def local_segment_path(self, key: SegmentKey) -> Path | None:
        """A stored segment as a local file, if the store has one; else None."""
        ...

    async def put_receipt(self, record: SegmentRecord, wire: bytes) -> None:
        """Store the signed receipt for `record.digest` with its segment record."""
        ...

    async def get_receipt(self, digest: str) -> StoredReceipt | None:
        """The receipt for a segment digest (hex), or None."""
        ...

    async def receipts(self) -> list[StoredReceipt]:
        """Every receipt with its segment record (operator tools: list, verify)."""
        ...

    async def quarantined(self) -> list[Quarantined]:
        """Every upload kept apart, with its reason."""
        ...

    # -- device registry ------------------------------------------------------------------
    async def get_device(self, device_id: str) -> DeviceRecord | None: ...

    async def put_device(self, record: DeviceRecord) -> None: ...

    async def devices(self) -> list[DeviceRecord]: ...

    # -- audit log ------------------------------------------------------------------------
    async def append_audit(self, make_entry: Callable[[bytes | None], bytes]) -> bytes:
        """Append one entry built from the current last entry (None for an empty log) and
        return it. `make_entry` may be called again if another appender won the race, so it
        must be pure. Entries are single lines without a newline."""
        ...

    def read_audit(self) -> AsyncIterator[bytes]:
        """The audit log's entries in order."""
        ...
