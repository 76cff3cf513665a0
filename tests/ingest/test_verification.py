"""What the ingest checks when the last byte lands: only a segment the enrolled device sealed
gets a receipt; truncated, bit-flipped, foreign-signed or mislabelled ones are kept apart
with the reason, and the camera is told (422)."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import ed25519

from bodycamd.evidence.recovery import seal_torn
from bodycamd.evidence.writer import SealedSegment, SegmentInfo, SegmentWriter
from bodycamd.ingest.app import running_ingest
from bodycamd.receipt import parse_receipt, receipt_key_id

from .helpers import Camera, Rig, audit_events, encode_metadata, run_cli


async def upload(
    client: httpx.AsyncClient, camera: Camera, data: bytes, metadata: dict[str, str]
) -> httpx.Response:
    """Creation, then the whole body in one PATCH; returns the final PATCH's answer."""
    created = await client.post(
        "/files/",
        headers={"Upload-Length": str(len(data)), "Upload-Metadata": encode_metadata(metadata)},
    )
    assert created.status_code == 201, created.text
    return await client.patch(
        created.headers["Location"],
        content=data,
        headers={"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"},
    )


def quarantine_reasons(rig: Rig) -> list[str]:
    root = rig.config.path(rig.config.store_path) / "quarantine"
    return [json.loads(p.read_text())["reason"] for p in sorted(root.glob("*/*/reason.json"))]


async def _refused(rig: Rig, camera: Camera, data: bytes, metadata: dict[str, str]) -> str:
    async with running_ingest(rig.config, port=0) as server:
        async with rig.client(camera, server.url) as client:
            answer = await upload(client, camera, data, metadata)
            digest = hashlib.sha256(data).hexdigest()
            assert (await client.get(f"/receipts/{digest}")).status_code == 404
            assert (await client.get(f"/receipts/{metadata['digest']}")).status_code == 404
    assert answer.status_code == 422
    [reason] = quarantine_reasons(rig)
    assert reason in answer.text
    rejected = [e for e in await audit_events(rig) if e["event"] == "upload.rejected"]
    assert [e["fields"]["reason"] for e in rejected] == [reason]  # type: ignore[index]
    segments = rig.config.path(rig.config.store_path) / "segments"
    assert not list(segments.glob("**/*.seg"))
    return reason


async def test_truncated_segment_is_quarantined(rig: Rig) -> None:
    camera = rig.enroll("cam-1")
    sealed = camera.segment(size=300_000)
    cut = sealed.path.read_bytes()[: sealed.size - 5000]
    metadata = camera.metadata(sealed, digest=hashlib.sha256(cut).hexdigest())
    reason = await _refused(rig, camera, cut, metadata)
    assert reason.startswith("segment is not sealed (truncated?)")


async def test_truncated_segment_under_the_original_digest_is_quarantined(rig: Rig) -> None:
    camera = rig.enroll("cam-1")
    sealed = camera.segment(size=300_000)
    cut = sealed.path.read_bytes()[: sealed.size - 5000]
    reason = await _refused(rig, camera, cut, camera.metadata(sealed))
    assert reason.startswith("digest mismatch")


async def test_bit_flipped_segment_is_quarantined(rig: Rig) -> None:
    camera = rig.enroll("cam-1")
    sealed = camera.segment(size=300_000)
    data = bytearray(sealed.path.read_bytes())
    data[4096 + 8 + 1000] ^= 0x10  # inside the first DATA record: only hashes can tell
    metadata = camera.metadata(sealed, digest=hashlib.sha256(data).hexdigest())
    reason = await _refused(rig, camera, bytes(data), metadata)
    assert reason.startswith("segment fails verification")
    assert "does not match the file" in reason


async def test_segment_signed_by_another_key_is_quarantined(rig: Rig) -> None:
    camera = rig.enroll("cam-1")
    sealed = camera.segment(signer=ed25519.Ed25519PrivateKey.generate())
    reason = await _refused(rig, camera, sealed.path.read_bytes(), camera.metadata(sealed))
    assert "another device" in reason


