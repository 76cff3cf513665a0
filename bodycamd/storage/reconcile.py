"""Start-up reconciliation: make flash and the journal agree, and account for every file.

Run before anything records. Each repair is audited; nothing is deleted that has not been
uploaded with a matching receipt, and files that hold nothing readable are moved to
quarantine/ (and reported), never removed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from cryptography.hazmat.primitives.asymmetric import ed25519

from ..errors import EvidenceError, StorageError
from ..evidence.reader import scan_segment
from ..evidence.recovery import (
    OpenFailure,
    interrupted_roll,
    seal_interrupted_roll,
    seal_torn,
)
from ..evidence.writer import SealedSegment
from ..fsutil import fsync_directory
from ..journal import SegmentRow
from ..receipt import ReceiptInvalid, check_covers, parse_receipt
from .spool import Spool

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class ReconcileReport:
    torn_recovered: list[str] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)  # sealed files that had no journal row
    moved: list[str] = field(default_factory=list)  # rows whose file was still in spool/
    quarantined: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # rows whose file is gone
    deletions_finished: list[str] = field(default_factory=list)
    rolls_interrupted: list[str] = field(default_factory=list)  # placeholders written
    receipts_unconfirmed: list[str] = field(default_factory=list)  # rows put back for upload
    receipts_unverifiable: list[str] = field(default_factory=list)  # left: no trusted key

    def summary(self) -> str:
        parts = [f"{len(v)} {k.replace('_', ' ')}" for k, v in self.__dict__.items() if v]
        return ", ".join(parts) or "nothing to repair"


@dataclass(frozen=True)
class TrustedReceipts:
    """What start-up needs to trust a receipt the journal holds, as the uploader did: the
    receipt keys of `[upload] receipt_keys` and this device's id. None given (no valid
    `[upload]`): no receipt is trusted, and every file with one is kept and sent again."""

    keys: Mapping[str, ed25519.Ed25519PublicKey] = field(default_factory=dict)
    device_id: str = ""


def reconcile(
    spool: Spool,
    device_key: ed25519.Ed25519PrivateKey,
    receipts: TrustedReceipts | None = None,
) -> ReconcileReport:
    report = ReconcileReport()
    trusted = receipts or TrustedReceipts()
    layout, journal = spool.layout, spool.journal
    public = device_key.public_key()
    failed_opens = _failed_opens(spool)

    for part in layout.pending_parts():
        try:
            recovered = seal_torn(part, device_key, failed_opens=failed_opens)
        except EvidenceError as exc:
            _quarantine(spool, part, str(exc), report)
            continue
        journal.audit(
            "torn_segment_recovered",
            path=layout.relative(recovered.path),
            plaintext_kept=recovered.plaintext_kept,
            bytes_dropped=recovered.bytes_dropped,
            open_failed=recovered.verdict.open_failed,
            tail=recovered.tail,
        )
        report.torn_recovered.append(layout.relative(recovered.path))

    for sealed_path in layout.spooled_sealed():
        try:
            verdict = scan_segment(sealed_path, public)
        except EvidenceError as exc:
            _quarantine(spool, sealed_path, str(exc), report)
            continue
        header = verdict.header
        target = layout.ready_path(header.recording_id, header.segment_index)
        row = journal.segment_by_path(layout.relative(target))
        if row is None:
            sealed = SealedSegment.from_verdict(sealed_path, verdict)
            spool.commit(sealed, torn=verdict.status != "complete", recovered=True)
            report.adopted.append(layout.relative(target))
        elif row.digest == verdict.digest.hex():
            spool.move_to_ready(sealed_path, target)
            journal.audit("segment_moved_to_ready", path=row.path)
            report.moved.append(row.path)
        else:
            _quarantine(spool, sealed_path, f"differs from journalled {row.path}", report)

    known = {row.path for row in journal.segments()}
    for ready in layout.ready_segments():
        relative = layout.relative(ready)
        if relative in known:
            continue
        try:
            verdict = scan_segment(ready, public)
        except EvidenceError as exc:
            _quarantine(spool, ready, str(exc), report)
            continue
        with journal.transaction() as db:
            journal.insert_segment(
                db,
                recording_id=verdict.header.recording_id.hex,
                segment_index=verdict.header.segment_index,
                path=relative,
                torn=verdict.status != "complete",
                end_of_recording=verdict.end_of_recording,
                digest=verdict.digest.hex(),
                size=verdict.file_size,
            )
            journal.audit_in(db, "orphan_adopted", path=relative, digest=verdict.digest.hex())
        report.adopted.append(relative)

    committed = _committed_receipts(spool)
    for row in journal.segments("sealed", "uploading", "uploaded", "rejected"):
        exists = (layout.root / row.path).exists()
        if row.receipt is not None:
            judgement, why = _judge_receipt(row, committed, trusted)
            if judgement == "trusted":  # checked and committed before the crash: finish
                spool.delete_local(row, finished_after_restart=True)
                report.deletions_finished.append(row.path)
            elif judgement == "no_key":  # nothing deleted, nothing undone until a key is
                log.warning("%s: receipt kept as it is: %s", row.path, why)
                report.receipts_unverifiable.append(row.path)
            else:
                _unconfirmed_receipt(spool, row, report, why)
        elif not exists:
            with journal.transaction() as db:
                journal.set_state(db, row.id, "missing")
                journal.audit_in(db, "segment_missing", path=row.path, digest=row.digest)
            log.error("%s: in the journal but not on flash; marked missing", row.path)
            report.missing.append(row.path)
    _mark_interrupted_rolls(spool, device_key, report, failed_opens)
    return report


def _receipt_key(row: SegmentRow) -> tuple[str, str, str]:
    receipt = (row.receipt or "").encode()
    return row.path, row.digest, hashlib.sha256(receipt).hexdigest()


def _committed_receipts(spool: Spool) -> set[tuple[str, str, str]]:
    """(path, digest, receipt SHA-256) of every `upload_receipt` event. The receipt column
    is committed in the same transaction as that signed event (queue.py), so a receipt in a
    row without its event was not put there by the uploader: the column was edited on flash,
    and it must not delete footage. Unreadable events are skipped (`audit verify` names
    them), which at worst keeps a file that could have gone."""
    return set(
        _readable(
            spool,
            "upload_receipt",
            lambda f: (str(f["path"]), str(f["digest"]), str(f["receipt_sha256"])),
        )
    )


ReceiptJudgement = Literal["trusted", "no_key", "refused"]


def _judge_receipt(
    row: SegmentRow, committed: set[tuple[str, str, str]], trusted: TrustedReceipts
) -> tuple[ReceiptJudgement, str]:
    """Whether the receipt in `row` may finish its deletion, and why not. The journal's
    columns are not signed, and a forged audit row is not checked here either (its
    signature is `audit verify`'s business), so the receipt itself must verify against the
    trusted receipt keys and cover the row, as it did when the uploader committed it.
    "no_key": it names a key not configured now (no valid [upload], or the key taken out of
    receipt_keys), so it can be judged neither way; one too malformed to name a key is
    judged, and refused, like any other bad receipt."""
    try:
        key_id = json.loads(row.receipt or "")["receipt"]["key_id"]
    except (ValueError, KeyError, TypeError):
        key_id = None
    if isinstance(key_id, str) and key_id not in trusted.keys:
        return "no_key", f"its key {key_id[:64]!r} is not among the trusted receipt keys"
    if _receipt_key(row) not in committed:
        return "refused", "no upload_receipt event records it"
    try:
        receipt = parse_receipt((row.receipt or "").encode(), trusted.keys)
        check_covers(receipt, digest=row.digest, size=row.size, device_id=trusted.device_id)
    except ReceiptInvalid as exc:
        return "refused", str(exc)
    return "trusted", ""


def _unconfirmed_receipt(spool: Spool, row: SegmentRow, report: ReconcileReport, why: str) -> None:
    """A receipt start-up cannot trust (`why`): nothing is deleted. The row goes back to
    "sealed" without it, so the segment is uploaded again and deleted only on a receipt the
    uploader checks itself; the event records what the column held and why it was refused."""
    receipt_sha256 = _receipt_key(row)[2]
    with spool.journal.transaction() as db:
        spool.journal.requeue(db, row.id, receipt=None)
        spool.journal.audit_in(
            db,
            "receipt_unconfirmed",
            path=row.path,
            digest=row.digest,
            receipt_sha256=receipt_sha256,
            reason=why,
        )
    log.error(
        "%s: the journal holds a receipt start-up cannot trust (%s); the segment is kept and "
        "will be uploaded again",
        row.path,
        why,
    )
    report.receipts_unconfirmed.append(row.path)


def _quarantined_sources(spool: Spool) -> set[str]:
    """Where every quarantined file was (`file_quarantined` events, `was`), in any boot."""
    return set(_readable(spool, "file_quarantined", lambda f: str(f["was"])))


def _failed_opens(spool: Spool) -> set[OpenFailure]:
    """The segments the journal says could not be opened (`segment_open_failed`, audited by
    Spool.open_segment, with the boot that tried). A power cut leaves no such record. A row
    that does not parse (edited or corrupt on flash) is logged and skipped, never raised:
    recording must still start; `audit verify` names it."""
    return set(
        _readable(
            spool,
            "segment_open_failed",
            lambda f: OpenFailure(
                uuid.UUID(hex=f["recording"]), int(f["index"]), uuid.UUID(hex=f["boot"]).bytes
            ),
        )
    )


def _readable(spool: Spool, kind: str, read: Callable[[Any], T]) -> list[T]:
    """`read` applied to the fields of every event of `kind`; an event it cannot read (a row
    edited or corrupt on flash) is logged and skipped, never raised: the start must go on,
    and `audit verify` names the row."""
    found = []
    for stored in spool.journal.stored_fields_of(kind):
        try:
            found.append(read(json.loads(stored)))
        except (KeyError, TypeError, ValueError):
            log.warning("unreadable %s event ignored: %.200r", kind, stored)
    return found


def _mark_interrupted_rolls(
    spool: Spool,
    device_key: ed25519.Ed25519PrivateKey,
    report: ReconcileReport,
    failed_opens: set[OpenFailure],
) -> None:
    """A recording whose last segment is complete but not end of recording, with no
    successor anywhere, lost power at a segment roll, or could not open its next segment:
    leave the placeholder segment the spec asks for (docs/segment-format.md §7), sealed,
    journalled and audited like any recovered segment, so the chain reads "interrupted
    (power loss)" or, when the journal recorded the failed open in the boot that wrote
    segment n, "ended early", never "missing". A last segment sealed torn gets the
    open-failed placeholder too when the journal recorded that its successor could not be
    opened (a write failed, the recording went on, then the open failed: a dying card);
    without that record it is left as it is, and the chain reads "interrupted"."""
    layout, journal = spool.layout, spool.journal
    quarantined = _quarantined_sources(spool)
    last: dict[str, SegmentRow] = {}
    for row in journal.segments():
        if row.recording_id not in last or row.segment_index > last[row.recording_id].segment_index:
            last[row.recording_id] = row
    for row in last.values():
        path = layout.root / row.path
        if row.end_of_recording or row.state != "sealed" or not path.exists():
            continue
        previous = scan_segment(path, device_key.public_key())
        header = previous.header
        successor = OpenFailure(header.recording_id, header.segment_index + 1, header.boot_id)
        failed = successor in failed_opens
        if interrupted_roll([previous], open_failed=failed) is None:
            continue
        part = layout.part_path(header.recording_id, header.segment_index + 1)
        if layout.relative(part) in quarantined:
            # n+1 began but could not be read: it is in quarantine/, and a placeholder
            # saying power was lost before it began would be false
            continue
        if not part.parent.exists():
            part.parent.mkdir(mode=0o700)
            fsync_directory(part.parent.parent)
        recovered = seal_interrupted_roll(
            previous, part, device_key, spool.evidence_key, open_failed=failed
        )
        target = spool.commit(
            SealedSegment.from_verdict(recovered.path, recovered.verdict), torn=True, recovered=True
        )
        cause = "open_failed" if failed else "power_loss"
        journal.audit(
            "roll_interrupted",
            recording=row.recording_id,
            after=row.path,
            path=layout.relative(target),
            cause=cause,
        )
        log.warning(
            "%s: %s at a segment roll; placeholder %s written",
            row.path,
            "the next segment could not be opened" if failed else "power was lost",
            target,
        )
        report.rolls_interrupted.append(layout.relative(target))


def _quarantine(spool: Spool, path: Path, reason: str, report: ReconcileReport) -> None:
    layout = spool.layout
    target = move_without_overwriting(path, layout.quarantine, f"{path.parent.name}-{path.name}")
    spool.journal.audit(
        "file_quarantined", path=layout.relative(target), was=layout.relative(path), reason=reason
    )
    log.error("%s: not a readable segment (%s); moved to %s", path, reason, target)
    report.quarantined.append(layout.relative(target))


def move_without_overwriting(path: Path, directory: Path, name: str) -> Path:
    """Move `path` into `directory` as `name`, or `name.1`, `name.2`… if taken: link(2)
    fails rather than replace, so nothing on flash is ever overwritten. A crash between the
    link and the unlink leaves both names; the next start quarantines the source again under
    a new name, and the copies are identical."""
    for attempt in range(10_000):
        target = directory / (name if attempt == 0 else f"{name}.{attempt}")
        try:
            os.link(path, target)
        except FileExistsError:
            continue
        fsync_directory(directory)
        path.unlink()
        fsync_directory(path.parent)
        return target
    raise StorageError(f"{directory}: no free name for {name}")
