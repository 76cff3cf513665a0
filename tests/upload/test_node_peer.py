"""Interop with @tus/server + @tus/file-store (npm, pinned in tests/peers/package-lock.json),
a tus server nobody here wrote, over https with required client certificates (node's https
with trustme certificates). No receipts there: nothing may leave the flash."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest

from .memory_queue import MemoryQueue
from .peers import CuttingProxy, NodePeer, Pki, write_segment
from .rig import ReceiptSigner, make_rig, settings

CHUNK = 256 * 1024
pytestmark = pytest.mark.skipif(
    NodePeer.available() is not None and not __import__("os").environ.get("CI"),
    reason=f"@tus/server peer unavailable: {NodePeer.available()}",
)


def _stored(files: Path) -> dict[str, str]:
    """digest of every complete upload the node server holds, by file name."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in files.iterdir()
        if p.suffix != ".json"
    }


async def test_uploads_complete_nothing_deleted_status_says_why(
    tmp_path: Path, pki: Pki, signer: ReceiptSigner
) -> None:
    queue = MemoryQueue()
    jobs = [
        queue.add(
            write_segment(tmp_path / "ready" / f"{i}.seg", CHUNK * 3 + i, seed=i + 2), index=i
        )
        for i in range(2)
    ]
    files = tmp_path / "files"
    files.mkdir()
    with NodePeer(files, pki) as peer:
        rig = make_rig(settings(peer.endpoint, pki, signer.trusted, chunk_size=CHUNK), queue)
        async with rig:
            rig.docked.set(True)
            progress = await rig.until_all_sent(queue)
    assert sorted(_stored(files).values()) == sorted(j.digest for j in jobs)
    assert all(j.path.exists() for j in jobs) and queue.deleted == {}
    assert progress.no_receipt == 2
    assert progress.reason == "2 segment(s) uploaded without receipt stay on flash"
    assert all("uploaded, no receipt" in (j.last_error or "") for j in queue.jobs.values())


async def _interrupted_mid_patch(
    tmp_path: Path, pki: Pki, signer: ReceiptSigner, *, kill_server: bool
) -> None:
    """Hold the second PATCH in flight at the proxy, then cut it (and, with `kill_server`,
    SIGKILL the server and start it again on the same port and store); the camera must
    resume the same upload at the server's offset and send at most one chunk twice."""
    queue = MemoryQueue()
    size = CHUNK * 4
    job = queue.add(write_segment(tmp_path / "ready" / "0.seg", size, seed=4))
    files = tmp_path / "files"
    files.mkdir()
    with NodePeer(files, pki) as peer:
        async with CuttingProxy(lambda: peer.port) as proxy:
            endpoint = f"https://127.0.0.1:{proxy.port}/files"
            rig = make_rig(settings(endpoint, pki, signer.trusted, chunk_size=CHUNK), queue)
            async with rig:
                rig.docked.set(True)
                await rig.until(lambda: len(queue.progress) == 1, "first chunk acknowledged")
                proxy.hold_after(CHUNK // 2)
                await proxy.held.wait()
                if kill_server:
                    await asyncio.to_thread(peer.kill)
                proxy.cut()
                proxy.release()
                if kill_server:
                    await asyncio.to_thread(peer.start)  # same port and directory
                await rig.until(lambda: queue.jobs[job.segment_id].phase == "uploaded", "sent")
    assert list(_stored(files).values()) == [job.digest]
    assert len(queue.started) == 1  # the same upload, resumed
    assert rig.component.sent_bytes <= size + CHUNK
    assert any("PATCH upload" in reason for _, reason in queue.failures)


async def test_cut_mid_patch_resumes(tmp_path: Path, pki: Pki, signer: ReceiptSigner) -> None:
    await _interrupted_mid_patch(tmp_path, pki, signer, kill_server=False)


async def test_server_killed_mid_patch_and_restarted(
    tmp_path: Path, pki: Pki, signer: ReceiptSigner
) -> None:
    await _interrupted_mid_patch(tmp_path, pki, signer, kill_server=True)


async def test_payload_too_large_refused_with_reason(
    tmp_path: Path, pki: Pki, signer: ReceiptSigner
) -> None:
    queue = MemoryQueue()
    job = queue.add(write_segment(tmp_path / "ready" / "0.seg", CHUNK * 2, seed=6))
    files = tmp_path / "files"
    files.mkdir()
    with NodePeer(files, pki, max_size=CHUNK) as peer:
        rig = make_rig(settings(peer.endpoint, pki, signer.trusted, chunk_size=CHUNK), queue)
        async with rig:
            rig.docked.set(True)
            await rig.until(lambda: bool(queue.failures), "refused")
    reason = queue.jobs[job.segment_id].last_error or ""
    assert "create upload: server answered 413" in reason
    assert job.path.exists() and queue.started == []
