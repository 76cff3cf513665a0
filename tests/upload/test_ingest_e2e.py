"""End to end against the project's ingest (bodycamd-ingest, aiohttp, mutual TLS): the
device's own `keys csr` key and request enrolled through the ingest's CLI, segments from the
real evidence writer, uploaded by the UploadComponent; the receipts the ingest signs verify
with the key from its `init`, and only then are the segments deleted."""

from __future__ import annotations

import base64
import hashlib
import uuid
from pathlib import Path

from bodycamd.ingest.app import running_ingest
from bodycamd.receipt import parse_receipt, receipt_key_id
from bodycamd.upload.csr import load_or_create_tls_key, make_csr
from bodycamd.upload.settings import UploadSettings

from ..ingest.helpers import Camera, Rig, make_rig, run_cli
from .memory_queue import MemoryQueue
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


async def test_record_dock_upload_receipt_delete(tmp_path: Path) -> None:
    ingest, camera = _enrol(tmp_path)
    queue = MemoryQueue(DEVICE)
    recording = uuid.uuid4()
    sealed = [camera.segment(recording, size=300_000, end=i == 2) for i in range(3)]
    jobs = [queue.add(s.path, recording_id=recording.hex, index=s.segment_index) for s in sealed]
    public = ingest.receipt_public()
    async with running_ingest(ingest.config, port=0) as server:
        upload = UploadSettings(
            endpoint=f"{server.url}/files/",
            receipts_url=f"{server.url}/receipts",
            ca_file=ingest.ca,
            client_cert=camera.certificate,
            client_key=camera.tls_key,
            receipt_keys={receipt_key_id(public): public},
            chunk_size=128 * 1024,
            max_rate=0,
            retry_min=1.0,
            retry_max=300.0,
        )
        rig = make_upload_rig(upload, queue)
        async with rig:
            rig.docked.set(True)
            await rig.until(lambda: len(queue.deleted) == 3, "every segment confirmed")
    assert not any(j.path.exists() for j in jobs)
    for job in jobs:
        receipt = parse_receipt(queue.deleted[job.segment_id], {receipt_key_id(public): public})
        assert (receipt.digest, receipt.size, receipt.device_id) == (job.digest, job.size, DEVICE)
        assert receipt.verdict == "complete" and receipt.recording_id in (
            recording.hex,
            str(recording),
        )
    deletions = [f for k, f in queue.audits if k == "segment_deleted"]
    assert [d["receipt_sha256"] for d in deletions] == [
        hashlib.sha256(queue.deleted[j.segment_id]).hexdigest() for j in jobs
    ]
    progress = rig.component.progress.value
    assert progress.receipts == 3 and progress.segments_left == 0
    assert rig.component.clock_unsynced.value is False
