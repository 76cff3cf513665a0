"""A real spool (files, fsync, SQLite journal) in a temporary state directory, and a stand-in
recorder that feeds it footage the way the capture code will: pieces, checkpoints, rollover."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519

from bodycamd.config import parse_size
from bodycamd.errors import QuotaExceeded
from bodycamd.evidence.writer import SealedSegment
from bodycamd.journal import Journal
from bodycamd.receipt import Receipt, parse_receipt, receipt_key_id, sign_receipt
from bodycamd.storage import QuotaLedger, SegmentStart, Spool, StateLayout, Storage
from bodycamd.storage.quota import FsSpace, statvfs_space
from tests.evidence.helpers import Keys, make_keys


def make_spool(
    root: Path,
    keys: Keys | None = None,
    *,
    quota: str = "90%",
    reserve: str = "0",
    space: Callable[[Path], FsSpace] = statvfs_space,
    fsync: Callable[[int], None] = os.fsync,
    ballast: int = 0,
) -> tuple[Spool, Keys]:
    keys = keys or make_keys()
    layout = StateLayout(root)
    layout.prepare()
    ledger = QuotaLedger(
        root,
        lambda total: parse_size(quota, total),
        parse_size(reserve, 0),
        low_minutes=1,
        min_free_minutes=0.05,
        bitrate=400_000,
        space=space,
    )
    ledger.reconcile(layout.segment_files())
    journal = Journal(layout.journal, keys.device)
    spool = Spool(
        layout, journal, ledger, keys.device, keys.evidence.public, "test-cam", fsync=fsync
    )
    spool.ensure_ballast(ballast)
    return spool, keys


def storage_for(spool: Spool, **options: Any) -> Storage:
    """The storage façade over a test spool, as StorageComponent.start would attach it."""
    storage = Storage("test-cam", **options)
    storage.attach(spool)
    return storage


RECEIPT_KEY = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32, 64)))


def signed_receipt(
    digest: str, size: int, *, device_id: str = "test-cam", **over: Any
) -> tuple[Receipt, bytes]:
    """A receipt as the ingest would sign it (wire bytes parsed back, as the uploader does)."""
    fields: dict[str, Any] = {
        "digest": digest,
        "size": size,
        "device_id": device_id,
        "recording_id": "0f" * 16,
        "index": 0,
        "verdict": "complete",
        "stored_at": "fs:test-cam/0.seg",
        "received_at": "2026-11-30T12:00:00Z",
        "key_id": receipt_key_id(RECEIPT_KEY.public_key()),
    }
    fields.update(over)
    wire = sign_receipt(Receipt(**fields), RECEIPT_KEY)
    trusted = {receipt_key_id(RECEIPT_KEY.public_key()): RECEIPT_KEY.public_key()}
    return parse_receipt(wire, trusted), wire


def audit_kinds(spool: Spool) -> list[str]:
    return [event.kind for event in spool.journal.events()]


@dataclass
class Recording:
    recording_id: uuid.UUID
    sealed: list[SealedSegment] = field(default_factory=list)
    stopped_by: str = ""
    fed: int = 0  # plaintext bytes accepted


def record(
    spool: Spool,
    footage: bytes,
    *,
    piece: int = 1316,
    checkpoint_every: int = 20_000,
    segment_bytes: int = 100_000,
) -> Recording:
    """Feed `footage` like the recorder: stop on QuotaExceeded, sealing what was written."""
    recording = Recording(uuid.uuid4())
    prev, index = b"\0" * 32, 0
    segment = spool.open_segment(SegmentStart(recording.recording_id, 0, prev, True))
    since_checkpoint = 0
    position = 0
    try:
        while position < len(footage):
            chunk = footage[position : position + piece]
            if segment.plaintext_bytes + len(chunk) > segment_bytes:
                sealed = segment.seal(end_of_recording=False)
                recording.sealed.append(sealed)
                index += 1
                segment = spool.open_segment(
                    SegmentStart(recording.recording_id, index, sealed.digest, True)
                )
            segment.write(chunk)
            position += len(chunk)
            recording.fed = position
            since_checkpoint += len(chunk)
            if since_checkpoint >= checkpoint_every:
                segment.checkpoint()
                since_checkpoint = 0
    except QuotaExceeded as exc:
        recording.stopped_by = str(exc)
        if "sealed up to its last checkpoint" in str(exc):  # ENOSPC: salvaged as torn
            return recording
    recording.sealed.append(segment.seal(end_of_recording=True))
    return recording
