"""The upload surface of the storage façade (UploadQueue, storage/uploads.py): each method's
effect on the journal, on a real spool, real SQLite and real signed receipts; and the crash
rule of confirm_and_delete, cut at the crash point between the receipt commit and the
unlink."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path

import pytest

from bodycamd.errors import NotAwaitingUpload
from bodycamd.receipt import ReceiptInvalid, receipt_key_id
from bodycamd.storage import SegmentStart, Storage, reconcile
from bodycamd.storage.reconcile import TrustedReceipts
from bodycamd.storage.spool import Spool
from bodycamd.storage.uploads import UploadJob, UploadQueue
from tests.evidence.helpers import Keys
from tests.storage.helpers import (
    RECEIPT_KEY,
    audit_kinds,
    make_spool,
    signed_receipt,
    storage_for,
)

DATA = bytes(range(256)) * 2000
NOW = 1_800_000_000 * 10**9
URL = "https://ingest.example/files/abc"

# what the daemon hands start-up from [upload] receipt_keys, and the device id the receipts name
TRUSTED = TrustedReceipts(
    {receipt_key_id(RECEIPT_KEY.public_key()): RECEIPT_KEY.public_key()}, "test-cam"
)


class PowerCut(Exception):
    """Raised at a crash point: nothing after it runs, as if the power went."""


def seal_segments(spool: Spool, count: int) -> None:
    recording, prev = uuid.uuid4(), b"\0" * 32
    for index in range(count):
        segment = spool.open_segment(SegmentStart(recording, index, prev, True))
        segment.write(DATA)
        prev = segment.seal(end_of_recording=index == count - 1).digest


@pytest.fixture
def rig(tmp_path: Path) -> tuple[Spool, Keys, Storage]:
    spool, keys = make_spool(tmp_path / "state")
    seal_segments(spool, 2)
    return spool, keys, storage_for(spool)


async def first(storage: Storage) -> UploadJob:
    job = await storage.next_for_upload(NOW)
    assert job is not None
    return job


def test_the_facade_is_an_upload_queue(rig: tuple[Spool, Keys, Storage]) -> None:
    queue: UploadQueue = rig[2]  # mypy checks the Protocol; this checks the device id
    assert queue.device_id == "test-cam"


async def test_jobs_come_in_seal_order_and_failures_wait_their_turn(
    rig: tuple[Spool, Keys, Storage],
) -> None:
    spool, _, storage = rig
    one = await first(storage)
    assert (one.index, one.phase, one.attempts, one.upload_url) == (0, "sealed", 0, None)
    assert one.path == spool.layout.root / spool.journal.segments()[0].path and one.path.exists()
    assert one.digest == hashlib.sha256(one.path.read_bytes()).hexdigest()
    await storage.record_upload_failure(one, "connect: refused " + "x" * 900, NOW + 10)
    (row, _) = spool.journal.segments()
    assert (row.attempts, row.next_attempt_ns) == (1, NOW + 10)
    assert row.last_error is not None and len(row.last_error) == 500
    assert audit_kinds(spool)[-1] == "upload_failed"
    two = await first(storage)  # the failed one is not due yet
    assert two.index == 1
    await storage.record_upload_failure(two, "503", NOW + 5)
    assert await storage.next_for_upload(NOW) is None
    assert await storage.next_attempt_ns() == NOW + 5
    again = await storage.next_for_upload(NOW + 10)
    assert again is not None and again.index == 0 and again.attempts == 1


async def test_started_progress_and_uploaded_survive_a_restart(
    rig: tuple[Spool, Keys, Storage], tmp_path: Path
) -> None:
    spool, keys, storage = rig
    job = await storage.record_upload_started(await first(storage), URL)
    assert (job.phase, job.upload_url, job.upload_offset) == ("uploading", URL, 0)
    assert audit_kinds(spool)[-1] == "upload_started"
    job = await storage.record_upload_progress(job, 4096)
    with pytest.raises(ValueError, match="upload offset"):
        await storage.record_upload_progress(job, job.size + 1)
    spool.journal.close()  # the power goes; the next start sees what was committed
    spool, _ = make_spool(tmp_path / "state", keys)
    storage = storage_for(spool)
    resumed = await first(storage)
    assert (resumed.phase, resumed.upload_url, resumed.upload_offset) == ("uploading", URL, 4096)
    sent = await storage.record_uploaded(resumed)
    assert (sent.phase, sent.upload_offset) == ("uploaded", sent.size)
    assert audit_kinds(spool)[-1] == "upload_sent"
    figures = await storage.queue_figures()
    assert (figures.segments, figures.no_receipt) == (2, 1)  # no receipt: still on flash
    assert figures.bytes == sum(r.size for r in spool.journal.segments())
    assert sent.path.exists()


async def test_confirm_and_delete_against_a_covering_receipt(
    rig: tuple[Spool, Keys, Storage],
) -> None:
    spool, keys, storage = rig
    job = await storage.record_uploaded(await first(storage))
    receipt, wire = signed_receipt(job.digest, job.size)
    used = spool.ledger.used
    await storage.confirm_and_delete(job, receipt, wire)
    assert not job.path.exists()
    row = spool.journal.segment(job.segment_id)
    assert row is not None and row.state == "deleted"
    assert row.receipt is not None and json.loads(row.receipt)["receipt"]["digest"] == job.digest
    events = spool.journal.events()[-2:]
    assert [e.kind for e in events] == ["upload_receipt", "segment_deleted"]
    assert {e.fields["receipt_sha256"] for e in events} == {hashlib.sha256(wire).hexdigest()}
    assert spool.ledger.used < used
    assert (await storage.queue_figures()).segments == 1
    assert storage.figures() is not None and storage.figures().awaiting_upload == 1  # type: ignore[union-attr]
    with pytest.raises(NotAwaitingUpload, match="is deleted"):
        await storage.record_upload_failure(job, "late", NOW)  # a stale job cannot resurrect it
    assert spool.journal.verify(keys.device_public).ok


@pytest.mark.parametrize(
    ("field", "value"),
    [("digest", "00" * 32), ("size", 1), ("device_id", "another-cam")],
)
async def test_a_receipt_that_does_not_cover_the_segment_deletes_nothing(
    rig: tuple[Spool, Keys, Storage], field: str, value: object
) -> None:
    spool, _, storage = rig
    job = await first(storage)
    covering = {"digest": job.digest, "size": job.size, "device_id": "test-cam"}
    covering[field] = value
    digest, size = covering.pop("digest"), covering.pop("size")
    receipt, wire = signed_receipt(str(digest), int(size), **covering)  # type: ignore[call-overload]
    with pytest.raises(ReceiptInvalid, match=f"receipt {field} is"):
        await storage.confirm_and_delete(job, receipt, wire)
    assert job.path.exists()
    row = spool.journal.segment(job.segment_id)
    assert row is not None and row.state == "sealed" and row.receipt is None
    refused = spool.journal.events()[-1]
    assert refused.kind == "receipt_refused" and field in str(refused.fields["reason"])
    assert await first(storage) == job  # still queued, unchanged


async def power_cut_after_the_receipt_commit(spool: Spool) -> UploadJob:
    """The first queued segment's receipt is committed, then the power goes before the
    unlink (crash point "receipt_committed"); the journal is closed as the cut leaves it."""

    def cut(point: str) -> None:
        if point == "receipt_committed":
            raise PowerCut(point)

    storage = storage_for(spool, crash_point=cut)
    job = await first(storage)
    with pytest.raises(PowerCut):
        await storage.confirm_and_delete(job, *signed_receipt(job.digest, job.size))
    assert job.path.exists()  # the receipt is committed, the file not yet unlinked
    spool.journal.close()
    return job


async def test_power_cut_between_receipt_and_unlink_finishes_at_the_next_start(
    rig: tuple[Spool, Keys, Storage], tmp_path: Path
) -> None:
    spool, keys, _ = rig
    job = await power_cut_after_the_receipt_commit(spool)

    spool, _ = make_spool(tmp_path / "state", keys)
    storage = storage_for(spool)
    after_crash = await first(storage)
    assert after_crash.index == 1  # the receipted segment is never offered for upload again
    report = reconcile(spool, keys.device, TRUSTED)
    assert report.deletions_finished == [spool.layout.relative(job.path)]
    assert not job.path.exists()
    row = spool.journal.segment(job.segment_id)
    assert row is not None and row.state == "deleted"
    deleted = spool.journal.events()[-1]
    assert deleted.kind == "segment_deleted" and deleted.fields["finished_after_restart"]
    assert spool.journal.verify(keys.device_public).ok


async def test_a_receipt_written_into_the_journal_by_hand_deletes_nothing(
    rig: tuple[Spool, Keys, Storage], tmp_path: Path
) -> None:
    """The receipt column is not signed; the `upload_receipt` event committed with it is. A
    receipt in a row with no such event was edited on flash: the file stays, the row goes
    back to be uploaded, and the trail says what happened and still verifies."""
    spool, keys, _ = rig
    storage = storage_for(spool)
    job = await first(storage)
    with spool.journal.transaction() as db:
        db.execute("UPDATE segments SET receipt = 'not a receipt' WHERE id = ?", (job.segment_id,))
    spool.journal.close()

    spool, _ = make_spool(tmp_path / "state", keys)
    report = reconcile(spool, keys.device)
    assert report.deletions_finished == []
    assert report.receipts_unconfirmed == [spool.layout.relative(job.path)]
    assert job.path.exists()
    row = spool.journal.segment(job.segment_id)
    assert row is not None and row.state == "sealed" and row.receipt is None
    assert (row.upload_url, row.upload_offset) == (None, 0)  # uploaded again from the start
    event = spool.journal.events()[-1]
    assert event.kind == "receipt_unconfirmed" and event.fields["path"] == row.path
    assert spool.journal.verify(keys.device_public).ok
    again = await first(storage_for(spool))
    assert again.segment_id == job.segment_id  # offered for upload again


async def test_a_rejection_is_terminal_bounded_and_audited_with_it(
    rig: tuple[Spool, Keys, Storage],
) -> None:
    spool, keys, storage = rig
    job = await storage.record_upload_started(await first(storage), URL)
    await storage.record_upload_rejected(job, "PATCH upload: server answered 422: " + "x" * 900)
    row = spool.journal.segment(job.segment_id)
    assert row is not None and row.state == "rejected" and row.attempts == 1
    assert row.last_error is not None and len(row.last_error) == 500  # MAX_ERROR_TEXT
    assert (spool.layout.root / row.path).exists()
    later = await first(storage)  # far in the future too: the other one, never the rejected
    assert later.segment_id != job.segment_id
    assert await storage.next_for_upload(NOW * 2) == later
    with pytest.raises(NotAwaitingUpload, match="is rejected, not awaiting upload"):
        await storage.record_upload_started(job, URL)  # a stale job cannot revive it
    figures = await storage.queue_figures()
    assert (figures.segments, figures.rejected) == (1, 1)
    assert audit_kinds(spool)[-1] == "upload_rejected"
    assert spool.journal.verify(keys.device_public).ok
    reconcile(spool, keys.device)  # a restart: the file is there, the row stays as it is
    assert spool.journal.segment(job.segment_id) == row


async def test_a_power_cut_before_the_rejection_commits_leaves_neither_state_nor_event(
    rig: tuple[Spool, Keys, Storage], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The state and its audit event are one transaction: cut the power as the event is
    appended (after the UPDATE ran) and the row is still awaiting upload, the trail as it was."""
    spool, _, storage = rig
    job = await first(storage)
    kinds = audit_kinds(spool)

    def cut(*args: object, **fields: object) -> None:
        raise PowerCut("audit_in")

    monkeypatch.setattr(spool.journal, "audit_in", cut)
    with pytest.raises(PowerCut):
        await storage.record_upload_rejected(job, "PATCH upload: server answered 422: no")
    monkeypatch.undo()
    row = spool.journal.segment(job.segment_id)
    assert row is not None and (row.state, row.last_error) == ("sealed", None)
    assert audit_kinds(spool) == kinds
    assert (await first(storage)).segment_id == job.segment_id  # offered again: sent once more


