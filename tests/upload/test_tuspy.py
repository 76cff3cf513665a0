"""The uploader against tuspyserver (PyPI), over mutual TLS, with the worker's unit fake of
the journal (MemoryQueue): the protocol paths, receipts and the faults."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from .memory_queue import MemoryQueue
from .peers import Pki, TuspyPeer, write_segment
from .rig import ReceiptSigner, make_rig, settings

CHUNK = 256 * 1024


async def test_uploads_everything_and_keeps_it_without_receipt(
    tmp_path: Path, pki: Pki, signer: ReceiptSigner, segments: Path
) -> None:
    queue = MemoryQueue()
    jobs = [
        queue.add(write_segment(segments / f"{i}.seg", CHUNK * 2 + 1000 * i, seed=i + 1), index=i)
        for i in range(3)
    ]
    async with TuspyPeer(tmp_path / "files", pki) as peer:
        rig = make_rig(settings(peer.endpoint, pki, signer.trusted), queue)
        async with rig:
            rig.docked.set(True)
            progress = await rig.until_all_sent(queue)
    assert [p["index"] for p in peer.completed] == ["0", "1", "2"]  # oldest first
    for job, done in zip(jobs, peer.completed, strict=True):
        assert done["digest"] == job.digest and done["device"] == "test-cam"
        assert done["torn"] == "0" and done["recording"] == job.recording_id
        assert _sha256(done["path"]) == job.digest
        assert job.path.exists()  # no receipt: stays on flash
    assert queue.deleted == {}
    assert progress.no_receipt == 3
    assert "uploaded without receipt stay on flash" in progress.reason
    assert all("no receipt" in reason for _, reason in queue.failures)
    # the URL was journalled before the first PATCH of its upload
    assert [sid for sid, _ in queue.started] == [1, 2, 3]


async def test_receipt_verified_then_deleted(
    tmp_path: Path, pki: Pki, signer: ReceiptSigner, segments: Path
) -> None:
    queue = MemoryQueue()
    job = queue.add(write_segment(segments / "0.seg", CHUNK * 3))
    async with TuspyPeer(tmp_path / "files", pki) as peer:
        peer.receipts[job.digest] = signer.sign(job)
        rig = make_rig(settings(peer.endpoint, pki, signer.trusted), queue)
        async with rig:
            rig.docked.set(True)
            await rig.until(lambda: job.segment_id in queue.deleted, "deleted")
    # asked first: a receipt already there means the segment is never uploaded again
    assert not any(method == "POST" for method, _, _ in peer.faults.seen)
    assert not job.path.exists()
    wire = queue.deleted[job.segment_id]
    assert ("segment_deleted", {"receipt_sha256": hashlib.sha256(wire).hexdigest()}) in queue.audits
    assert rig.component.progress.value.receipts == 1


async def test_receipt_after_upload_deletes(
    tmp_path: Path, pki: Pki, signer: ReceiptSigner, segments: Path
) -> None:
    queue = MemoryQueue()
    job = queue.add(write_segment(segments / "0.seg", CHUNK * 2 + 17))
    async with TuspyPeer(tmp_path / "files", pki) as peer:
        rig = make_rig(settings(peer.endpoint, pki, signer.trusted, chunk_size=CHUNK), queue)
        async with rig:
            rig.docked.set(True)
            await rig.until(lambda: queue.jobs[job.segment_id].phase == "uploaded", "sent")
            peer.receipts[job.digest] = signer.sign(job)  # the ingest verified it meanwhile
            await rig.until(lambda: job.segment_id in queue.deleted, "deleted")
    assert [offset for _, offset in queue.progress] == [CHUNK, 2 * CHUNK, 2 * CHUNK + 17]
    posts = [s for s in peer.faults.seen if s[0] == "POST"]
    assert len(posts) == 1


def _sha256(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _metadata(value: str) -> dict[str, str]:
    pairs = (item.split(" ") for item in value.split(","))
    return {k: base64.b64decode(v).decode() for k, v in pairs}


def test_metadata_encoding_round_trips() -> None:
    from bodycamd.upload.tus import encode_metadata

    meta = {"device": "cam 1", "digest": "ab" * 32, "torn": "1"}
    assert _metadata(encode_metadata(meta)) == meta
