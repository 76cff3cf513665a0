"""An in-memory UploadQueue over real files, for unit tests of the worker logic only.

The storage façade implements the real one (journal, fsync, audit trail); integration tests
use it. This one keeps the Protocol's semantics that the worker relies on: oldest first,
due times, the URL kept until a new one is started, deletion only through
`confirm_and_delete` with a receipt that matches the job.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

from bodycamd.receipt import Receipt, check_covers
from bodycamd.storage.uploads import QueueFigures, UploadJob


class MemoryQueue:
    def __init__(self, device_id: str = "test-cam") -> None:
        self.device_id = device_id
        self.jobs: dict[int, UploadJob] = {}
        self.due: dict[int, int] = {}
        self.deleted: dict[int, bytes] = {}  # segment id → receipt wire
        self.audits: list[tuple[str, dict[str, Any]]] = []
        self.started: list[tuple[int, str]] = []
        self.progress: list[tuple[int, int]] = []
        self.failures: list[tuple[int, str]] = []
        self.rejected: dict[int, str] = {}  # segment id → the server's reason

    def add(self, path: Path, recording_id: str = "ab" * 16, index: int = 0) -> UploadJob:
        data = path.read_bytes()
        job = UploadJob(
            segment_id=len(self.jobs) + len(self.deleted) + len(self.rejected) + 1,
            path=path,
            size=len(data),
            digest=hashlib.sha256(data).hexdigest(),
            recording_id=recording_id,
            index=index,
            torn=False,
            phase="sealed",
            upload_url=None,
            upload_offset=0,
            attempts=0,
            last_error=None,
        )
        self.jobs[job.segment_id] = job
        self.due[job.segment_id] = 0
        return job

    def _put(self, job: UploadJob, **changes: Any) -> UploadJob:
        job = dataclasses.replace(self.jobs[job.segment_id], **changes)
        self.jobs[job.segment_id] = job
        return job

    async def next_for_upload(self, now_ns: int) -> UploadJob | None:
        due = [j for j in self.jobs.values() if self.due[j.segment_id] <= now_ns]
        return min(due, key=lambda j: j.segment_id, default=None)

    async def next_attempt_ns(self) -> int | None:
        return min(self.due[i] for i in self.jobs) if self.jobs else None

    async def record_upload_started(self, job: UploadJob, url: str) -> UploadJob:
        self.started.append((job.segment_id, url))
        return self._put(job, phase="uploading", upload_url=url, upload_offset=0)

    async def record_upload_progress(self, job: UploadJob, offset: int) -> UploadJob:
        self.progress.append((job.segment_id, offset))
        return self._put(job, phase="uploading", upload_offset=offset)

    async def record_uploaded(self, job: UploadJob) -> UploadJob:
        return self._put(job, phase="uploaded", upload_offset=job.size)

    async def confirm_and_delete(self, job: UploadJob, receipt: Receipt, wire: bytes) -> None:
        current = self.jobs[job.segment_id]
        check_covers(receipt, digest=current.digest, size=current.size, device_id=self.device_id)
        current.path.unlink()
        del self.jobs[job.segment_id]
        self.deleted[job.segment_id] = wire
        await self.audit("segment_deleted", receipt_sha256=hashlib.sha256(wire).hexdigest())

    async def record_upload_failure(self, job: UploadJob, reason: str, retry_at_ns: int) -> None:
        self.failures.append((job.segment_id, reason))
        current = self.jobs[job.segment_id]
        self._put(current, attempts=current.attempts + 1, last_error=reason)
        self.due[job.segment_id] = retry_at_ns

    async def record_upload_rejected(self, job: UploadJob, reason: str) -> None:
        """Like the journal: out of the queue for good, the file kept."""
        self.rejected[job.segment_id] = reason
        del self.jobs[job.segment_id]

    async def queue_figures(self) -> QueueFigures:
        jobs = list(self.jobs.values())
        return QueueFigures(
            segments=len(jobs),
            bytes=sum(j.size - j.upload_offset for j in jobs),
            no_receipt=sum(1 for j in jobs if j.phase == "uploaded"),
            rejected=len(self.rejected),
        )

    async def audit(self, kind: str, **fields: Any) -> None:
        self.audits.append((kind, fields))


class Crash(BaseException):
    """A power cut at a crash point: nothing after it runs, no handler catches it."""


class CrashingQueue(MemoryQueue):
    """Raises Crash when `method` is called for the `nth` time (1-based), before it acts:
    the journal write it stands for never happened."""

    def __init__(self, method: str, nth: int = 1, device_id: str = "test-cam") -> None:
        super().__init__(device_id)
        self.crash_method, self.crash_nth, self.calls = method, nth, 0
        self.crashed = False

    def _maybe_crash(self, method: str) -> None:
        if method == self.crash_method and not self.crashed:
            self.calls += 1
            if self.calls == self.crash_nth:
                self.crashed = True
                raise Crash(method)

    async def record_upload_started(self, job: UploadJob, url: str) -> UploadJob:
        self._maybe_crash("record_upload_started")
        return await super().record_upload_started(job, url)

    async def record_upload_progress(self, job: UploadJob, offset: int) -> UploadJob:
        self._maybe_crash("record_upload_progress")
        return await super().record_upload_progress(job, offset)

    async def record_uploaded(self, job: UploadJob) -> UploadJob:
        self._maybe_crash("record_uploaded")
        return await super().record_uploaded(job)