async def test_a_forged_receipt_and_audit_row_delete_nothing(
    rig: tuple[Spool, Keys, Storage], tmp_path: Path
) -> None:
    """Someone who can write journal.db adds both the receipt and an `upload_receipt` audit
    row naming it (unsigned: `audit verify` would say so, but start-up does not run it).
    The receipt itself must verify with the trusted receipt keys and cover the row, as it
    did for the uploader: this one does not, so the file stays and is uploaded again."""
    spool, keys, _ = rig
    job = await first(storage_for(spool))
    forged = '{"forged": true}'
    with spool.journal.transaction() as db:
        db.execute("UPDATE segments SET receipt = ? WHERE id = ?", (forged, job.segment_id))
        fields = {
            "path": spool.layout.relative(job.path),
            "digest": job.digest,
            "receipt_sha256": hashlib.sha256(forged.encode()).hexdigest(),
        }
        db.execute(
            "INSERT INTO audit (time_ns, mono_ns, kind, fields, prev_hash, hash, signature) "
            "VALUES (0, 0, 'upload_receipt', ?, x'00', x'00', x'00')",
            (json.dumps(fields),),
        )
    spool.journal.close()

    spool, _ = make_spool(tmp_path / "state", keys)
    report = reconcile(spool, keys.device, TRUSTED)
    assert report.deletions_finished == [] and job.path.exists()
    assert report.receipts_unconfirmed == [spool.layout.relative(job.path)]
    event = spool.journal.events()[-1]
    assert event.kind == "receipt_unconfirmed" and "malformed" in str(event.fields["reason"])


async def test_a_receipt_no_configured_key_can_judge_is_left_until_one_can(
    rig: tuple[Spool, Keys, Storage], tmp_path: Path
) -> None:
    """An honest power cut between the receipt's commit and the unlink, then a start without
    the key that signed it (a broken [upload] section, or the key taken out of
    receipt_keys): nothing is deleted and nothing undone; the next start that has the key
    finishes the deletion."""
    spool, keys, _ = rig
    job = await power_cut_after_the_receipt_commit(spool)

    spool, _ = make_spool(tmp_path / "state", keys)
    report = reconcile(spool, keys.device, TrustedReceipts({}, "test-cam"))
    assert report.receipts_unverifiable == [spool.layout.relative(job.path)]
    assert report.deletions_finished == [] and report.receipts_unconfirmed == []
    row = spool.journal.segment(job.segment_id)
    assert row is not None and row.receipt is not None and job.path.exists()
    spool.journal.close()

    spool, _ = make_spool(tmp_path / "state", keys)
    assert reconcile(spool, keys.device, TRUSTED).deletions_finished == [
        spool.layout.relative(job.path)
    ]
    assert not job.path.exists()
