"""Sealing a segment left torn by a power cut, on the device, without its data key.

The data key died with the process, so the device cannot check or extend the payload. What it
can do is keep exactly the prefix its own signed checkpoints vouch for: truncate there, append
a footer flagged *torn* (signed, so the back end knows the device did this), fsync, rename to
`.seg` and fsync the directory. Every step is idempotent, so a power cut during recovery is
repaired by running recovery again:

- truncated but no footer yet: the next scan finds the same checkpoint at the end and appends;
- footer written but not renamed: the next scan sees a sealed file and only renames it.

A segment is sealed torn for one of two causes, and the footer says which: a power cut (or
the daemon's death), or a failed open. The second is known only from the journal (the
storage layer audits `segment_open_failed` when it cannot open a segment), so the caller
passes the segments whose open failed; an empty segment among them gets the open-failed
flag and the chain reads "ended early", not "interrupted (power loss)".
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519

from ..clock import boot_id
from ..errors import SegmentAbandoned
from ..fsutil import fsync_directory, write_all
from . import format as fmt
from .keys import EvidencePublicKey
from .reader import Verdict, scan_segment
from .writer import PART_SUFFIX, SEALED_SUFFIX, SegmentInfo, SegmentWriter


def torn_footer(scan: Verdict, *, now_ns: int, flags: int = fmt.FLAG_TORN) -> fmt.Footer:
    """The footer recovery appends: counts of the last checkpoint, and as the segment's end
    the last time the device vouched for (that checkpoint's, or the header's start), never
    the recovery's own clock, which may belong to the next boot; that is stated apart."""
    return fmt.Footer(
        records=scan.vouched_records,
        plaintext=scan.vouched_plaintext,
        offset=scan.vouched_offset,
        file_sha256=scan.vouched_sha256,
        checkpoints=scan.checkpoints,
        flags=flags,
        wall_end_ns=scan.vouched_wall_ns,
        mono_end_ns=scan.vouched_mono_ns,
        recovered_wall_ns=now_ns,
        recovery_boot_id=boot_id(),
    )


@dataclass(frozen=True)
class OpenFailure:
    """A segment the journal says could not be opened (`segment_open_failed`)."""

    recording: uuid.UUID
    index: int
    boot: bytes  # the boot that tried: a power cut never leaves this record


def open_failure(header: fmt.Header) -> OpenFailure:
    return OpenFailure(header.recording_id, header.segment_index, header.boot_id)


@dataclass(frozen=True)
class Recovered:
    path: Path
    verdict: Verdict  # the verdict of the file as recovered (sealed, torn unless it was whole)
    bytes_dropped: int  # unvouched tail that was cut off
    plaintext_kept: int
    tail: str  # what the `.part` ended with, in words (the scan before recovery)


