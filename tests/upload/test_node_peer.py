"""Interop with @tus/server + @tus/file-store (npm, pinned in tests/peers/package-lock.json),
a tus server nobody here wrote, over https with required client certificates (node's https
with trustme certificates). No receipts there: nothing may leave the flash."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from tests.conftest import skip_unless_ci

from .memory_queue import MemoryQueue
from .peers import CuttingProxy, NodePeer, Pki, write_segment
from .real_storage import real_storage
from .rig import ReceiptSigner, make_rig, settings

CHUNK = 256 * 1024
pytestmark = skip_unless_ci(
    NodePeer.available() is not None,
    f"@tus/server peer unavailable: {NodePeer.available()} (.ci/run runs npm ci)",
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
    store = real_storage(tmp_path / "state")
    rows = store.seal(2, 700_000)
    files = tmp_path / "files"
    files.mkdir()
    with NodePeer(files, pki) as peer:
        upload = settings(peer.endpoint, pki, signer.trusted, chunk_size=CHUNK)
        rig = make_rig(upload, store.storage)
        async with rig:
            rig.docked.set(True)
            await rig.until(lambda: all(r.state == "uploaded" for r in store.rows()), "sent")
            await rig.until(lambda: rig.component.progress.value.state == "idle", "idle")
            progress = rig.component.progress.value
    assert sorted(_stored(files).values()) == sorted(r.digest for r in rows)
    assert all(store.path(r).exists() for r in rows) and store.audit("segment_deleted") == []
    assert progress.no_receipt == 2
    assert progress.reason == "2 segment(s) uploaded without receipt stay on flash"
    assert all("uploaded, no receipt" in (r.last_error or "") for r in store.rows())
    store.close()


async def _interrupted_mid_patch(
    tmp_path: Path, pki: Pki, signer: ReceiptSigner, *, kill_server: bool
) -> None:
    """Hold the second PATCH in flight at the proxy, then cut it (and, with `kill_server`,
    SIGKILL the server and start it again on the same port and store); the camera must
    resume the same upload at the server's offset and send at most one chunk twice."""
    store = real_storage(tmp_path / "state")
    (row,) = store.seal(1, CHUNK * 4)
    files = tmp_path / "files"
    files.mkdir()
    with NodePeer(files, pki) as peer:
        async with CuttingProxy(lambda: peer.port) as proxy:
            endpoint = f"https://127.0.0.1:{proxy.port}/files"
            upload = settings(endpoint, pki, signer.trusted, chunk_size=CHUNK)
            rig = make_rig(upload, store.storage)
            async with rig:
                rig.docked.set(True)
                await rig.until(lambda: store.row(row.id).upload_offset >= CHUNK, "a chunk")
                proxy.hold_after(CHUNK // 2)
                await proxy.held.wait()
                if kill_server:
                    await asyncio.to_thread(peer.kill)
                proxy.cut()
                proxy.release()
                if kill_server:
                    await asyncio.to_thread(peer.start)  # same port and directory
                await rig.until(lambda: store.row(row.id).state == "uploaded", "sent")
    assert list(_stored(files).values()) == [row.digest]
    assert len(store.audit("upload_started")) == 1  # the same upload, resumed
    assert rig.component.sent_bytes <= row.size + CHUNK
    assert any("PATCH upload" in str(f.get("reason")) for f in store.audit("upload_failed"))
    store.close()


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
