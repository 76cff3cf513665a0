"""Segments from first byte to deletion: open in spool/, seal into ready/ with a journal row,
delete only after the upload receipt matches.

What survives a power cut, step by step:
- while writing: the header and everything up to the last checkpoint (the writer's promise);
  the `.part` is recovered at the next start.
- seal: footer, fsync, rename `.part` → `.seg` in spool/ (writer); then ONE journal
  transaction inserts the segment row and its "segment_sealed" audit event; then the file is
  renamed into ready/ and both directories are fsynced. A crash before the commit leaves a
  `.seg` in spool/ without a row; a crash after it leaves a row pointing into ready/ with the
  file still in spool/. Start-up reconciliation repairs both (see reconcile.py).
- deletion (facade.py, `confirm_and_delete`): the receipt is committed before the unlink,
  and "deleted" after it, so a crash in between is finished at the next start, never
  repeated or lost.

Only the storage façade (facade.py) and reconciliation use a Spool; it is not handed out.
"""

from __future__ import annotations

import errno
import logging
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from cryptography.hazmat.primitives.asymmetric import ed25519

from ..errors import QuotaExceeded, SegmentAbandoned, StorageError
from ..evidence import format as fmt
from ..evidence.keys import EvidencePublicKey
from ..evidence.reader import scan_segment
from ..evidence.recovery import seal_torn
from ..evidence.writer import (
    SEALED_SUFFIX,
    SealedSegment,
    SegmentInfo,
    SegmentWriter,
    bytes_to_seal,
    record_bytes,
)
from ..fsutil import fsync_directory
from ..journal import Journal, SegmentRow
from .layout import StateLayout
from .quota import QuotaLedger

log = logging.getLogger(__name__)
_T = TypeVar("_T")
_FULL = (errno.ENOSPC, errno.EDQUOT)
NEW_SEGMENT_BYTES = fmt.HEADER_SIZE + fmt.ALIGN  # header, metadata, first checkpoint


@dataclass(frozen=True)
class SegmentStart:
    recording_id: uuid.UUID
    segment_index: int
    prev_digest: bytes
    clock_synced: bool
    metadata: bytes = b""


