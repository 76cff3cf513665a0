"""Verification when the last byte lands, and the receipt that follows.

The ingest re-reads what the store holds (never the bytes it saw go by), hashes it, checks the
hash against the digest the camera declared, and runs the evidence reader's keyless scan with
the signing key enrolled for the certificate's device. It gives a receipt only for a segment
the device sealed: `complete`, or `torn` with the device's own torn seal (power loss); a file
that merely stops (truncated), fails a signature or a file hash (altered, bit flip), is signed
by another key, or whose header disagrees with the metadata, is quarantined with the reason.
The format logic is the evidence package's; nothing here parses a segment.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519

from ..errors import EvidenceError
from ..evidence import Verdict, scan_segment
from ..receipt import Receipt, receipt_key_id, sign_receipt
from .audit import AuditLog, rfc3339
from .errors import MetadataInvalid, SegmentExists, SegmentRejected, UploadNotFound
from .store import DEVICE_ID, IngestStore, Link, SegmentKey, SegmentRecord, UploadInfo

_ZERO_DIGEST = "0" * 64
_HEX = set("0123456789abcdef")


@dataclass(frozen=True)
class SegmentMeta:
    """The camera's Upload-Metadata for one segment (tus: base64 values)."""

    device: str
    recording: str  # canonical UUID text
    index: int
    digest: str  # hex SHA-256 of the whole file
    torn: bool | None  # None when the camera did not say

    @property
    def key(self) -> SegmentKey:
        return SegmentKey(self.device, self.recording, self.index)


def parse_segment_meta(metadata: dict[str, str]) -> SegmentMeta:
    """Check the metadata keys device, recording, index, digest (and optional torn)."""
    missing = [k for k in ("device", "recording", "index", "digest") if k not in metadata]
    if missing:
        raise MetadataInvalid(f"Upload-Metadata lacks {', '.join(missing)}")
    device = metadata["device"]
    if not DEVICE_ID.fullmatch(device):
        raise MetadataInvalid(f"Upload-Metadata device {device!r} is not a device id")
    try:
        recording = str(uuid.UUID(metadata["recording"]))
    except ValueError:
        raise MetadataInvalid(
            f"Upload-Metadata recording {metadata['recording']!r}: expected a UUID"
        ) from None
    index_text = metadata["index"]
    if not index_text.isdigit() or len(index_text) > 9:
        raise MetadataInvalid(f"Upload-Metadata index {index_text!r}: expected 0 to 999999999")
    digest = metadata["digest"].lower()
    if len(digest) != 64 or not set(digest) <= _HEX:
        raise MetadataInvalid("Upload-Metadata digest: expected 64 hex digits of SHA-256")
    torn_text = metadata.get("torn")
    torn = None
    if torn_text is not None:
        if torn_text.lower() not in ("true", "false", "1", "0"):
            raise MetadataInvalid(f"Upload-Metadata torn {torn_text!r}: expected true or false")
        torn = torn_text.lower() in ("true", "1")
    return SegmentMeta(device, recording, int(index_text), digest, torn)


def decode_device_key(text: str) -> ed25519.Ed25519PublicKey:
    try:
        return ed25519.Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise SegmentRejected("the enrolled signing key in the registry is unusable") from exc


@contextlib.asynccontextmanager
async def spooled(chunks: AsyncIterator[bytes]) -> AsyncIterator[Path]:
    """The bytes of `chunks` in a temporary local file, for stores without local files."""
    with tempfile.TemporaryDirectory(prefix="bodycamd-ingest-") as directory:
        path = Path(directory) / "segment"
        with path.open("wb") as handle:
            async for chunk in chunks:
                await asyncio.to_thread(handle.write, chunk)
        yield path


def scan_file(path: Path, device_key: ed25519.Ed25519PublicKey) -> tuple[Verdict, str, int]:
    """Keyless scan plus the whole file's SHA-256 (the scan's own when it read every byte)."""
    verdict = scan_segment(path, device_key)
    size = path.stat().st_size
    if verdict.file_size == size:
        return verdict, verdict.digest.hex(), size
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return verdict, digest.hexdigest(), size


def judge(verdict: Verdict, digest: str, meta: SegmentMeta, device_id: str) -> None:
    """Raise SegmentRejected unless the scanned segment is what the metadata says."""
    header = verdict.header
    if digest != meta.digest:
        raise SegmentRejected(
            f"digest mismatch: the metadata says {meta.digest}, the stored bytes hash to {digest}"
        )
    if verdict.status == "torn" and not verdict.sealed_torn:
        raise SegmentRejected(f"segment is not sealed (truncated?): {verdict.tail}")
    for name, said, found in (
        ("device", device_id, header.device_name),
        ("recording", meta.recording, str(header.recording_id)),
        ("index", meta.index, header.segment_index),
    ):
        if said != found:
            raise SegmentRejected(f"metadata {name} is {said!r}; the signed header says {found!r}")
    if meta.torn is not None and meta.torn != (verdict.status == "torn"):
        raise SegmentRejected(f"metadata torn={meta.torn}; the segment is {verdict.status}")
    if header.segment_index == 0 and header.prev_digest.hex() != _ZERO_DIGEST:
        raise SegmentRejected("segment 0 names a previous segment")


