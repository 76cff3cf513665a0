"""Make tests/vectors/v1-x25519.seg, the test vector of docs/segment-format.md.

HPKE encapsulation is randomised, so running this again makes a different (equally valid)
file: the committed file and the values in the spec belong together. Run from the checkout:
    .venv/bin/python -m tests.vectors.generate
"""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519

from bodycamd.evidence import format as fmt
from bodycamd.evidence.keys import EvidencePrivateKey, evidence_private_key_from_raw
from bodycamd.evidence.reader import read_header, unwrap_data_key
from bodycamd.evidence.writer import SegmentInfo, SegmentWriter

HERE = Path(__file__).resolve().parent
EVIDENCE_PRIVATE = hashlib.sha256(b"bodycamd vector evidence key").digest()
DEVICE_SEED = hashlib.sha256(b"bodycamd vector device key").digest()
PLAINTEXT = b"bodycamd test vector\n" * 4000
INFO = SegmentInfo(
    recording_id=uuid.UUID(int=1),
    segment_index=0,
    device_name="vector",
    wall_start_ns=1_700_000_000_000_000_000,
    mono_start_ns=1_000_000_000,
    clock_synced=True,
)


def keys() -> tuple[EvidencePrivateKey, ed25519.Ed25519PrivateKey]:
    return evidence_private_key_from_raw("x25519", EVIDENCE_PRIVATE), (
        ed25519.Ed25519PrivateKey.from_private_bytes(DEVICE_SEED)
    )


def main() -> None:
    evidence, device = keys()
    target = HERE / "v1-x25519.seg"
    target.unlink(missing_ok=True)
    writer = SegmentWriter(HERE / "v1-x25519.part", INFO, evidence.public, device)
    writer.write(PLAINTEXT[:30000])
    writer.checkpoint(mono_ns=2_000_000_000)
    writer.write(PLAINTEXT[30000:])
    sealed = writer.seal(end_of_recording=True)
    with sealed.path.open("rb") as stream:
        header = read_header(stream, device.public_key())
    data_key = unwrap_data_key(header, evidence)
    print("file sha256   ", sealed.digest.hex(), sealed.size)
    print("evidence pub  ", evidence.public.raw.hex())
    print("device pub    ", device.public_key().public_bytes_raw().hex())
    print("data key      ", data_key.hex())
    print("header sha256 ", header.digest.hex())
    print("payload key   ", fmt.payload_key(data_key, header).hex())
    print("plaintext sha ", hashlib.sha256(PLAINTEXT).hexdigest(), len(PLAINTEXT))


if __name__ == "__main__":
    main()
