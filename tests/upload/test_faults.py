"""Faults met by the uploader, with tuspyserver over mutual TLS as the real server and
virtual time for every backoff (the sleeps are recorded, never slept)."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import httpx
import pytest

from bodycamd.upload.transport import make_http_client
from bodycamd.upload.tus import TusClient, make_ssl_context
from bodycamd.upload.worker import upload_metadata

from .memory_queue import MemoryQueue
from .peers import CuttingProxy, Pki, Rule, TuspyPeer, write_segment
from .rig import ReceiptSigner, make_rig, settings

CHUNK = 256 * 1024


def _stored(peer: TuspyPeer) -> bytes:  # sync: the assertions read the server's file
    return Path(peer.completed[0]["path"]).read_bytes()


@pytest.mark.parametrize(
    ("status", "headers", "least_wait"),
    [(503, {"Retry-After": "7"}, 7.0), (500, {}, 1.0), (502, {"Retry-After": "120"}, 120.0)],
)
async def test_server_error_backs_off_then_resumes(
    tmp_path: Path,
    pki: Pki,
    signer: ReceiptSigner,
    segments: Path,
    status: int,
    headers: dict[str, str],
    least_wait: float,
) -> None:
    queue = MemoryQueue()
    job = queue.add(write_segment(segments / "0.seg", CHUNK * 3))
    async with TuspyPeer(tmp_path / "files", pki) as peer:
        peer.faults.add(Rule("PATCH", status, headers))
        rig = make_rig(settings(peer.endpoint, pki, signer.trusted, chunk_size=CHUNK), queue)
        async with rig:
            rig.docked.set(True)
            await rig.until(lambda: queue.jobs[job.segment_id].phase == "uploaded", "sent")
    assert (("PATCH", peer.faults.seen[-4][1], status)) in peer.faults.seen
    assert any(least_wait <= s <= max(least_wait, 1.0) * 1.0 + 1 for s in rig.clock.sleeps)
    assert queue.failures[0][1].startswith(f"PATCH upload: server answered {status}")
    assert hashlib.sha256(_stored(peer)).hexdigest() == job.digest
    heads = [m for m, _, _ in peer.faults.seen if m == "HEAD"]
    assert heads  # re-synced with HEAD before going on


async def test_conflict_resyncs_with_head(
    tmp_path: Path, pki: Pki, signer: ReceiptSigner, segments: Path
) -> None:
    """tuspyserver itself answers 409: HEAD is made to lie once (offset 0 while the server
    holds a chunk), so the PATCH that follows carries the wrong offset."""
    queue = MemoryQueue()
    job = queue.add(write_segment(segments / "0.seg", CHUNK * 3))
    async with TuspyPeer(tmp_path / "files", pki) as peer:
        http = make_http_client(make_ssl_context(pki.ca_file, pki.client_cert, pki.client_key))
        async with http:
            tus = TusClient(http, peer.endpoint, chunk_size=CHUNK)
            url = await tus.create(job.size, upload_metadata(job, "test-cam"))
            assert await tus.patch(url, job.path, 0, job.size, sha256=False) == CHUNK
        job = await queue.record_upload_started(job, url)
        await queue.record_upload_progress(job, CHUNK)
        peer.faults.add(Rule("HEAD", lie_offset=0))
        setup = len(peer.faults.seen)
        rig = make_rig(settings(peer.endpoint, pki, signer.trusted, chunk_size=CHUNK), queue)
        async with rig:
            rig.docked.set(True)
            await rig.until(lambda: queue.jobs[job.segment_id].phase == "uploaded", "sent")
    statuses = [s for m, _, s in peer.faults.seen[setup:] if m == "PATCH"]
    assert statuses[0] == 409 and set(statuses[1:]) == {204}
    assert "409" in queue.failures[0][1]
    assert not any(m == "POST" for m, _, _ in peer.faults.seen[setup:])  # resumed
    assert hashlib.sha256(_stored(peer)).hexdigest() == job.digest


async def test_too_large_is_refused_and_the_next_segment_goes(
    tmp_path: Path, pki: Pki, signer: ReceiptSigner, segments: Path
) -> None:
    queue = MemoryQueue()
    big = queue.add(write_segment(segments / "0.seg", CHUNK * 4), index=0)
    small = queue.add(write_segment(segments / "1.seg", CHUNK, seed=5), index=1)
    async with TuspyPeer(tmp_path / "files", pki, max_size=CHUNK * 2) as peer:
        rig = make_rig(settings(peer.endpoint, pki, signer.trusted, chunk_size=CHUNK), queue)
        async with rig:
            rig.docked.set(True)
            await rig.until(lambda: queue.jobs[small.segment_id].phase == "uploaded", "small")
    reason = queue.jobs[big.segment_id].last_error
    # tuspyserver takes the POST and refuses the first PATCH past its max_size
    assert reason is not None and "server answered 413" in reason
    assert queue.jobs[big.segment_id].phase != "uploaded" and big.path.exists()
    assert queue.due[big.segment_id] >= rig.clock.now_ns() - 300 * 10**9  # retried later
    assert rig.component.progress.value.last_error is not None


async def test_upload_gone_asks_receipt_then_starts_anew(
    tmp_path: Path, pki: Pki, signer: ReceiptSigner, segments: Path
) -> None:
    queue = MemoryQueue()
    job = queue.add(write_segment(segments / "0.seg", CHUNK * 2))
    async with TuspyPeer(tmp_path / "files", pki) as peer:
        stale = f"{peer.endpoint}/0123456789abcdef0123456789abcdef"
        job = await queue.record_upload_started(job, stale)
        rig = make_rig(settings(peer.endpoint, pki, signer.trusted, chunk_size=CHUNK), queue)
        async with rig:
            rig.docked.set(True)
            await rig.until(lambda: queue.jobs[job.segment_id].phase == "uploaded", "sent")
    seen = [(m, s) for m, _, s in peer.faults.seen if m != "OPTIONS"]
    # HEAD 404 → receipt asked (none) → a new upload
    assert seen[:4] == [("GET", 404), ("HEAD", 404), ("GET", 404), ("POST", 201)]
    assert queue.started[-1][1] != stale


async def test_wrong_ca_uploads_nothing_and_says_why(
    tmp_path: Path, pki: Pki, signer: ReceiptSigner, segments: Path
) -> None:
    other = Pki(tmp_path / "other-pki")
    queue = MemoryQueue()
    queue.add(write_segment(segments / "0.seg", CHUNK))
    async with TuspyPeer(tmp_path / "files", pki) as peer:
        upload = settings(peer.endpoint, pki, signer.trusted, ca_file=other.ca_file)
        rig = make_rig(upload, queue)
        async with rig:
            rig.docked.set(True)
            await rig.until(lambda: rig.component.progress.value.last_error is not None, "error")
            progress = rig.component.progress.value
    assert peer.faults.seen == []  # not one request reached the server
    assert progress.state == "backoff"
    assert "server certificate not trusted by upload.ca_file" in (progress.last_error or "")
    assert queue.started == []


async def test_missing_client_certificate_uploads_nothing_and_says_why(
    tmp_path: Path, pki: Pki, signer: ReceiptSigner, segments: Path
) -> None:
    queue = MemoryQueue()
    queue.add(write_segment(segments / "0.seg", CHUNK))
    async with TuspyPeer(tmp_path / "files", pki) as peer:
        rig = make_rig(settings(peer.endpoint, pki, signer.trusted, client_cert=False), queue)
        async with rig:
            rig.docked.set(True)
            await rig.until(lambda: rig.component.progress.value.last_error is not None, "error")
            progress = rig.component.progress.value
    assert peer.faults.seen == []
    assert "no client certificate is configured (upload.client_cert)" in (
        progress.last_error or ""
    ), progress.last_error
    assert queue.started == []


@pytest.mark.parametrize("flaw", ["bad signature", "other digest", "other device", "untrusted"])
async def test_bad_receipt_deletes_nothing_and_is_audited(
    tmp_path: Path, pki: Pki, signer: ReceiptSigner, segments: Path, flaw: str
) -> None:
    queue = MemoryQueue()
    job = queue.add(write_segment(segments / "0.seg", CHUNK))
    if flaw == "bad signature":
        wire = signer.sign(job).replace(b'"complete"', b'"torn"')
    elif flaw == "other digest":
        wire = signer.sign(job, digest="0" * 64)
    elif flaw == "other device":
        wire = signer.sign(job, device="cam-9999")
    else:
        wire = ReceiptSigner().sign(job)
    async with TuspyPeer(tmp_path / "files", pki) as peer:
        peer.receipts[job.digest] = wire
        rig = make_rig(settings(peer.endpoint, pki, signer.trusted), queue)
        async with rig:
            rig.docked.set(True)
            await rig.until(lambda: bool(queue.failures), "refused")
    assert job.path.exists() and queue.deleted == {}
    kinds = [kind for kind, _ in queue.audits]
    assert "receipt_rejected" in kinds and "segment_deleted" not in kinds
    reason = queue.jobs[job.segment_id].last_error or ""
    assert "receipt rejected" in reason
    assert rig.component.progress.value.last_error == reason


async def test_undock_mid_patch_cancels_and_next_dock_resumes(
    tmp_path: Path, pki: Pki, signer: ReceiptSigner, segments: Path
) -> None:
    queue = MemoryQueue()
    size = CHUNK * 4
    job = queue.add(write_segment(segments / "0.seg", size))
    async with TuspyPeer(tmp_path / "files", pki) as peer, CuttingProxy(lambda: peer.port) as proxy:
        endpoint = f"https://127.0.0.1:{proxy.port}/files"
        rig = make_rig(settings(endpoint, pki, signer.trusted, chunk_size=CHUNK), queue)
        async with rig:
            # Held before the upload starts (set after the first acknowledgement, the hold came
            # too late whenever the uploader sent every chunk first): the handshake, the
            # OPTIONS, GET and POST and the first PATCH take well under half a chunk more than
            # the chunk itself, so the first PATCH goes through whole and the second is held.
            proxy.hold_after(CHUNK + CHUNK // 2)
            rig.docked.set(True)
            await proxy.held.wait()
            assert len(queue.progress) == 1  # the first chunk was acknowledged, no more
            session = rig.component.session
            assert session is not None and not session.done()
            rig.docked.set(False)
            assert session.cancelling()  # cancelled inside Signal.set, no time passes
            await asyncio.wait({session})  # its cancellation finishes: the request dropped
            assert rig.component.progress.value.state == "idle"
            proxy.release()
            rig.docked.set(True)
            await rig.until(lambda: queue.jobs[job.segment_id].phase == "uploaded", "sent")
    assert len(queue.started) == 1  # resumed, not restarted
    assert hashlib.sha256(_stored(peer)).hexdigest() == job.digest
    assert rig.component.sent_bytes <= size + CHUNK


async def test_recording_pauses_upload_and_it_resumes_after(
    tmp_path: Path, pki: Pki, signer: ReceiptSigner, segments: Path
) -> None:
    queue = MemoryQueue()
    job = queue.add(write_segment(segments / "0.seg", CHUNK * 3))
    async with TuspyPeer(tmp_path / "files", pki) as peer:
        rig = make_rig(settings(peer.endpoint, pki, signer.trusted, chunk_size=CHUNK), queue)
        async with rig:
            rig.recording.set(True)
            rig.docked.set(True)
            assert rig.component.progress.value.state == "paused"
            assert rig.component.session is None
            rig.recording.set(False)
            await rig.until(lambda: len(queue.progress) >= 1, "started")
            rig.recording.set(True)
            assert rig.component.progress.value.reason == "recording"
            rig.recording.set(False)
            await rig.until(lambda: queue.jobs[job.segment_id].phase == "uploaded", "sent")
    assert hashlib.sha256(_stored(peer)).hexdigest() == job.digest


async def test_rate_limit_paces_on_the_injected_clock(
    tmp_path: Path, pki: Pki, signer: ReceiptSigner, segments: Path
) -> None:
    queue = MemoryQueue()
    size = 2 * 2**20
    job = queue.add(write_segment(segments / "0.seg", size))
    rate = 512 * 1024
    async with TuspyPeer(tmp_path / "files", pki) as peer:
        upload = settings(peer.endpoint, pki, signer.trusted, chunk_size=CHUNK, max_rate=rate)
        rig = make_rig(upload, queue)
        async with rig:
            rig.docked.set(True)
            start = rig.clock.now
            await rig.until(lambda: queue.jobs[job.segment_id].phase == "uploaded", "sent")
            elapsed = rig.clock.now - start
    # the burst (256 KiB) goes at once, the rest at `rate`: 3.5 s of virtual time at least
    assert elapsed >= (size - 256 * 1024) / rate


@pytest.mark.parametrize(("skew", "unsynced"), [(0.0, False), (-30.0, True)])
async def test_clock_offset_audited_and_raised(
    tmp_path: Path, pki: Pki, signer: ReceiptSigner, skew: float, unsynced: bool
) -> None:
    import time

    queue = MemoryQueue()
    async with TuspyPeer(tmp_path / "files", pki) as peer:
        upload = settings(peer.endpoint, pki, signer.trusted)
        rig = make_rig(upload, queue, wall=lambda: time.time() + skew)
        async with rig:
            rig.docked.set(True)
            await rig.until(lambda: any(k == "clock_offset" for k, _ in queue.audits), "audit")
    fields = next(f for k, f in queue.audits if k == "clock_offset")
    assert abs(fields["offset_seconds"] + skew) <= 1.5  # Date has a 1 s resolution
    assert rig.component.clock_unsynced.value is unsynced


async def test_http_client_refuses_plain_bodies_larger_than_the_bound() -> None:
    """A server that answers a receipt request with a huge body is cut off at the bound
    (MockTransport: a hostile shape our real peers do not produce)."""
    from bodycamd.errors import UploadRejected

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"x" * (64 * 1024))

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        tus = TusClient(http, "https://ingest.invalid/files")
        with pytest.raises(UploadRejected, match="at most 16384"):
            await tus.receipt("ab" * 32)