async def scan_stored(
    store: IngestStore, info: UploadInfo, device_key: ed25519.Ed25519PublicKey
) -> tuple[Verdict, str, int]:
    """Re-read the upload from the store and scan it; EvidenceError becomes a rejection."""
    local = store.local_upload_path(info.device_id, info.upload_id)
    try:
        if local is not None:
            return await asyncio.to_thread(scan_file, local, device_key)
        async with spooled(store.read_upload(info.device_id, info.upload_id)) as path:
            return await asyncio.to_thread(scan_file, path, device_key)
    except EvidenceError as exc:
        raise SegmentRejected(f"segment fails verification: {exc}") from exc


class Completion:
    """Turns a complete upload into a stored segment with a receipt, or a quarantined one."""

    def __init__(
        self,
        store: IngestStore,
        audit: AuditLog,
        receipt_key: ed25519.Ed25519PrivateKey,
        clock: Callable[[], float],
    ) -> None:
        self._store = store
        self._audit = audit
        self._key = receipt_key
        self._key_id = receipt_key_id(receipt_key.public_key())
        self._clock = clock
        self._locks: dict[str, asyncio.Lock] = {}

    async def complete(self, info: UploadInfo, device_key: ed25519.Ed25519PublicKey) -> bytes:
        """The wire receipt for a complete upload. Raises SegmentRejected after quarantining
        it (the reason is the camera's answer), UploadNotFound if it is gone without a receipt
        for this device. Concurrent calls for one upload (the last PATCH, a HEAD, the sweep)
        run one at a time; the later ones answer with the first one's receipt."""
        lock = self._locks.setdefault(info.upload_id, asyncio.Lock())
        try:
            async with lock:
                try:
                    current = await self._store.upload_info(info.device_id, info.upload_id)
                except UploadNotFound:
                    stored = await self._store.get_receipt(info.metadata.get("digest", ""))
                    if stored is not None and stored.record.key.device_id == info.device_id:
                        return stored.wire
                    raise
                return await self._complete(current, device_key)
        finally:
            if not lock.locked():
                self._locks.pop(info.upload_id, None)

    async def _complete(self, info: UploadInfo, device_key: ed25519.Ed25519PublicKey) -> bytes:
        received_at = rfc3339(self._clock())
        meta = parse_segment_meta(info.metadata)
        # the audit entry is written while the segment is scanned (both wait on the disk); it
        # is durable before anything that follows it in the log (rejection, receipt)
        completed = asyncio.ensure_future(
            self._audit.record(
                "upload.completed", device=info.device_id, upload=info.upload_id, size=info.length
            )
        )
        try:
            try:
                verdict, digest, size = await scan_stored(self._store, info, device_key)
            finally:
                await completed
            judge(verdict, digest, meta, info.device_id)
            link = await self._link(verdict, meta)
            existing = await self._store.get_receipt(digest)
            if existing is not None and existing.record.key.device_id == info.device_id:
                await self._store.terminate(info.device_id, info.upload_id)
                await self._audit.record(
                    "upload.duplicate", device=info.device_id, upload=info.upload_id, digest=digest
                )
                return existing.wire
            stored_at = await self._store.finish(info.device_id, info.upload_id, meta.key, digest)
        except SegmentExists as exc:
            await self._reject(info, f"{exc}")
            raise SegmentRejected(str(exc)) from exc
        except SegmentRejected as exc:
            await self._reject(info, exc.reason)
            raise
        record = SegmentRecord(
            key=meta.key,
            digest=digest,
            size=size,
            verdict=verdict.status,
            end_of_recording=verdict.end_of_recording,
            sealed_torn=verdict.sealed_torn,
            open_failed=verdict.open_failed,
            prev_digest=verdict.header.prev_digest.hex(),
            link=link,
            stored_at=stored_at,
            received_at=received_at,
            upload_id=info.upload_id,
        )
        receipt = Receipt(
            digest=digest,
            size=size,
            device_id=info.device_id,
            recording_id=meta.recording,
            index=meta.index,
            verdict=verdict.status,
            stored_at=stored_at,
            received_at=received_at,
            key_id=self._key_id,
        )
        wire = sign_receipt(receipt, self._key)
        await self._store.put_receipt(record, wire)
        await self._audit.record(
            "receipt.issued",
            device=info.device_id,
            upload=info.upload_id,
            digest=digest,
            size=size,
            verdict=verdict.status,
            link=link,
            stored_at=stored_at,
        )
        return wire

    async def _link(self, verdict: Verdict, meta: SegmentMeta) -> Link:
        if meta.index == 0:
            return "first"
        previous = await self._store.get_receipt(verdict.header.prev_digest.hex())
        if previous is None:
            return "pending"
        expected = SegmentKey(meta.device, meta.recording, meta.index - 1)
        if previous.record.key != expected:
            raise SegmentRejected(
                f"header's previous-segment digest names {previous.record.key.path()}, "
                f"not {expected.path()} (substituted)"
            )
        return "linked"

    async def _reject(self, info: UploadInfo, reason: str) -> None:
        with contextlib.suppress(UploadNotFound):
            location = await self._store.quarantine(info.device_id, info.upload_id, reason)
            await self._audit.record(
                "upload.rejected",
                device=info.device_id,
                upload=info.upload_id,
                reason=reason,
                quarantined_at=location,
            )
