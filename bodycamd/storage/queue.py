"""The upload queue of the storage façade: the `UploadQueue` protocol (uploads.py) over the
journal and the spool.

Each method is one journal transaction (rows and their audit event together), run in a
worker thread; what a method recorded survives a power cut once it returns. The rows are
re-read by id inside each step, so a stale `UploadJob` cannot resurrect a deleted segment:
a job whose row is no longer awaiting upload raises NotAwaitingUpload.

`confirm_and_delete` is the only path that deletes footage, in this order:

    1. check the receipt against the journal's digest, size and the device id
       (ReceiptInvalid → audited "receipt_refused", nothing changes, the error is re-raised);
    2. commit the wire receipt in the row, with "upload_receipt" (the receipt's SHA-256);
    3. unlink the file and fsync its directory;
    4. commit "deleted", with "segment_deleted" (the receipt's SHA-256).

A power cut between 2 and 4 leaves a row with a receipt that is not deleted; start-up
reconciliation finishes the deletion (reconcile.py) and the row is never offered for upload
again (`next_for_upload` skips rows with a receipt). `crash_point("receipt_committed")`
runs between 2 and 3, for tests to cut the power there.

A segment the server refused (422) becomes `rejected` with its audit event in one
transaction (`record_upload_rejected`): after a power cut it is either still awaiting upload
(the next attempt sends it once more and is refused again) or rejected, never half of it.
Only `retry_rejected`, an operator's request, makes it pending again.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from typing import Any

from ..errors import NotAwaitingUpload, Refused, StorageError
from ..journal.db import SegmentRow
from ..receipt import Receipt, ReceiptInvalid, check_covers
from .spool import Spool
from .uploads import QueueFigures, UploadJob, UploadPhase

log = logging.getLogger(__name__)
MAX_ERROR_TEXT = 500  # characters of an upload error kept in the journal
_PHASES: dict[str, UploadPhase] = {
    "sealed": "sealed",
    "uploading": "uploading",
    "uploaded": "uploaded",
}
_LISTED: dict[str, UploadPhase] = {**_PHASES, "rejected": "rejected"}


def _no_crash(point: str) -> None:
    return None


class SpoolUploadQueue:
    """Base of the `Storage` façade holding its spool; implements `UploadQueue`."""

    def __init__(
        self,
        device_id: str,
        *,
        crash_point: Callable[[str], None] | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.device_id = device_id
        self._spool: Spool | None = None
        self._crash_point = crash_point or _no_crash
        self._clock_ns = clock_ns

    def _require(self) -> Spool:
        if self._spool is None:
            raise StorageError("storage is not started")
        return self._spool

    # -- reads ----------------------------------------------------------------------------------

    async def next_for_upload(self, now_ns: int) -> UploadJob | None:
        spool = self._require()
        rows = await asyncio.to_thread(spool.journal.pending, due_ns=now_ns, limit=1)
        return self._job(spool, rows[0]) if rows else None

    async def next_attempt_ns(self) -> int | None:
        return await asyncio.to_thread(self._require().journal.earliest_attempt_ns)

    async def queue_figures(self) -> QueueFigures:
        counts = await asyncio.to_thread(self._require().journal.count_pending)
        return QueueFigures(counts.segments, counts.bytes, counts.no_receipt, counts.rejected)

    async def upload_jobs(self) -> list[UploadJob]:
        """Every segment awaiting upload or a receipt, and every rejected one (its phase
        "rejected", `last_error` the server's reason), oldest first (`bodycamctl uploads`)."""
        spool = self._require()
        rows = await asyncio.to_thread(spool.journal.pending, rejected=True)
        return [self._job(spool, row) for row in rows]

    # -- steps ----------------------------------------------------------------------------------

    async def record_upload_started(self, job: UploadJob, url: str) -> UploadJob:
        def step(spool: Spool, row: SegmentRow) -> None:
            with spool.journal.transaction() as db:
                spool.journal.set_state(db, row.id, "uploading", upload_url=url, upload_offset=0)
                spool.journal.audit_in(
                    db, "upload_started", path=row.path, digest=row.digest, url=url
                )

        return await self._step(job, step)

    async def record_upload_progress(self, job: UploadJob, offset: int) -> UploadJob:
        def step(spool: Spool, row: SegmentRow) -> None:
            if row.state != "uploading" or not 0 <= offset <= row.size:
                raise ValueError(
                    f"{row.path}: upload offset {offset} in state {row.state}; expected an "
                    f"upload under way and 0..{row.size}"
                )
            with spool.journal.transaction() as db:
                spool.journal.set_state(db, row.id, "uploading", upload_offset=offset)

        return await self._step(job, step)

    async def record_uploaded(self, job: UploadJob) -> UploadJob:
        def step(spool: Spool, row: SegmentRow) -> None:
            with spool.journal.transaction() as db:
                spool.journal.set_state(
                    db, row.id, "uploaded", upload_offset=row.size, uploaded_ns=self._clock_ns()
                )
                spool.journal.audit_in(db, "upload_sent", path=row.path, digest=row.digest)

        return await self._step(job, step)

    async def record_upload_failure(self, job: UploadJob, reason: str, retry_at_ns: int) -> None:
        def step(spool: Spool, row: SegmentRow) -> None:
            text = reason[:MAX_ERROR_TEXT]
            with spool.journal.transaction() as db:
                spool.journal.set_state(
                    db,
                    row.id,
                    row.state,
                    attempts=row.attempts + 1,
                    last_error=text,
                    next_attempt_ns=retry_at_ns,
                )
                spool.journal.audit_in(
                    db,
                    "upload_failed",
                    path=row.path,
                    attempts=row.attempts + 1,
                    reason=text,
                    retry_at_ns=retry_at_ns,
                )

        await self._step(job, step)

    async def record_upload_rejected(self, job: UploadJob, reason: str) -> None:
        """State `rejected`, the reason (bounded) and "upload_rejected": one transaction."""

        def step(spool: Spool, row: SegmentRow) -> None:
            text = reason[:MAX_ERROR_TEXT]
            with spool.journal.transaction() as db:
                spool.journal.set_state(
                    db, row.id, "rejected", attempts=row.attempts + 1, last_error=text
                )
                spool.journal.audit_in(
                    db,
                    "upload_rejected",
                    path=row.path,
                    digest=row.digest,
                    url=row.upload_url,
                    reason=text,
                )
            log.error("%s: refused by the server (%s); kept on flash, not retried", row.path, text)

        await self._step(job, step)

    async def retry_rejected(self, path: str, **audit: Any) -> None:
        """An operator's retry (`bodycamctl upload retry PATH`): a rejected segment becomes
        sealed again, due now, with no upload URL (the server quarantined the old one), and
        "upload_retry_requested" (with who asked, `audit`) commits in the same transaction.
        Refused (code "not_rejected") for a path that names no rejected segment."""
        spool = self._require()

        def run() -> None:
            row = spool.journal.segment_by_path(path)
            if row is None or row.state != "rejected":
                state = "not in the journal" if row is None else f"{row.state}"
                raise Refused(
                    "not_rejected",
                    f"{path[:200]}: {state}; only a segment the server rejected can be retried "
                    "(see bodycamctl uploads)",
                )
            with spool.journal.transaction() as db:
                spool.journal.requeue(db, row.id)
                spool.journal.audit_in(
                    db,
                    "upload_retry_requested",
                    path=row.path,
                    digest=row.digest,
                    rejected_for=row.last_error,
                    **audit,
                )

        await asyncio.to_thread(run)

    async def confirm_and_delete(self, job: UploadJob, receipt: Receipt, wire: bytes) -> None:
        """See the module docstring: check, commit the receipt, unlink, commit "deleted"."""
        receipt_sha256 = hashlib.sha256(wire).hexdigest()

        def step(spool: Spool, row: SegmentRow) -> None:
            try:
                check_covers(receipt, digest=row.digest, size=row.size, device_id=self.device_id)
            except ReceiptInvalid as exc:
                spool.audit_quietly(
                    "receipt_refused",
                    path=row.path,
                    digest=row.digest,
                    receipt_sha256=receipt_sha256,
                    reason=str(exc),
                )
                log.error("%s: %s; the local copy is kept", row.path, exc)
                raise
            with spool.journal.transaction() as db:
                spool.journal.set_state(
                    db,
                    row.id,
                    "uploaded",
                    receipt=wire.decode(),
                    uploaded_ns=self._clock_ns(),
                )
                spool.journal.audit_in(
                    db,
                    "upload_receipt",
                    path=row.path,
                    digest=row.digest,
                    receipt_sha256=receipt_sha256,
                    verdict=receipt.verdict,
                    stored_at=receipt.stored_at,
                )
            self._crash_point("receipt_committed")
            spool.delete_local(row, receipt_sha256=receipt_sha256)

        await self._step(job, step)

    # -- helpers --------------------------------------------------------------------------------

    async def _step(self, job: UploadJob, action: Callable[[Spool, SegmentRow], Any]) -> UploadJob:
        spool = self._require()

        def run() -> UploadJob:
            row = spool.journal.segment(job.segment_id)
            if row is None or row.receipt is not None or row.state not in _PHASES:
                state = "gone" if row is None else row.state
                raise NotAwaitingUpload(
                    f"{job.path.name}: segment {job.segment_id} is {state}, not awaiting upload"
                )
            action(spool, row)
            after = spool.journal.segment(row.id)
            assert after is not None
            return self._job(spool, after)

        return await asyncio.to_thread(run)

    @staticmethod
    def _job(spool: Spool, row: SegmentRow) -> UploadJob:
        return UploadJob(
            segment_id=row.id,
            path=spool.layout.root / row.path,
            size=row.size,
            digest=row.digest,
            recording_id=row.recording_id,
            index=row.segment_index,
            torn=row.torn,
            phase=_LISTED.get(row.state, "sealed"),
            upload_url=row.upload_url,
            upload_offset=row.upload_offset,
            attempts=row.attempts,
            last_error=row.last_error,
        )
