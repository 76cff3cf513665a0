"""One dock's worth of uploading: segments out, receipts in, deletion only against a receipt.

`UploadWorker.run` is started when the camera is docked and not recording, and cancelled
the moment either changes (UploadComponent); everything it knows survives that, because
it is in the journal (`UploadQueue`) or on the server (HEAD). The order of things is
docs/upload.md §4:

1. ask for a receipt by digest before creating or resuming any upload;
2. create the upload and journal its URL before the first PATCH;
3. resume from the server's HEAD offset, never from memory;
4. journal the offset after every acknowledged chunk;
5. after the last byte journal "uploaded", ask for the receipt, verify it, and only then
   let storage delete the file (`confirm_and_delete`).

A segment the server verified and refused (422 on the last PATCH, `SegmentRefused`) is
journalled `rejected` and never sent again by the uploader: the same bytes would get the
same answer and leave one more quarantined copy on the server every time. It stays on
flash until an operator retries it (docs/upload.md §5).

What survives a power cut at any instant: at worst an orphan upload on the server (POST
answered, URL not yet journalled) or a chunk the server holds beyond the journalled offset;
both are harmless, because HEAD decides where to resume and the receipt check comes first.
"""

from __future__ import annotations

import dataclasses
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric import ed25519

from ..errors import (
    NotAwaitingUpload,
    SegmentRefused,
    TransientUploadError,
    UploadError,
    UploadGone,
    UploadRejected,
)
from ..receipt import ReceiptInvalid, check_covers, parse_receipt
from ..storage.uploads import UploadJob, UploadQueue
from .pacing import Backoff, Clock, Sleep, retry_delay
from .progress import ProgressTracker

if TYPE_CHECKING:
    from .tus import TusClient

log = logging.getLogger(__name__)
NS = 1_000_000_000
SEGMENT_MEDIA_TYPE = "application/vnd.bodycamd.segment"
MAX_RESTARTS = 2  # new uploads per segment and attempt after the server dropped one


@dataclass(frozen=True)
class WorkerTiming:
    retry_min: float = 1.0
    retry_max: float = 300.0
    idle_poll: float = 5.0  # an empty queue is looked at again this often while docked


def segment_label(job: UploadJob) -> str:
    return f"{job.recording_id}/{job.index:06d}"


def upload_metadata(job: UploadJob, device_id: str) -> dict[str, str]:
    """docs/upload.md §2: no personal data, only what names the bytes."""
    return {
        "device": device_id,
        "recording": job.recording_id,
        "index": str(job.index),
        "digest": job.digest,
        "torn": "1" if job.torn else "0",
        # the conventional keys of tus clients; some servers (tuspyserver) refuse HEAD
        # on an upload without them
        "filename": f"{job.recording_id}-{job.index:06d}.seg",
        "filetype": SEGMENT_MEDIA_TYPE,
    }


