"""Start-up reconciliation: make flash and the journal agree, and account for every file.

Run before anything records. Each repair is audited; nothing is deleted that has not been
uploaded with a matching receipt, and files that hold nothing readable are moved to
quarantine/ (and reported), never removed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519

from ..errors import EvidenceError
from ..evidence.reader import scan_segment
from ..evidence.recovery import seal_torn
from ..evidence.writer import SealedSegment
from ..fsutil import fsync_directory
from .spool import Spool

log = logging.getLogger(__name__)


@dataclass
class ReconcileReport:
    torn_recovered: list[str] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)  # sealed files that had no journal row
    moved: list[str] = field(default_factory=list)  # rows whose file was still in spool/
    quarantined: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # rows whose file is gone
    deletions_finished: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{len(v)} {k.replace('_', ' ')}" for k, v in self.__dict__.items() if v]
        return ", ".join(parts) or "nothing to repair"


def reconcile(spool: Spool, device_key: ed25519.Ed25519PrivateKey) -> ReconcileReport:
    report = ReconcileReport()
    layout, journal = spool.layout, spool.journal
    public = device_key.public_key()

    for part in layout.pending_parts():
        try:
            recovered = seal_torn(part, device_key)
        except EvidenceError as exc:
            _quarantine(spool, part, str(exc), report)
            continue
        journal.audit(
            "torn_segment_recovered",
            path=layout.relative(recovered.path),
            plaintext_kept=recovered.plaintext_kept,
            bytes_dropped=recovered.bytes_dropped,
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

    for row in journal.segments("sealed", "uploading", "uploaded"):
        exists = (layout.root / row.path).exists()
        if row.receipt is not None:
            # the receipt was checked and committed before the crash: finish the deletion
            spool.delete_local(row, finished_after_restart=True)
            report.deletions_finished.append(row.path)
        elif not exists:
            with journal.transaction() as db:
                journal.set_state(db, row.id, "missing")
                journal.audit_in(db, "segment_missing", path=row.path, digest=row.digest)
            log.error("%s: in the journal but not on flash; marked missing", row.path)
            report.missing.append(row.path)
    return report


def _quarantine(spool: Spool, path: Path, reason: str, report: ReconcileReport) -> None:
    layout = spool.layout
    target = layout.quarantine / f"{path.parent.name}-{path.name}"
    path.rename(target)
    fsync_directory(layout.quarantine)
    fsync_directory(path.parent)
    spool.journal.audit(
        "file_quarantined", path=layout.relative(target), was=layout.relative(path), reason=reason
    )
    log.error("%s: not a readable segment (%s); moved to %s", path, reason, target)
    report.quarantined.append(layout.relative(target))
