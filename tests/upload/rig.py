"""Builds an UploadComponent for a test: real TLS files, a virtual clock, any UploadQueue."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519

from bodycamd.journal.db import SegmentRow
from bodycamd.receipt import Receipt, receipt_key_id, sign_receipt
from bodycamd.signals import Signal
from bodycamd.storage.uploads import UploadJob, UploadQueue
from bodycamd.upload.component import UploadComponent
from bodycamd.upload.progress import UploadProgress
from bodycamd.upload.settings import UploadSettings

from .memory_queue import MemoryQueue
from .peers import Pki
from .real_storage import RealStorage
from .vclock import VirtualClock


@dataclass
class ReceiptSigner:
    key: ed25519.Ed25519PrivateKey = field(default_factory=ed25519.Ed25519PrivateKey.generate)

    @property
    def trusted(self) -> dict[str, ed25519.Ed25519PublicKey]:
        public = self.key.public_key()
        return {receipt_key_id(public): public}

    def sign(self, job: UploadJob, device: str = "test-cam", **changes: object) -> bytes:
        fields: dict[str, object] = {
            "digest": job.digest,
            "size": job.size,
            "device_id": device,
            "recording_id": job.recording_id,
            "index": job.index,
            "verdict": "complete",
            "stored_at": f"file:///evidence/{job.recording_id}/{job.index:06d}.seg",
            "received_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "key_id": receipt_key_id(self.key.public_key()),
        }
        fields.update(changes)
        return sign_receipt(Receipt(**fields), self.key)  # type: ignore[arg-type]


@dataclass
class Rig:
    component: UploadComponent
    docked: Signal
    recording: Signal
    clock: VirtualClock
    published: list[UploadProgress]
    task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Rig:
        await self.component.start()
        self.task = asyncio.create_task(self.component.run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.component.stop()
        assert self.task is not None
        await asyncio.wait_for(self.task, 10)

    async def until(self, predicate: Callable[[], bool], what: str, limit: float = 60) -> None:
        """Wait (events, not a timing claim) until `predicate()`; fail naming `what`."""
        async with asyncio.timeout(limit):
            while not predicate():  # noqa: ASYNC110 - state without change events; no timing claim
                await asyncio.sleep(0.005)
        assert predicate(), what

    async def until_all_sent(self, queue: MemoryQueue) -> UploadProgress:
        """Every job fully sent, then the worker idle; returns the progress then."""
        await self.until(lambda: all(j.phase == "uploaded" for j in queue.jobs.values()), "sent")
        await self.until(lambda: self.component.progress.value.state == "idle", "idle")
        return self.component.progress.value


def job_of(store: RealStorage, row: SegmentRow) -> UploadJob:
    """The UploadJob fields a receipt is about, for a row of the real journal."""
    return UploadJob(
        segment_id=row.id,
        path=store.path(row),
        size=row.size,
        digest=row.digest,
        recording_id=row.recording_id,
        index=row.segment_index,
        torn=row.torn,
        phase="sealed",
        upload_url=None,
        upload_offset=0,
        attempts=0,
        last_error=None,
    )


def settings(
    endpoint: str,
    pki: Pki | None,
    trusted: dict[str, ed25519.Ed25519PublicKey],
    *,
    chunk_size: int = 256 * 1024,
    max_rate: int = 0,
    ca_file: Path | None = None,
    client_cert: bool = True,
) -> UploadSettings:
    return UploadSettings(
        endpoint=endpoint,
        receipts_url=endpoint + "/receipts",
        ca_file=(ca_file or pki.ca_file) if pki else None,
        client_cert=pki.client_cert if pki and client_cert else None,
        client_key=pki.client_key if pki and client_cert else None,
        receipt_keys=trusted,
        chunk_size=chunk_size,
        max_rate=max_rate,
        retry_min=1.0,
        retry_max=300.0,
    )


def make_rig(
    upload: UploadSettings,
    queue: UploadQueue,
    *,
    clock: VirtualClock | None = None,
    wall: Callable[[], float] | None = None,
) -> Rig:
    clock = clock or VirtualClock()
    docked, recording = Signal("docked"), Signal("recording")
    published: list[UploadProgress] = []
    component = UploadComponent(
        upload,
        lambda: queue,
        docked,
        recording,
        on_progress=published.append,
        clock=clock.monotonic,
        now_ns=clock.now_ns,
        wall=wall or time.time,
        sleep=clock.sleep,
        rng=random.Random(7),
    )
    return Rig(component, docked, recording, clock, published)
