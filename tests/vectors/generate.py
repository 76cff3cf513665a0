"""Make the version-2 test vectors of docs/segment-format.md §9 in tests/vectors/.

HPKE encapsulation is randomised, so running this again makes different (equally valid)
files: the committed files and the values in the spec belong together. Run from the checkout:
    .venv/bin/python -m tests.vectors.generate
(v1-x25519.seg was made by the version-1 writer, in this file's git history; it stays to
prove version-1 files remain readable.) `... generate open-failed` makes only the vectors of
the open-failed flag, added later, leaving the others as they are.
"""

from __future__ import annotations

import hashlib
import json
import sys
import uuid
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519

from bodycamd.evidence import format as fmt
from bodycamd.evidence.keys import EvidencePrivateKey, evidence_private_key_from_raw
from bodycamd.evidence.reader import read_header, scan_segment, unwrap_data_key
from bodycamd.evidence.recovery import seal_interrupted_roll, seal_torn
from bodycamd.evidence.writer import SealedSegment, SegmentInfo, SegmentWriter

HERE = Path(__file__).resolve().parent
EVIDENCE_PRIVATE = hashlib.sha256(b"bodycamd vector evidence key").digest()
DEVICE_SEED = hashlib.sha256(b"bodycamd vector device key").digest()
# hybrid private key as our key file stores it: ML-KEM-768 seed d || z (64), X25519 (32)
HYBRID_PRIVATE = (
    hashlib.sha256(b"bodycamd vector ml-kem d").digest()
    + hashlib.sha256(b"bodycamd vector ml-kem z").digest()
    + hashlib.sha256(b"bodycamd vector hybrid x25519").digest()
)
PLAINTEXT = b"bodycamd test vector\n" * 4000
BOOT_ID = uuid.UUID("00112233-4455-6677-8899-aabbccddeeff").bytes
WALL, MONO = 1_700_000_000_000_000_000, 1_000_000_000
SECOND = 1_000_000_000
METADATA = {
    "officer": "123456",
    "reason": "button",
    "recording_id": "00000000000000000000000000000002",
    "segment_index": 0,
    "stream": {"video": {"codec": "h264", "width": 1920, "height": 1080, "framerate": "30"}},
}


def keys() -> tuple[EvidencePrivateKey, ed25519.Ed25519PrivateKey]:
    return evidence_private_key_from_raw("x25519", EVIDENCE_PRIVATE), (
        ed25519.Ed25519PrivateKey.from_private_bytes(DEVICE_SEED)
    )


def hybrid_key() -> EvidencePrivateKey:
    return evidence_private_key_from_raw("mlkem768-x25519", HYBRID_PRIVATE)


def info(recording: int, index: int, prev: bytes = b"\0" * 32, **extra: object) -> SegmentInfo:
    return SegmentInfo(
        recording_id=uuid.UUID(int=recording),
        segment_index=index,
        prev_digest=prev,
        device_name="vector",
        wall_start_ns=WALL + index * 10 * SECOND,
        mono_start_ns=MONO + index * 10 * SECOND,
        clock_synced=True,
        boot_id=BOOT_ID,
        **extra,  # type: ignore[arg-type]
    )


def write(
    name: str,
    segment: SegmentInfo,
    evidence: EvidencePrivateKey,
    pieces: list[bytes],
    *,
    end_of_recording: bool = True,
) -> SealedSegment:
    """Each piece, then a checkpoint one second later, except after the last piece."""
    _, device = keys()
    target = HERE / f"{name}.seg"
    target.unlink(missing_ok=True)
    writer = SegmentWriter(HERE / f"{name}.part", segment, evidence.public, device)
    assert segment.mono_start_ns is not None and segment.wall_start_ns is not None
    for number, piece in enumerate(pieces, 1):
        writer.write(piece)
        if number < len(pieces):
            writer.checkpoint(
                segment.mono_start_ns + number * SECOND, segment.wall_start_ns + number * SECOND
            )
    end = len(pieces) * SECOND
    return writer.seal(
        end_of_recording=end_of_recording,
        end_ns=(segment.wall_start_ns + end, segment.mono_start_ns + end),
    )


def report(name: str, path: Path, evidence: EvidencePrivateKey) -> None:
    with path.open("rb") as stream:
        header = read_header(stream, None)
    data_key = unwrap_data_key(header, evidence)
    raw = path.read_bytes()
    print(f"{name}: {len(raw)} bytes, sha256 {hashlib.sha256(raw).hexdigest()}")
    print(f"    data key {data_key.hex()}")
    print(f"    header   {header.digest.hex()}")
    print(f"    payload  {fmt.payload_key(data_key, header).hex()}")


def main() -> None:
    evidence, device = keys()
    hybrid = hybrid_key()
    print("evidence pub ", evidence.public.raw.hex())
    print("device pub   ", device.public_key().public_bytes_raw().hex())
    print("hybrid pub   ", hashlib.sha256(hybrid.public.raw).hexdigest(), "(sha256)")
    made: dict[str, tuple[Path, EvidencePrivateKey]] = {}

    thirds = [PLAINTEXT[:30000], PLAINTEXT[30000:60000], PLAINTEXT[60000:70000], PLAINTEXT[70000:]]
    meta = json.dumps(METADATA, sort_keys=True, separators=(",", ":")).encode()
    full = write("v2-x25519", info(2, 0, metadata=meta), evidence, thirds)
    made["v2-x25519"] = (full.path, evidence)

    made["v2-hybrid"] = (write("v2-hybrid", info(3, 0), hybrid, [PLAINTEXT[:5000]]).path, hybrid)

    torn_part = HERE / "v2-torn.part"
    (HERE / "v2-torn.seg").unlink(missing_ok=True)
    writer = SegmentWriter(torn_part, info(4, 0), evidence.public, device)
    writer.write(PLAINTEXT[:20000])
    writer.checkpoint(MONO + SECOND, WALL + SECOND)
    writer.write(PLAINTEXT[20000:])  # a whole record after the checkpoint, then the power cut
    writer.abandon()
    made["v2-torn"] = (seal_torn(torn_part, device).path, evidence)

    prev = b"\0" * 32
    for index in range(3):
        piece = PLAINTEXT[index * 28000 : (index + 1) * 28000]
        sealed = write(
            f"v2-chain-{index}",
            info(5, index, prev),
            evidence,
            [piece[:14000], piece[14000:]],
            end_of_recording=index == 2,
        )
        made[f"v2-chain-{index}"] = (sealed.path, evidence)
        prev = sealed.digest
    for name, (path, key) in made.items():
        report(name, path, key)


def open_failed() -> None:
    """Recording …0006: segment 0 (the first 10000 B of P, sealed, not end of recording),
    then the placeholder recovery writes for segment 1 when the journal recorded that it
    could not be opened: flags torn | placeholder | open-failed."""
    evidence, device = keys()
    first = write("v2-ended-0", info(6, 0), evidence, [PLAINTEXT[:10000]], end_of_recording=False)
    previous = scan_segment(first.path, device.public_key())
    part = HERE / "v2-ended-1.part"
    (HERE / "v2-ended-1.seg").unlink(missing_ok=True)
    second = seal_interrupted_roll(previous, part, device, evidence.public, open_failed=True)
    report("v2-ended-0", first.path, evidence)
    report("v2-ended-1", second.path, evidence)


if __name__ == "__main__":
    open_failed() if sys.argv[1:] == ["open-failed"] else main()