async def test_another_devices_segment_under_its_own_name_is_quarantined(rig: Rig) -> None:
    owner, thief = rig.enroll("cam-1"), rig.enroll("cam-2")
    sealed = owner.segment()
    metadata = thief.metadata(sealed)
    reason = await _refused(rig, thief, sealed.path.read_bytes(), metadata)
    assert "another device" in reason


async def test_header_and_metadata_disagreeing_is_quarantined(rig: Rig) -> None:
    camera = rig.enroll("cam-1")
    sealed = camera.segment()
    metadata = camera.metadata(sealed, index="7")
    reason = await _refused(rig, camera, sealed.path.read_bytes(), metadata)
    assert reason == "metadata index is 7; the signed header says 0"


def _receipt(rig: Rig, wire: bytes) -> Any:
    public = rig.receipt_public()
    return parse_receipt(wire, {receipt_key_id(public): public})


async def test_a_recording_gets_linked_receipts_and_the_same_receipt_twice(rig: Rig) -> None:
    camera = rig.enroll("cam-1")
    recording = uuid.uuid4()
    first = camera.segment(recording, end=False)
    second = camera.segment(recording, end=True)
    async with running_ingest(rig.config, port=0) as server:
        async with rig.client(camera, server.url) as client:
            for sealed in (second, first):  # out of order: the link is pending, then found
                answer = await upload(
                    client, camera, sealed.path.read_bytes(), camera.metadata(sealed)
                )
                assert answer.status_code == 204, answer.text
            wire = (await client.get(f"/receipts/{second.digest.hex()}")).content
            again = await upload(client, camera, second.path.read_bytes(), camera.metadata(second))
            assert again.status_code == 204
            assert (await client.get(f"/receipts/{second.digest.hex()}")).content == wire
    receipt = _receipt(rig, wire)
    assert (receipt.index, receipt.verdict, receipt.device_id) == (1, "complete", "cam-1")
    issued = [e["fields"] for e in await audit_events(rig) if e["event"] == "receipt.issued"]
    assert [f["link"] for f in issued] == ["pending", "first"]  # type: ignore[index]
    events = [e["event"] for e in await audit_events(rig)]
    assert events.count("upload.created") == events.count("upload.completed") == 3
    assert "upload.duplicate" in events
    uploads = rig.config.path(rig.config.store_path) / "uploads" / "cam-1"
    assert not [p for p in uploads.iterdir() if not p.name.startswith(".")]


def _torn_segment(camera: Camera, directory: Path) -> SealedSegment:
    """A segment cut by a power loss and sealed torn by the camera's recovery."""
    writer = SegmentWriter(
        directory / "000000.part",
        SegmentInfo(uuid.uuid4(), 0, device_name=camera.device_id),
        camera.evidence.public,
        camera.signing_key,
    )
    writer.write(b"x" * 100_000)
    writer.checkpoint()
    writer.write(b"y" * 30_000)
    writer.abandon()
    recovered = seal_torn(directory / "000000.part", camera.signing_key)
    return SealedSegment.from_verdict(recovered.path, recovered.verdict)


async def test_segment_sealed_torn_by_the_camera_gets_a_torn_receipt(
    rig: Rig, tmp_path: Path
) -> None:
    camera = rig.enroll("cam-1")
    sealed = _torn_segment(camera, tmp_path)
    async with running_ingest(rig.config, port=0) as server:
        async with rig.client(camera, server.url) as client:
            answer = await upload(
                client, camera, sealed.path.read_bytes(), camera.metadata(sealed, torn="true")
            )
            assert answer.status_code == 204, answer.text
            wire = (await client.get(f"/receipts/{sealed.digest.hex()}")).content
    assert _receipt(rig, wire).verdict == "torn"
    assert run_cli(["verify", "-c", str(rig.directory)]) == 0
