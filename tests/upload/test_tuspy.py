"""The uploader against tuspyserver (PyPI), over mutual TLS, on the real storage façade:
segments recorded through the spool, the journal and its audit trail as the daemon has them."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from .peers import Pki, TuspyPeer
from .real_storage import RealStorage, real_storage
from .rig import ReceiptSigner, job_of, make_rig, settings

CHUNK = 256 * 1024


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RealStorage]:
    opened = real_storage(tmp_path / "state")
    yield opened
    opened.close()


def _sha256(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


async def test_uploads_everything_and_keeps_it_without_receipt(
    tmp_path: Path, pki: Pki, signer: ReceiptSigner, store: RealStorage
) -> None:
    rows = store.seal(3, 600_000)
    async with TuspyPeer(tmp_path / "files", pki) as peer:
        rig = make_rig(settings(peer.endpoint, pki, signer.trusted), store.storage)
        async with rig:
            rig.docked.set(True)
            await rig.until(lambda: all(r.state == "uploaded" for r in store.rows()), "all sent")
            await rig.until(lambda: rig.component.progress.value.state == "idle", "idle")
        progress = rig.component.progress.value
    assert [p["index"] for p in peer.completed] == ["0", "1", "2"]  # oldest first
    for row, done in zip(rows, peer.completed, strict=True):
        assert done["digest"] == row.digest and done["device"] == "test-cam"
        assert done["torn"] == "0" and done["recording"] == row.recording_id
        assert _sha256(done["path"]) == row.digest
        assert store.path(row).exists()  # no receipt: stays on flash
    assert store.audit("segment_deleted") == []
    assert progress.no_receipt == 3
    assert "uploaded without receipt stay on flash" in progress.reason
    assert all("no receipt" in (r.last_error or "") for r in store.rows())
    # each upload's URL was journalled (and audited) before its first PATCH
    started = store.audit("upload_started")
    assert [s["digest"] for s in started] == [r.digest for r in rows]


async def test_receipt_first_means_no_second_upload(
    tmp_path: Path, pki: Pki, signer: ReceiptSigner, store: RealStorage
) -> None:
    (row,) = store.seal(1, 500_000)
    async with TuspyPeer(tmp_path / "files", pki) as peer:
        peer.receipts[row.digest] = signer.sign(job_of(store, row))
        rig = make_rig(settings(peer.endpoint, pki, signer.trusted), store.storage)
        async with rig:
            rig.docked.set(True)
            await rig.until(lambda: rig.component.progress.value.receipts == 1, "confirmed")
    assert store.row(row.id).state == "deleted"
    assert not any(method == "POST" for method, _, _ in peer.faults.seen)
    assert not store.path(row).exists()
    wire = peer.receipts[row.digest]
    assert store.row(row.id).receipt == wire.decode()
    deleted = store.audit("segment_deleted")
    assert [d["receipt_sha256"] for d in deleted] == [hashlib.sha256(wire).hexdigest()]
    assert rig.component.progress.value.receipts == 1


async def test_receipt_after_upload_deletes(
    tmp_path: Path, pki: Pki, signer: ReceiptSigner, store: RealStorage
) -> None:
    (row,) = store.seal(1, 700_000)
    async with TuspyPeer(tmp_path / "files", pki) as peer:
        rig = make_rig(
            settings(peer.endpoint, pki, signer.trusted, chunk_size=CHUNK), store.storage
        )
        async with rig:
            rig.docked.set(True)
            await rig.until(lambda: store.row(row.id).state == "uploaded", "sent")
            peer.receipts[row.digest] = signer.sign(job_of(store, row))  # verified meanwhile
            await rig.until(lambda: store.row(row.id).state == "deleted", "deleted")
    posts = [s for s in peer.faults.seen if s[0] == "POST"]
    patches = [s for s in peer.faults.seen if s[0] == "PATCH"]
    assert len(posts) == 1 and len(patches) == -(-row.size // CHUNK)
    assert not store.path(row).exists()


def _metadata(value: str) -> dict[str, str]:
    pairs = (item.split(" ") for item in value.split(","))
    return {k: base64.b64decode(v).decode() for k, v in pairs}


def test_metadata_encoding_round_trips() -> None:
    from bodycamd.upload.tus import encode_metadata

    meta = {"device": "cam 1", "digest": "ab" * 32, "torn": "1"}
    assert _metadata(encode_metadata(meta)) == meta
