"""A segment the ingest verifies and refuses (422 on the last PATCH; the ingest quarantines
the upload) is journalled `rejected` and never sent again, against the project's ingest over
mutual TLS with virtual time: before, it was sent in full again every retry_max (5 min),
one more quarantined copy each time. The file stays on flash; other segments go on; a
restart does not resume it; only an operator's retry puts it back in the queue."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from bodycamd import ctl
from bodycamd.errors import Refused
from bodycamd.ingest.app import open_store, running_ingest
from bodycamd.upload.settings import UploadSettings
from tests.evidence.helpers import Keys

from ..ingest.helpers import Rig, audit_events
from .real_storage import RealStorage, real_storage
from .rig import make_rig as make_upload_rig
from .test_ingest_e2e import _enrol, ingest_settings

RETRY_MAX = 300.0  # WorkerTiming's, from ingest_settings


async def _created(ingest: Rig) -> int:
    """POSTs the ingest answered (its audit log has one upload.created for each)."""
    return sum(1 for e in await audit_events(ingest) if e["event"] == "upload.created")


async def _quarantined(ingest: Rig) -> int:
    store = open_store(ingest.config)
    try:
        return len(await store.quarantined())
    finally:
        await store.close()


def _flip(path: Path) -> None:
    """One byte of the sealed file changed on flash (bit rot): the digest the journal has,
    and sends as metadata, no longer matches what is sent; the ingest refuses it."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


async def _dock_for(
    store: RealStorage, upload: UploadSettings, seconds: float, done: Callable[[], bool]
) -> None:
    """Dock the uploader (a new one: a daemon start) until `done()` and `seconds` of virtual
    time went by, then until it is idle."""
    rig = make_upload_rig(upload, store.storage)
    start = rig.clock.now
    async with rig:
        rig.docked.set(True)
        await rig.until(done, "the uploads expected")
        await rig.until(lambda: rig.clock.now - start > seconds, "virtual time to pass")
        await rig.until(lambda: rig.component.progress.value.state == "idle", "idle")


async def test_a_rejected_segment_is_kept_and_not_sent_again(tmp_path: Path) -> None:
    ingest, camera = _enrol(tmp_path)
    store = real_storage(tmp_path / "state", Keys(ingest.evidence, camera.signing_key))
    [bad] = store.seal(1, 200_000, uuid.uuid4())
    good = store.seal(2, 200_000, uuid.uuid4())
    _flip(store.path(bad))
    async with running_ingest(ingest.config, port=0) as server:
        upload = ingest_settings(ingest, camera, server.url, 64 * 1024)
        # over four retry_max of virtual time: the old code sent the segment 5 times
        settled = ["deleted", "deleted", "rejected"]
        states = lambda: sorted(store.row(r.id).state for r in [*good, bad])  # noqa: E731
        await _dock_for(store, upload, 4 * RETRY_MAX, lambda: states() == settled)
        assert await _created(ingest) == 3  # one upload per segment, none made again
        assert await _quarantined(ingest) == 1

        row = store.row(bad.id)
        assert row.state == "rejected"
        assert row.last_error is not None
        assert row.last_error.startswith("PATCH upload: server answered 422: segment rejected")
        assert store.path(bad).exists()  # never deleted without a receipt
        assert [store.row(r.id).state for r in good] == ["deleted", "deleted"]
        [event] = store.audit("upload_rejected")
        assert event["path"] == bad.path and event["reason"] == row.last_error
        assert event["digest"] == bad.digest and event["url"] == row.upload_url
        assert store.spool.journal.verify(store.keys.device_public).ok
        counts = store.spool.journal.queue_counts
        assert (counts.segments, counts.rejected) == (0, 1)  # not "awaiting upload"
        assert store.storage.health() == {"upload_rejected"}
        [listed] = await store.storage.upload_jobs()
        assert (listed.phase, listed.last_error) == ("rejected", row.last_error)

        # the daemon restarts and docks again: the rejected segment is not resumed
        await _dock_for(store, upload, 2 * RETRY_MAX, lambda: True)
        assert await _created(ingest) == 3
        assert store.row(bad.id).state == "rejected"

        # the operator fixes the cause (here: the flipped bit) and retries it
        _flip(store.path(bad))
        await store.storage.retry_rejected(bad.path, source="control", peer_uid=0, peer_pid=1)
        retried = store.row(bad.id)
        assert (retried.state, retried.upload_url, retried.next_attempt_ns) == ("sealed", None, 0)
        [asked] = store.audit("upload_retry_requested")
        assert asked["rejected_for"] == row.last_error and asked["source"] == "control"
        await _dock_for(store, upload, 0, lambda: store.row(bad.id).state == "deleted")
        assert await _created(ingest) == 4
    assert store.row(bad.id).state == "deleted"  # now against a receipt
    assert not store.storage.health()
    assert store.spool.journal.verify(store.keys.device_public).ok
    store.close()


async def test_retry_is_refused_for_a_segment_that_is_not_rejected(tmp_path: Path) -> None:
    store = real_storage(tmp_path / "state")
    [row] = store.seal(1, 10_000)
    events = len(store.spool.journal.events())
    with pytest.raises(Refused, match=r"sealed; only a segment the server rejected") as refused:
        await store.storage.retry_rejected(row.path)
    assert refused.value.code == "not_rejected"
    with pytest.raises(Refused, match=r"^nowhere\.seg: not in the journal"):
        await store.storage.retry_rejected("nowhere.seg")
    assert store.row(row.id).state == "sealed" and len(store.spool.journal.events()) == events
    store.close()


def test_bodycamctl_lists_the_reason_and_asks_for_a_retry() -> None:
    args = ctl.build_parser().parse_args(["upload", "retry", "ready/a/000001.seg"])
    assert ctl._request(args) == ("upload_retry", {"path": "ready/a/000001.seg"})
    queue = [
        {"path": "ready/a/000001.seg", "size": 10, "torn": False, "state": "rejected",
         "uploaded_bytes": 10, "last_error": "PATCH upload: server answered 422: digest mismatch"},
        {"path": "ready/a/000002.seg", "size": 20, "torn": False, "state": "sealed",
         "uploaded_bytes": 0, "last_error": None},
    ]  # fmt: skip
    lines = ctl.render("uploads", {"queue": queue}).splitlines()
    assert lines[0].endswith("rejected: PATCH upload: server answered 422: digest mismatch")
    assert lines[1].endswith("bytes  sealed")
    assert ctl.render("upload", {"path": "ready/a/000001.seg"}).startswith(
        "ready/a/000001.seg: back in the upload queue"
    )
