"""The storage façade: the one object the rest of the daemon talks to about flash.

`Storage` owns the spool (segment files), the quota ledger and the journal (segment queue
and audit trail). The recorder, the capture component, the device, the control server and
the uploader receive this object (or a narrow Protocol of it: `RecordingStorage` here,
`UploadQueue` in uploads.py) and never see the journal or the spool. Every method that
touches flash or SQLite is a coroutine that does its blocking work in a worker thread; the
only synchronous reads (`figures`, `health`) do no I/O, so the device can compute its state
on the event loop.

The audit failure rule (docs/architecture.md says the same):

    An audit write that fails never costs footage and is never silent.
    1. A state change that must be audited (login, logout, stealth, anonymous-recording
       policy) writes its event first, with `audit_or_refuse`, and is applied only after
       the event is committed. If the journal cannot be written, the change is refused
       with `AuditRefused` (Refused code "storage") and nothing changes.
    2. Every other event (recording, segments, camera, dock, clock, thresholds, uploads) is
       written with `audit`, which never raises: the failure is logged, and the
       `journal_error` health flag is raised until a later journal write commits.
    Either way the health flag shows it.

Lifecycle: `StorageComponent` (component.py) builds a `Storage` at construction so it can be
wired into the other components, and `attach`es the opened spool at start; before that every
method raises StorageError("storage is not started") and the reads return None/empty.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..errors import AuditRefused, StorageError
from .queue import SpoolUploadQueue
from .spool import SegmentStart, Spool, SpoolSegment

log = logging.getLogger(__name__)
NOT_STARTED = "storage is not started"


@dataclass(frozen=True)
class Figures:
    """Storage as the status line shows it. `awaiting_upload` is SQLite's COUNT of sealed
    segments on flash without a receipt, taken after the last change (never kept by hand)."""

    used: int  # allocated bytes of footage on flash
    quota: int  # bytes footage may use
    free: int  # more footage that fits now (quota, filesystem and reserve considered)
    minutes_left: float  # of footage at `bitrate`
    low: bool
    full: bool
    awaiting_upload: int
    rejected_upload: int = 0  # refused by the ingest (422): on flash, not sent again
    bitrate: int = 0  # bits/s: measured from sealed footage, else the configured assumption
    bitrate_measured: bool = False


class RecordingStorage(Protocol):
    """What the recorder and capture component need of storage, and nothing more."""

    async def audit(self, kind: str, **fields: Any) -> None: ...

    async def check_start(self) -> None: ...

    async def open_segment(self, start: SegmentStart) -> SpoolSegment: ...

    async def has_room_for_segment(self, pending: int) -> bool: ...

    def observe_footage(self, size: int, seconds: float) -> None: ...


class Storage(SpoolUploadQueue):
    """See the module docstring: audit, recording, figures, and the upload queue. Built
    with `Storage(device_id, crash_point=None, clock_ns=time.time_ns)` (queue.py)."""

    _thresholds: tuple[bool, bool] | None = None  # (low, full) as last audited

    def attach(self, spool: Spool) -> None:
        """Start serving from an opened, reconciled spool (StorageComponent.start, tests)."""
        self._spool = spool

    @property
    def started(self) -> bool:
        return self._spool is not None

    @property
    def root(self) -> Path:
        """The state directory, which journal paths are relative to."""
        return self._require().layout.root

    # -- the audit failure rule ---------------------------------------------------------------

    async def audit(self, kind: str, **fields: Any) -> None:
        """Rule 2: record what happened; never raises (logged, `journal_error` flag)."""
        spool = self._spool
        if spool is None:
            log.error("could not audit %s %s: %s", kind, fields, NOT_STARTED)
            return
        await asyncio.to_thread(spool.audit_quietly, kind, **fields)

    async def audit_or_refuse(self, kind: str, **fields: Any) -> None:
        """Rule 1: the event of a change about to be applied; raises AuditRefused (code
        "storage") when it cannot be committed, and then the caller changes nothing."""
        try:
            await asyncio.to_thread(self._require().journal.audit, kind, **fields)
        except StorageError as exc:
            log.error("refused %s: its audit event cannot be written: %s", kind, exc)
            raise AuditRefused(
                f"{kind} refused: the audit trail cannot be written ({exc}); nothing changed"
            ) from exc

    # -- recording ------------------------------------------------------------------------------

    async def check_start(self) -> None:
        """QuotaExceeded unless `storage.min_free_minutes` of footage fit."""
        await asyncio.to_thread(self._require().ledger.check_start)

    async def open_segment(self, start: SegmentStart) -> SpoolSegment:
        """A new segment in spool/ (QuotaExceeded when flash cannot take one). The returned
        segment's write/checkpoint/seal block: call them from a worker thread."""
        return await asyncio.to_thread(self._require().open_segment, start)

    async def has_room_for_segment(self, pending: int) -> bool:
        """Whether another segment fits after the current one is sealed with `pending`
        more plaintext bytes (bytes_to_seal, evidence/writer.py)."""
        return await asyncio.to_thread(self._require().has_room_for_segment, pending)

    def observe_footage(self, size: int, seconds: float) -> None:
        """A segment sealed with `size` bytes of `seconds` of footage (no I/O): minutes left
        follow the measured bitrate from now on (control's status labels which it is)."""
        if self._spool is not None:
            self._spool.ledger.observe_footage(size, seconds)

    # -- figures and health -------------------------------------------------------------------

    def figures(self) -> Figures | None:
        """No I/O: the ledger is live, the COUNT ran when the queue last changed."""
        spool = self._spool
        if spool is None:
            return None
        space = spool.ledger.figures()
        return Figures(
            used=space.used,
            quota=space.limit,
            free=space.available,
            minutes_left=space.minutes_left,
            low=space.low,
            full=space.full,
            awaiting_upload=spool.journal.queue_counts.segments,
            rejected_upload=spool.journal.queue_counts.rejected,
            bitrate=spool.ledger.bitrate,
            bitrate_measured=spool.ledger.bitrate_measured,
        )

    def health(self) -> frozenset[str]:
        """storage_low, storage_full, journal_error, upload_rejected: the flags storage
        owns (the last while any segment the ingest refused is kept on flash)."""
        spool = self._spool
        if spool is None:
            return frozenset()
        space = spool.ledger.figures()
        flags = {"storage_low"} if space.low else set()
        if space.full:
            flags.add("storage_full")
        if spool.journal.write_failed:
            flags.add("journal_error")
        if spool.journal.queue_counts.rejected:
            flags.add("upload_rejected")
        return frozenset(flags)

    async def refresh_space(self, ballast: int = 0) -> None:
        """Re-read free space (statvfs, in a worker thread), put back a released ballast of
        `ballast` bytes once there is room for it, and audit a change of storage_low /
        storage_full: space freed behind our back clears storage_full without a restart.
        The storage component's timer calls this while the daemon runs."""
        spool = self._spool
        if spool is None:
            return
        await asyncio.to_thread(spool.ledger.refresh)
        if ballast and not spool.ledger.figures().full:
            await asyncio.to_thread(spool.ensure_ballast, ballast)
            await asyncio.to_thread(spool.ledger.refresh)
        await self.check_thresholds()

    async def check_thresholds(self) -> None:
        """Audit each change of storage_low / storage_full. Asking costs no I/O, so the
        device's once-a-second tick calls it on the loop; only a change is written."""
        spool = self._spool
        if spool is None:
            return
        space = spool.ledger.figures()
        if (space.low, space.full) == self._thresholds:
            return
        self._thresholds = (space.low, space.full)
        if space.full or space.low:
            log.warning(
                "storage %s: %.0f min of footage left",
                "full" if space.full else "low",
                space.minutes_left,
            )
        await self.audit(
            "storage_thresholds",
            low=space.low,
            full=space.full,
            minutes_left=round(space.minutes_left, 1),
        )

    def status(self) -> str:
        figures = self.figures()
        if figures is None:
            return "storage: not started"
        flags = " [FULL]" if figures.full else " [LOW]" if figures.low else ""
        if "journal_error" in self.health():
            flags += " [JOURNAL ERROR]"
        return (
            f"storage: {figures.used / 2**20:.0f} of {figures.quota / 2**20:.0f} MiB used, "
            f"{figures.minutes_left:.0f} min left, {figures.awaiting_upload} segment(s) "
            f"awaiting upload{flags}"
        )

    async def close(self) -> None:
        """Audit the stop and close the journal; the façade is unusable afterwards."""
        spool, self._spool = self._spool, None
        if spool is not None:
            await asyncio.to_thread(spool.audit_quietly, "daemon_stop")
            await asyncio.to_thread(spool.journal.close)
