"""End to end against the project's ingest (bodycamd-ingest, aiohttp, mutual TLS): the
device's own `keys csr` key and request enrolled through the ingest's CLI, segments from the
real evidence writer, uploaded by the UploadComponent; the receipts the ingest signs verify
with the key from its `init`, and only then are the segments deleted."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from bodycamd.ingest.app import running_ingest
from bodycamd.receipt import parse_receipt, receipt_key_id
from bodycamd.upload.csr import load_or_create_tls_key, make_csr
from bodycamd.upload.settings import UploadSettings
from tests.evidence.helpers import Keys

from ..ingest.helpers import Camera, Rig, make_rig, run_cli
from .real_storage import real_storage
from .rig import make_rig as make_upload_rig

DEVICE = "test-cam"


def _enrol(tmp_path: Path) -> tuple[Rig, Camera]:
    """The ingest set up, and this camera enrolled with a key made by `keys csr`'s code."""
    from cryptography.hazmat.primitives.asymmetric import ed25519

    ingest = make_rig(tmp_path)
    folder = tmp_path / "camera"
    key_path = folder / "keys" / "tls-client.key"
    key, created = load_or_create_tls_key(key_path)
    assert created
    csr = folder / "cam.csr"
    csr.write_bytes(make_csr(key, DEVICE))
    signing = ed25519.Ed25519PrivateKey.generate()
    shown = base64.b64encode(signing.public_key().public_bytes_raw()).decode()
    cert = folder / "client.pem"
    args = ["enroll", "-c", str(ingest.directory), "--csr", str(csr)]
    assert run_cli([*args, "--device-key", f"device public key: {shown}", "--out", str(cert)]) == 0
    return ingest, Camera(DEVICE, signing, key_path, cert, folder, ingest.evidence)


def ingest_settings(ingest: Rig, camera: Camera, url: str, chunk: int) -> UploadSettings:
    public = ingest.receipt_public()
    return UploadSettings(
        endpoint=f"{url}/files/",
        receipts_url=f"{url}/receipts",
        ca_file=ingest.ca,
        client_cert=camera.certificate,
        client_key=camera.tls_key,
        receipt_keys={receipt_key_id(public): public},
        chunk_size=chunk,
        max_rate=0,
        retry_min=1.0,
        retry_max=300.0,
    )


async def test_record_dock_upload_receipt_delete(tmp_path: Path) -> None:
    ingest, camera = _enrol(tmp_path)
    store = real_storage(tmp_path / "state", Keys(ingest.evidence, camera.signing_key))
    rows = store.seal(3, 300_000)  # one recording of three segments, through storage
    public = ingest.receipt_public()
    async with running_ingest(ingest.config, port=0) as server:
        upload = ingest_settings(ingest, camera, server.url, 128 * 1024)
        rig = make_upload_rig(upload, store.storage)
        async with rig:
            rig.docked.set(True)
            await rig.until(lambda: rig.component.progress.value.receipts == 3, "receipts")
            await rig.until(lambda: rig.component.progress.value.state == "idle", "idle")
    assert [store.row(r.id).state for r in rows] == ["deleted"] * 3
    assert not any(store.path(r).exists() for r in rows)
    deleted = store.audit("segment_deleted")
    for row in rows:
        wire = (store.row(row.id).receipt or "").encode()
        receipt = parse_receipt(wire, {receipt_key_id(public): public})
        assert (receipt.digest, receipt.size, receipt.device_id) == (row.digest, row.size, DEVICE)
        assert receipt.verdict == "complete" and receipt.index == row.segment_index
        assert {"receipt_sha256": hashlib.sha256(wire).hexdigest()}.items() <= next(
            d for d in deleted if d["receipt_sha256"] == hashlib.sha256(wire).hexdigest()
        ).items()
    assert len(deleted) == 3
    assert store.audit("clock_offset") and rig.component.clock_unsynced.value is False
    progress = rig.component.progress.value
    assert progress.segments_left == 0 and progress.bytes_done == sum(r.size for r in rows)
    store.close()
