"""Power cuts at each of the uploader's journal writes (a crash point raises before the
write happens, like a cut at that instant), then a restart: what the journal and the server
hold must lead to exactly one stored copy, a receipt, and a deletion, never a second upload
of a segment that has a receipt. Against the project's ingest, which gives receipts."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from bodycamd.ingest.app import running_ingest
from bodycamd.upload.component import UploadComponent

from .memory_queue import Crash, CrashingQueue
from .rig import make_rig as make_upload_rig
from .test_ingest_e2e import DEVICE, _enrol, ingest_settings

CHUNK = 128 * 1024


@pytest.mark.parametrize(
    ("method", "nth", "posts"),
    [
        # the POST was answered, its URL never journalled: an orphan upload on the server
        ("record_upload_started", 1, 2),
        # a chunk acknowledged, its offset never journalled: HEAD says where to go on
        ("record_upload_progress", 2, 1),
        # every byte stored and receipted, "uploaded" never journalled: receipt first
        ("record_uploaded", 1, 1),
    ],
)
async def test_crash_then_restart_ends_with_one_receipt(
    tmp_path: Path, method: str, nth: int, posts: int
) -> None:
    ingest, camera = _enrol(tmp_path)
    queue = CrashingQueue(method, nth, DEVICE)
    recording = uuid.uuid4()
    sealed = camera.segment(recording, size=400_000)
    job = queue.add(sealed.path, recording_id=recording.hex, index=0)
    async with running_ingest(ingest.config, port=0) as server:
        upload = ingest_settings(ingest, camera, server.url, CHUNK)
        first = make_upload_rig(upload, queue)
        await first.component.start()
        first.docked.set(True)
        with pytest.raises(Crash):
            await first.component.run()  # the daemon dies here
        await first.component.stop()
        assert job.path.exists()
        second = make_upload_rig(upload, queue)  # the restarted daemon, same journal
        async with second:
            second.docked.set(True)
            await second.until(lambda: job.segment_id in queue.deleted, "confirmed")
        audit = [e async for e in _events(server)]
    created = [e for e in audit if e.get("event") == "upload.created"]
    assert len(created) == posts, [e.get("event") for e in audit]
    assert not job.path.exists()


async def _events(server: object):  # type: ignore[no-untyped-def]
    import json

    store = server.context.store  # type: ignore[attr-defined]
    async for line in store.read_audit():
        yield json.loads(line)


def test_component_has_no_other_way_to_delete() -> None:
    """The only deleting call the uploader makes is confirm_and_delete (grep-level check of
    the worker's source, so a shortcut cannot slip in unnoticed)."""
    import inspect

    from bodycamd.upload import worker

    source = inspect.getsource(worker) + inspect.getsource(UploadComponent)
    assert "unlink" not in source and "remove(" not in source
    assert source.count("confirm_and_delete(") == 1