def seal_torn(
    part_path: Path,
    device_key: ed25519.Ed25519PrivateKey,
    *,
    fsync: Callable[[int], None] = os.fsync,
    flags: int = fmt.FLAG_TORN,
    failed_opens: Collection[OpenFailure] = (),
) -> Recovered:
    """Recover `part_path` (a `.part` file) into a sealed `.seg`; returns what was kept.
    If the journal recorded that opening this segment failed (`failed_opens`, matched by
    recording, index and boot) and it holds no footage, it is flagged open-failed.

    Raises EvidenceError when the file has no valid signed header (nothing to vouch for):
    such a file is the storage layer's to quarantine and report, never to delete silently.
    """
    if part_path.suffix != PART_SUFFIX:
        raise ValueError(f"{part_path}: expected a {PART_SUFFIX} file")
    before = scan_segment(part_path, device_key.public_key(), recovering=True)
    size = part_path.stat().st_size
    try:
        if before.tail.startswith("sealed"):  # complete already; crash hit before the rename
            dropped = 0
        else:
            dropped = size - before.vouched_offset
            if before.vouched_records == 0 and open_failure(before.header) in failed_opens:
                flags |= fmt.FLAG_OPEN_FAILED
            footer = torn_footer(before, now_ns=time.time_ns(), flags=flags)
            body = footer.body(before.header, device_key)
            fd = os.open(part_path, os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.ftruncate(fd, before.vouched_offset)
                write_all(
                    fd,
                    fmt.FRAME.pack(len(body), fmt.RecordType.FOOTER) + body,
                    before.vouched_offset,
                )
                fsync(fd)
            finally:
                os.close(fd)
        sealed = part_path.with_suffix(SEALED_SUFFIX)
        part_path.rename(sealed)
        fsync_directory(sealed.parent)
    except OSError as exc:
        raise SegmentAbandoned(
            f"{part_path}: recovery failed ({exc.strerror or exc}); left for the next start"
        ) from exc
    after = scan_segment(sealed, device_key.public_key())
    return Recovered(sealed, after, dropped, after.vouched_plaintext, before.tail)


def interrupted_roll(verdicts: Iterable[Verdict], *, open_failed: bool = False) -> Verdict | None:
    """Of the segments of one recording found after recovery, the one whose roll a power cut
    interrupted: the last by index, when it is complete but not end of recording. With
    `open_failed` (the journal recorded that its successor could not be opened) also one
    sealed torn that is not itself a placeholder or an empty open-failed segment: a write
    failed, the recording went on, and then the next open failed."""
    last = max(verdicts, key=lambda verdict: verdict.header.segment_index, default=None)
    if last is None or last.end_of_recording:
        return None
    footage_torn = last.sealed_torn and not last.placeholder and not last.open_failed
    if last.status != "complete" and not (open_failed and footage_torn):
        return None
    return last


def seal_interrupted_roll(
    previous: Verdict,
    part: Path,
    device_key: ed25519.Ed25519PrivateKey,
    evidence_key: EvidencePublicKey,
    *,
    fsync: Callable[[int], None] = os.fsync,
    open_failed: bool = False,
) -> Recovered:
    """The power went at a segment roll (or, with `open_failed`, the journal recorded that
    segment n+1 could not be opened: an I/O error or no room, not a power cut): segment n is
    sealed complete but not end of recording, and segment n+1 never got a file. Leave the
    device's signed word for it: an empty segment n+1, linked to n, sealed torn with the
    placeholder flag (and the open-failed flag if so), whose times are n's end (when the
    power went, in n's boot). Without it the chain would read exactly like
    a deleted last segment.

    With `open_failed`, n may also be sealed torn (a write failed, the recording went on in
    n+1, whose open then failed); the placeholder follows it the same way, from its torn
    footer's end times.

    The caller checks that n has no successor anywhere (on flash, in the journal, uploaded)
    and that nothing is recording; `part` is where segment n+1 would have been written. A
    crash in here is repaired by the next start: a `.part` with a whole header is sealed torn
    by `seal_torn` (still "interrupted"); a shorter one is not a segment and is quarantined,
    after which this runs again.
    """
    header = previous.header
    if interrupted_roll([previous], open_failed=open_failed) is None:
        raise ValueError(
            "only a complete segment that is not end of recording (or, when the next one "
            "could not be opened, one sealed torn after a failed write) has a placeholder"
        )
    info = SegmentInfo(
        header.recording_id,
        header.segment_index + 1,
        previous.digest,
        header.device_name,
        wall_start_ns=previous.end_wall_ns,
        mono_start_ns=previous.end_mono_ns,
        clock_synced=header.clock_synced,
        boot_id=header.boot_id,
    )
    try:
        SegmentWriter(part, info, evidence_key, device_key, fsync=fsync).abandon()
    except FileExistsError as exc:
        raise SegmentAbandoned(f"{part}: already exists; recover it instead") from exc
    flags = fmt.FLAG_TORN | fmt.FLAG_PLACEHOLDER | (fmt.FLAG_OPEN_FAILED if open_failed else 0)
    return seal_torn(part, device_key, fsync=fsync, flags=flags)
