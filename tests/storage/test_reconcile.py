"""Start-up repairs: every crash window of sealing, deletion and writing is put right, and
every repair is audited."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from bodycamd.evidence.reader import scan_segment
from bodycamd.storage import SegmentStart, reconcile
from bodycamd.storage.spool import Spool
from tests.storage.helpers import audit_kinds, make_spool

DATA = bytes(range(256)) * 2000


@pytest.fixture
def spool(tmp_path: Path) -> Spool:
    return make_spool(tmp_path / "state")[0]


def start(spool: Spool, index: int = 0) -> SegmentStart:
    return SegmentStart(uuid.uuid4(), index, b"\0" * 32, False)


def test_torn_part_is_sealed_and_queued(spool: Spool) -> None:
    segment = spool.open_segment(start(spool))
    segment.write(DATA[:100_000])
    segment.checkpoint()
    segment.write(DATA[100_000:])  # the power goes before the next checkpoint
    key = spool._device_key
    report = reconcile(spool, key)
    assert len(report.torn_recovered) == 1 and len(report.adopted) == 1
    (row,) = spool.journal.segments()
    assert row.torn and row.state == "sealed" and row.path.startswith("ready/")
    verdict = scan_segment(spool.layout.root / row.path)
    assert verdict.sealed_torn and verdict.vouched_plaintext == 100_000
    assert audit_kinds(spool)[-2:] == ["torn_segment_recovered", "segment_sealed"]
    assert spool.journal.verify(key.public_key()).ok


def test_crash_between_seal_and_journal(spool: Spool) -> None:
    segment = spool.open_segment(start(spool))
    segment.write(DATA)
    sealed = segment._writer.seal(end_of_recording=True)  # the .seg exists, no journal row
    report = reconcile(spool, spool._device_key)
    assert report.adopted and not report.torn_recovered
    (row,) = spool.journal.segments()
    assert row.digest == sealed.digest.hex() and not row.torn
    assert (spool.layout.root / row.path).exists() and not sealed.path.exists()


def test_crash_between_journal_and_move(spool: Spool) -> None:
    segment = spool.open_segment(start(spool))
    segment.write(DATA)
    sealed = segment._writer.seal(end_of_recording=True)
    target = spool.layout.ready_path(segment.header.recording_id, 0)
    moves: list[Path] = []
    spool.move_to_ready = lambda source, dest: moves.append(dest)  # type: ignore[method-assign]
    spool.commit(sealed, torn=False)  # journalled, then the power went
    del spool.move_to_ready
    assert moves == [target] and sealed.path.exists()
    report = reconcile(spool, spool._device_key)
    assert report.moved == [spool.layout.relative(target)]
    assert target.exists() and not sealed.path.exists()
    assert len(spool.journal.segments()) == 1


def test_row_without_file_is_reported_missing(spool: Spool) -> None:
    segment = spool.open_segment(start(spool))
    segment.write(DATA)
    sealed = segment.seal(end_of_recording=True)
    sealed.path.unlink()  # someone pulled the file
    report = reconcile(spool, spool._device_key)
    assert report.missing == [spool.layout.relative(sealed.path)]
    assert spool.journal.segments()[0].state == "missing"
    assert audit_kinds(spool)[-1] == "segment_missing"


def test_orphan_in_ready_is_adopted(tmp_path: Path) -> None:
    root = tmp_path / "state"
    spool, keys = make_spool(root)
    segment = spool.open_segment(start(spool))
    segment.write(DATA)
    sealed = segment.seal(end_of_recording=True)
    spool.journal.close()
    (root / "journal.db").unlink()  # journal lost
    for leftover in root.glob("journal.db-*"):
        leftover.unlink()
    again, _ = make_spool(root, keys)
    report = reconcile(again, keys.device)
    assert report.adopted == [again.layout.relative(sealed.path)]
    assert audit_kinds(again)[-1] == "orphan_adopted"


def test_unreadable_part_is_quarantined_not_deleted(spool: Spool) -> None:
    junk = spool.layout.spool / uuid.uuid4().hex / "000000.part"
    junk.parent.mkdir()
    junk.write_bytes(b"\x89BCAM\r\n\x1a" + b"\0" * 100)  # the header never made it to flash
    report = reconcile(spool, spool._device_key)
    assert len(report.quarantined) == 1
    assert (spool.layout.root / report.quarantined[0]).read_bytes().startswith(b"\x89BCAM")
    assert audit_kinds(spool)[-1] == "file_quarantined"


def test_journal_failure_keeps_footage_and_chain(tmp_path: Path) -> None:
    """The journal dies mid-recording: sealing still completes on flash, the chain digest is
    still handed on, and the next start adopts the segment."""
    from bodycamd.errors import StorageError

    root = tmp_path / "state"
    spool, keys = make_spool(root)
    segment = spool.open_segment(start(spool))
    segment.write(DATA)
    spool.journal.close()  # from here every journal write fails
    with pytest.raises(StorageError, match="journal write failed"):
        spool.journal.audit("anything")
    sealed = segment.seal(end_of_recording=True)
    assert sealed.path.parent.parent == spool.layout.spool  # still in spool/, complete
    assert scan_segment(sealed.path).digest == sealed.digest
    again, _ = make_spool(root, keys)
    report = reconcile(again, keys.device)
    assert report.adopted == [
        again.layout.relative(again.layout.ready_path(segment.header.recording_id, 0))
    ]


def test_an_unreadable_next_segment_gets_no_placeholder(tmp_path: Path) -> None:
    """Segment n is complete, n+1 began but its file cannot be read: it goes to quarantine,
    and no placeholder says that power was lost before n+1 began, in this start or any
    later one (the quarantine's audit event remembers where the file was)."""
    root = tmp_path / "state"
    spool, keys = make_spool(root)
    first = start(spool)
    segment = spool.open_segment(first)
    segment.write(DATA)
    segment.seal(end_of_recording=False)
    junk = spool.layout.part_path(first.recording_id, 1)
    junk.parent.mkdir(exist_ok=True)
    junk.write_bytes(b"\x89BCAM\r\n\x1a" + b"\0" * 100)
    report = reconcile(spool, keys.device)
    assert len(report.quarantined) == 1 and report.rolls_interrupted == []
    spool.journal.close()
    again, _ = make_spool(root, keys)
    assert reconcile(again, keys.device).rolls_interrupted == []
    assert [row.segment_index for row in again.journal.segments()] == [0]
    assert again.journal.verify(keys.device_public).ok


def test_a_seal_whose_directory_fsync_fails_is_kept_whole(
    spool: Spool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The seal renamed `.part` to `.seg`, then fsyncing the directory failed (the one seam
    here is the writer's directory fsync; a real EIO cannot be made on this filesystem).
    The file is whole, its footer fsynced: it is journalled as it is, and the chain goes on
    from its digest. The salvage used to look for the `.part`, find nothing, and report the
    segment lost, so the next segment was chained to the one before."""
    import errno

    import bodycamd.evidence.writer as writer_module
    from bodycamd.errors import SegmentAbandoned

    segment = spool.open_segment(start(spool))
    segment.write(DATA)
    segment.checkpoint()

    def failing(directory: Path) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(writer_module, "fsync_directory", failing)
    with pytest.raises(SegmentAbandoned):
        segment.seal(end_of_recording=False)
    monkeypatch.undo()
    salvaged = segment.salvaged
    assert salvaged is not None and salvaged.path.exists()
    (row,) = spool.journal.segments()
    assert row.path == spool.layout.relative(salvaged.path) and not row.torn
    verdict = scan_segment(salvaged.path)
    assert verdict.status == "complete" and verdict.digest == salvaged.digest
    assert verdict.plaintext_bytes == len(DATA)
    abandoned = [e.fields for e in spool.journal.events() if e.kind == "segment_abandoned"]
    assert abandoned[-1]["salvaged"] is True and abandoned[-1]["bytes_dropped"] == 0