class Spool:
    def __init__(
        self,
        layout: StateLayout,
        journal: Journal,
        ledger: QuotaLedger,
        device_key: ed25519.Ed25519PrivateKey,
        evidence_key: EvidencePublicKey,
        device_name: str,
        *,
        fsync: Callable[[int], None] = os.fsync,
    ) -> None:
        self.layout = layout
        self.journal = journal
        self.ledger = ledger
        self._device_key = device_key
        self._evidence_key = evidence_key
        self.evidence_key = evidence_key  # public: recovery seals placeholders with it
        self._device_name = device_name
        self._fsync = fsync

    def has_room_for_segment(self, pending: int = 0) -> bool:
        """Whether a new segment could still be opened after the current one is sealed with
        `pending` more plaintext bytes (the check open_segment makes, plus the seal), by free
        space read now."""
        self.ledger.refresh()
        needed = NEW_SEGMENT_BYTES + bytes_to_seal(pending)
        try:
            self.ledger.check(self.layout.spool / "next.part", needed)
        except QuotaExceeded:
            return False
        return True

    def open_segment(self, start: SegmentStart) -> SpoolSegment:
        """Open segment `start.segment_index` in spool/. A failure (no room, or an I/O
        error) is audited as `segment_open_failed` before it is raised: that record is how
        the next start tells this from a power cut (reconcile.py), so the chain says the
        recording ended early rather than that the power went."""
        try:
            return self._open_segment(start)
        except OSError as exc:  # StorageError (QuotaExceeded, SegmentAbandoned) included
            self.audit_quietly(
                "segment_open_failed",
                recording=start.recording_id.hex,
                index=start.segment_index,
                error=str(exc),
            )
            raise

    def _open_segment(self, start: SegmentStart) -> SpoolSegment:
        part = self.layout.part_path(start.recording_id, start.segment_index)
        self.ledger.check(part, NEW_SEGMENT_BYTES)
        if not part.parent.exists():
            part.parent.mkdir(mode=0o700)
            fsync_directory(part.parent.parent)
        info = SegmentInfo(
            start.recording_id,
            start.segment_index,
            start.prev_digest,
            self._device_name,
            clock_synced=start.clock_synced,
            metadata=start.metadata,
        )
        writer = SegmentWriter(part, info, self._evidence_key, self._device_key, fsync=self._fsync)
        self.ledger.grow(part, writer.file_size)
        return SpoolSegment(self, writer)

    def commit(self, sealed: SealedSegment, *, torn: bool, recovered: bool = False) -> Path:
        """Journal a segment sealed in spool/ and move it into ready/ (see module doc)."""
        recording_id, index = sealed.recording_id, sealed.segment_index
        target = self.layout.ready_path(recording_id, index)
        relative = self.layout.relative(target)
        with self.journal.transaction() as db:
            self.journal.insert_segment(
                db,
                recording_id=recording_id.hex,
                segment_index=index,
                path=relative,
                torn=torn,
                end_of_recording=sealed.end_of_recording,
                digest=sealed.digest.hex(),
                size=sealed.size,
            )
            self.journal.audit_in(
                db,
                "segment_sealed",
                recording=recording_id.hex,
                index=index,
                digest=sealed.digest.hex(),
                size=sealed.size,
                torn=torn,
                end_of_recording=sealed.end_of_recording,
                recovered=recovered,
            )
        self.move_to_ready(sealed.path, target)
        return target

    def move_to_ready(self, source: Path, target: Path) -> None:
        if not target.parent.exists():
            target.parent.mkdir(mode=0o700)
            fsync_directory(target.parent.parent)
        source.rename(target)
        fsync_directory(target.parent)
        fsync_directory(source.parent)
        try:
            source.parent.rmdir()  # the recording's spool directory, once empty
            fsync_directory(source.parent.parent)
        except OSError:
            pass

    def ensure_ballast(self, size: int) -> None:
        """Hold `size` bytes in a file so that when the filesystem fills up anyway (something
        else wrote to it), releasing them lets us seal the segment and commit the journal."""
        path = self.layout.ballast
        if size <= 0 or (path.exists() and path.stat().st_size >= size):
            return
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                os.posix_fallocate(fd, 0, size)
                os.fsync(fd)
            finally:
                os.close(fd)
            fsync_directory(path.parent)
        except OSError as exc:
            log.warning("cannot hold %d bytes of ballast in %s: %s", size, path, exc)

    def release_ballast(self) -> bool:
        try:
            self.layout.ballast.unlink()
        except FileNotFoundError:
            return False
        return True

    def salvage(self, part: Path, cause: BaseException, durable: int) -> SealedSegment | None:
        """A write or fsync failed: keep what the last successful fsync made durable
        (`durable`, the writer's), sealed as torn. Everything after it is cut first, even a
        footer that reads back whole: its fsync may be the one that failed, and Linux may
        have dropped the pages it did not write, so the page cache is no witness of flash.
        On a full filesystem the ballast is released first, so the footer and the journal
        rows have somewhere to go."""
        self.ledger.settle(part, None)
        full = isinstance(cause.__cause__, OSError) and cause.__cause__.errno in _FULL
        if full and self.release_ballast():
            log.warning("filesystem full: released the ballast to seal %s", part.name)
        sealed_path = part.with_suffix(SEALED_SUFFIX)
        try:
            if not part.exists() and sealed_path.exists():
                # the seal renamed it and then its directory fsync failed: the file, footer
                # fsynced, is whole; committing it makes the rename durable as well
                verdict, dropped = scan_segment(sealed_path, self._device_key.public_key()), 0
            else:
                cut = max(0, part.stat().st_size - durable)
                if cut:
                    os.truncate(part, durable)
                recovered = seal_torn(part, self._device_key, fsync=self._fsync)
                verdict, dropped = recovered.verdict, cut + recovered.bytes_dropped
            sealed = SealedSegment.from_verdict(sealed_path, verdict)
        except (OSError, ValueError) as exc:
            log.error("%s: could not seal after failure (%s); left for the next start", part, exc)
            self.audit_quietly(
                "segment_abandoned",
                path=self.layout.relative(part),
                reason=str(cause),
                salvaged=False,
            )
            return None
        self.audit_quietly(
            "segment_abandoned",
            path=self.layout.relative(part),
            reason=str(cause),
            salvaged=True,
            bytes_dropped=dropped,
        )
        try:
            target = self.commit(sealed, torn=verdict.status != "complete", recovered=True)
        except (StorageError, OSError) as exc:  # sealed, durable in spool/: adopted at start
            log.error("%s salvaged but not journalled (%s)", sealed.path, exc)
            self.ledger.add(sealed.path)
            return sealed
        self.ledger.add(target)
        return replace(sealed, path=target)

    def audit_quietly(self, kind: str, **fields: Any) -> None:
        """The recording path's audit rule (blocking form, for worker threads): a failed
        write is logged and shows as the journal_error health flag; it never raises into
        the footage."""
        try:
            self.journal.audit(kind, **fields)
        except StorageError as exc:
            log.error("could not audit %s %s: %s", kind, fields, exc)

    def delete_local(self, row: SegmentRow, **audit: Any) -> None:
        """Unlink a segment whose receipt is committed, fsync its directory, then commit
        "deleted" with its audit event (`audit` adds fields to it). Only called for a row
        with a receipt in the journal (facade.py, reconcile.py)."""
        path = self.layout.root / row.path
        size = 0
        if path.exists():
            size = path.stat().st_blocks * 512
            path.unlink()
            fsync_directory(path.parent)
        with self.journal.transaction() as db:
            self.journal.set_state(db, row.id, "deleted", deleted_ns=_now())
            self.journal.audit_in(db, "segment_deleted", path=row.path, digest=row.digest, **audit)
        self.ledger.release(size)


