"""The upload surface of storage: what the uploader may ask and tell, and nothing more.

The uploader (bodycamd/upload/) receives an object satisfying `UploadQueue` (the storage
façade) and never sees the journal or the spool. Each method is one journal transaction, so
what the uploader learned survives a power cut the moment the method returns:

- `record_upload_started` commits the tus upload URL *before* the first PATCH, so a restart
  resumes (HEAD) instead of creating a second upload;
- `record_upload_progress` commits an offset the server acknowledged;
- `record_uploaded` notes "every byte sent, no receipt yet" (a generic tus server ends here:
  the segment stays on flash);
- `confirm_and_delete` re-checks the verified receipt against the journal's digest, size and
  device, commits the receipt, unlinks the file, fsyncs the directory, then commits "deleted"
  with an audit event carrying the receipt's SHA-256. A crash between the two commits is
  finished at the next start, never repeated: a receipt in the journal means the file may go.
- `record_upload_failure` counts the attempt, keeps the reason and the time of the next try.
- `record_upload_rejected` marks the segment `rejected` (the server verified it and refused
  it, 422) with the server's reason and an "upload_rejected" audit event, in one
  transaction: the file stays on flash and `next_for_upload` never offers it again, until an
  operator puts it back (`retry_rejected`, `bodycamctl upload retry`).

Nothing here can delete a segment without a receipt: there is no other deleting method.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from ..receipt import Receipt

# "rejected" appears only in the queue listing (`upload_jobs`); the uploader never gets one
UploadPhase = Literal["sealed", "uploading", "uploaded", "rejected"]


@dataclass(frozen=True)
class UploadJob:
    """One sealed segment awaiting upload or a receipt, as the journal has it."""

    segment_id: int
    path: Path  # absolute path of the sealed file
    size: int
    digest: str  # hex SHA-256 of the whole sealed file
    recording_id: str
    index: int
    torn: bool
    phase: UploadPhase
    upload_url: str | None  # saved before the first PATCH; None: no upload created yet
    upload_offset: int  # last offset the server acknowledged
    attempts: int
    last_error: str | None


@dataclass(frozen=True)
class QueueFigures:
    """For status: segments and bytes still on flash awaiting upload or receipt."""

    segments: int
    bytes: int
    no_receipt: int  # fully sent, no receipt (generic tus server): stays on flash
    rejected: int = 0  # refused by the server (422): stays on flash, not in `segments`


class UploadQueue(Protocol):
    device_id: str

    async def next_for_upload(self, now_ns: int) -> UploadJob | None:
        """Oldest job (by seal order) whose next attempt is due at `now_ns`, or None."""
        ...

    async def next_attempt_ns(self) -> int | None:
        """When the earliest job not yet due becomes due (None: queue empty)."""
        ...

    async def record_upload_started(self, job: UploadJob, url: str) -> UploadJob: ...

    async def record_upload_progress(self, job: UploadJob, offset: int) -> UploadJob: ...

    async def record_uploaded(self, job: UploadJob) -> UploadJob: ...

    async def confirm_and_delete(self, job: UploadJob, receipt: Receipt, wire: bytes) -> None: ...

    async def record_upload_failure(
        self, job: UploadJob, reason: str, retry_at_ns: int
    ) -> None: ...

    async def record_upload_rejected(self, job: UploadJob, reason: str) -> None:
        """The server refused the segment itself: terminal until an operator retries it."""
        ...

    async def queue_figures(self) -> QueueFigures: ...

    async def audit(self, kind: str, **fields: Any) -> None: ...