class UploadWorker:
    def __init__(
        self,
        queue: UploadQueue,
        tus: TusClient,
        trusted: Mapping[str, ed25519.Ed25519PublicKey],
        progress: ProgressTracker,
        *,
        timing: WorkerTiming,
        clock: Clock,
        now_ns: Callable[[], int],
        wall: Clock,
        sleep: Sleep,
        on_clock_offset: Callable[[float], None] | None = None,
        rng: random.Random | None = None,
        client_cert: bool = True,
    ) -> None:
        self._queue = queue
        self._tus = tus
        self._trusted = trusted
        self.progress = progress
        self._timing = timing
        self._clock = clock
        self._now_ns = now_ns
        self._wall = wall
        self._sleep = sleep
        self._on_clock_offset = on_clock_offset
        self._backoff = Backoff(timing.retry_min, timing.retry_max, rng)
        self._sha256 = False
        self._client_cert = client_cert
        self._no_receipt_reason = "the server has no receipt for it"

    async def run(self) -> None:
        """Upload until cancelled (undock, recording, shutdown)."""
        await self._refresh_figures()
        self.progress.new_dock(self.progress.value.bytes_left)
        await self._connect()
        while True:
            job = await self._queue.next_for_upload(self._now_ns())
            if job is None:
                await self._idle()
                continue
            await self._attempt(job)

    # -- the dock's first request: capabilities and the server's clock ----------------------

    async def _connect(self) -> None:
        while True:
            try:
                info = await self._tus.options()
            except UploadError as exc:  # transport, 5xx, TLS refused or untrusted
                await self._fail_session(self._explain(exc))
                continue
            break
        self._backoff.reset()
        self.progress.update(failing=False)
        self._sha256 = info.sha256
        if info.date is not None:
            await self._check_clock(info.date)

    def _explain(self, exc: UploadError) -> UploadError:
        """A server that requires a client certificate it does not get (or does not accept)
        often just resets the connection after the TLS 1.3 handshake, so the alert never
        arrives: say what that usually means."""
        if not isinstance(exc, TransientUploadError) or self._tus.endpoint.scheme != "https":
            return exc
        if not self._client_cert:
            hint = "no client certificate is configured (upload.client_cert); the ingest needs one"
        else:
            hint = "if this persists, is this device's client certificate enrolled at the ingest?"
        return TransientUploadError(f"{exc.reason}; {hint}", exc.retry_after)

    async def _check_clock(self, server: datetime) -> None:
        device = datetime.fromtimestamp(self._wall(), UTC)
        offset = round((server - device).total_seconds(), 3)
        await self._queue.audit(
            "clock_offset",
            offset_seconds=offset,
            server_date=server.isoformat(),
            device_time=device.isoformat(timespec="milliseconds"),
        )
        self.progress.update(clock_offset=offset)
        if self._on_clock_offset is not None:
            self._on_clock_offset(offset)

    async def _fail_session(self, exc: UploadError) -> None:
        delay = self._backoff.next_delay(getattr(exc, "retry_after", None))
        log.warning("upload: %s; next try in %.0f s", exc.reason, delay)
        self.progress.update(
            state="backoff", reason=exc.reason, last_error=exc.reason, failing=True
        )
        await self._sleep(delay)

    # -- one segment ------------------------------------------------------------------------

    async def _attempt(self, job: UploadJob) -> None:
        self.progress.update(state="uploading", reason="docked", current=segment_label(job))
        try:
            await self._upload(job)
        except NotAwaitingUpload as exc:  # deleted or settled meanwhile: nothing left to do
            log.info("upload of %s: %s", segment_label(job), exc)
        except TransientUploadError as exc:
            delay = self._backoff.next_delay(exc.retry_after)
            await self._failed(job, exc.reason, delay)
            self.progress.update(state="backoff")
            await self._sleep(delay)
        except SegmentRefused as exc:  # terminal for this segment; the next one goes on
            log.error("upload of %s: %s; kept on flash, not sent again", segment_label(job), exc)
            await self._queue.record_upload_rejected(job, exc.reason)
            self.progress.update(last_error=f"{segment_label(job)} rejected: {exc.reason}")
        except UploadRejected as exc:
            await self._failed(job, exc.reason, self._timing.retry_max)
        except UploadGone as exc:  # dropped again right after we made it anew
            await self._failed(job, exc.reason, self._backoff.next_delay())
        await self._refresh_figures()

    async def _upload(self, job: UploadJob) -> None:
        for _ in range(MAX_RESTARTS + 1):
            if await self._settle_by_receipt(job):
                return
            if job.phase == "uploaded":  # every byte went earlier; still no receipt
                await self._no_receipt(job)
                return
            try:
                job = await self._send(job)
            except UploadGone as exc:
                log.info("upload of %s: %s; asking for a receipt first", segment_label(job), exc)
                job = dataclasses.replace(job, upload_url=None, upload_offset=0)
                continue
            if not await self._settle_by_receipt(job):
                await self._no_receipt(job)
            return
        raise UploadGone(f"{segment_label(job)}: the server keeps dropping the upload")

    async def _send(self, job: UploadJob) -> UploadJob:
        """Create or resume the upload, then PATCH chunk after chunk to the end."""
        offset = 0
        if job.upload_url is not None:
            offset, length = await self._tus.offset(job.upload_url)
            if (length is not None and length != job.size) or offset > job.size:
                log.warning(
                    "upload of %s: server holds %s of %s bytes for %d; starting anew",
                    segment_label(job), offset, length, job.size,
                )  # fmt: skip
                await self._tus.delete(job.upload_url)
                job = dataclasses.replace(job, upload_url=None)
        if job.upload_url is None:
            url = await self._tus.create(job.size, upload_metadata(job, self._queue.device_id))
            job = await self._queue.record_upload_started(job, url)  # before the first PATCH
            offset = 0
        assert job.upload_url is not None
        while offset < job.size:
            new = await self._tus.patch(
                job.upload_url, job.path, offset, job.size, sha256=self._sha256
            )
            job = await self._queue.record_upload_progress(job, new)
            self.progress.sent(new - offset)
            self._backoff.reset()
            self.progress.update(failing=False)
            offset = new
        return await self._queue.record_uploaded(job)

    # -- receipts ---------------------------------------------------------------------------

    async def _settle_by_receipt(self, job: UploadJob) -> bool:
        """Ask for the receipt; verified → confirm and delete (True). No receipt → False.
        A receipt that fails verification deletes nothing: audited, then UploadRejected."""
        try:
            wire = await self._tus.receipt(job.digest)
        except UploadRejected as exc:  # a generic tus server may refuse the path outright
            self._no_receipt_reason = exc.reason
            return False
        if wire is None:
            self._no_receipt_reason = "the server has no receipt for it"
            return False
        try:
            receipt = parse_receipt(wire, self._trusted)
            check_covers(receipt, digest=job.digest, size=job.size, device_id=self._queue.device_id)
        except ReceiptInvalid as exc:
            await self._queue.audit(
                "receipt_rejected", segment=segment_label(job), digest=job.digest, reason=str(exc)
            )
            raise UploadRejected(f"{segment_label(job)}: receipt rejected: {exc}") from exc
        try:
            await self._queue.confirm_and_delete(job, receipt, wire)
        except ReceiptInvalid as exc:  # storage's own check against the journal (audited)
            raise UploadRejected(f"{segment_label(job)}: receipt refused: {exc}") from exc
        log.info("upload: %s confirmed by receipt, deleted from flash", segment_label(job))
        self.progress.update(receipts=self.progress.value.receipts + 1, failing=False)
        return True

    async def _no_receipt(self, job: UploadJob) -> None:
        """Uploaded, no receipt (yet): stays on flash; asked again later, doubling."""
        reason = f"{segment_label(job)} uploaded, no receipt: {self._no_receipt_reason}"
        delay = retry_delay(job.attempts, self._timing.retry_min, self._timing.retry_max)
        await self._queue.record_upload_failure(job, reason, self._now_ns() + int(delay * NS))
        self.progress.update(reason=reason)

    async def _failed(self, job: UploadJob, reason: str, delay: float) -> None:
        log.warning("upload of %s: %s; next try in %.0f s", segment_label(job), reason, delay)
        await self._queue.record_upload_failure(job, reason, self._now_ns() + int(delay * NS))
        self.progress.update(last_error=reason, failing=True)

    # -- waiting ----------------------------------------------------------------------------

    async def _idle(self) -> None:
        due = await self._queue.next_attempt_ns()
        wait = self._timing.idle_poll
        if due is not None:
            wait = min(wait, max(0.0, (due - self._now_ns()) / NS))
        self.progress.update(state="idle", current=None, reason=self._idle_reason())
        await self._sleep(max(wait, 0.05))

    def _idle_reason(self) -> str:
        value = self.progress.value
        if value.segments_left == 0 and value.rejected:
            return (
                f"everything else uploaded; {value.rejected} segment(s) rejected by the server "
                "stay on flash (bodycamctl uploads)"
            )
        if value.segments_left == 0:
            return "everything uploaded"
        if value.no_receipt:
            return f"{value.no_receipt} segment(s) uploaded without receipt stay on flash"
        return f"{value.segments_left} segment(s) waiting for their next try"

    async def _refresh_figures(self) -> None:
        figures = await self._queue.queue_figures()
        self.progress.update(
            segments_left=figures.segments,
            bytes_left=figures.bytes,
            no_receipt=figures.no_receipt,
            rejected=figures.rejected,
        )