class SpoolSegment:
    """One segment being written, with quota accounting on every write."""

    def __init__(self, spool: Spool, writer: SegmentWriter) -> None:
        self._spool = spool
        self._writer = writer
        self.path = writer.path
        self.header = writer.header
        self.closed = False  # sealed, or salvaged after a failure
        self.salvaged: SealedSegment | None = None  # what a failure left, sealed as torn

    @property
    def plaintext_bytes(self) -> int:
        return self._writer.plaintext_bytes

    def write(self, data: bytes | bytearray | memoryview, *, final: bool = False) -> None:
        """Raises QuotaExceeded *before* writing when the data would not leave room to seal:
        the caller then seals, which always fits. `final` skips the check for the few bytes
        that close a segment (they come out of the seal margin)."""
        if not final:
            pending = self._writer.buffered_bytes + len(data)
            self._spool.ledger.check(self.path, self._writer.file_size + record_bytes(pending))
        self._guard(lambda: self._writer.write(data))

    def checkpoint(self) -> None:
        self._guard(self._writer.checkpoint)
        self._spool.ledger.refresh()

    def seal(self, *, end_of_recording: bool) -> SealedSegment:
        """Seal; then journal it and move it into ready/. If the journal cannot be written,
        the sealed file stays in spool/ (complete, durable) for the next start to adopt,
        and the digest is still returned so the recording's chain carries on."""
        sealed = self._guard(lambda: self._writer.seal(end_of_recording=end_of_recording))
        self.closed = True
        self._spool.ledger.settle(self.path, sealed.path)
        try:
            target = self._spool.commit(sealed, torn=False)
        except StorageError as exc:
            log.error(
                "%s sealed but not journalled (%s); adopted at the next start", sealed.path, exc
            )
            return sealed
        return replace(sealed, path=target)

    def _guard(self, action: Callable[[], _T]) -> _T:
        try:
            result = action()
        except SegmentAbandoned as exc:
            self.closed = True
            self.salvaged = self._spool.salvage(self.path, exc, self._writer.durable_offset)
            cause = exc.__cause__
            if isinstance(cause, OSError) and cause.errno in _FULL:
                raise QuotaExceeded(
                    f"{self.path.name}: the filesystem is full ({cause.strerror}); the segment "
                    "was sealed up to its last checkpoint"
                ) from exc
            raise
        self._spool.ledger.grow(self.path, self._writer.file_size)
        return result


def _now() -> int:
    return time.time_ns()
