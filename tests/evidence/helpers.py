"""Building blocks for the evidence tests: keys, a writer in one call, and frame surgery."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519

from bodycamd.evidence import format as fmt
from bodycamd.evidence.keys import EvidencePrivateKey, KemName, generate_evidence_key
from bodycamd.evidence.writer import SealedSegment, SegmentInfo, SegmentWriter


@dataclass
class Keys:
    evidence: EvidencePrivateKey
    device: ed25519.Ed25519PrivateKey

    @property
    def device_public(self) -> ed25519.Ed25519PublicKey:
        return self.device.public_key()


def make_keys(kem: KemName = "x25519") -> Keys:
    return Keys(generate_evidence_key(kem), ed25519.Ed25519PrivateKey.generate())


def write_segment(
    directory: Path,
    keys: Keys,
    pieces: list[bytes],
    *,
    checkpoint_after: set[int] | None = None,
    name: str = "000000",
    info: SegmentInfo | None = None,
    end_of_recording: bool = True,
) -> SealedSegment:
    """Write `pieces` one write() each, checkpointing after the indices given, then seal."""
    writer = SegmentWriter(
        directory / f"{name}.part",
        info or SegmentInfo(uuid.uuid4(), 0, device_name="test-cam"),
        keys.evidence.public,
        keys.device,
    )
    for index, piece in enumerate(pieces):
        writer.write(piece)
        if checkpoint_after and index in checkpoint_after:
            writer.checkpoint()
    return writer.seal(end_of_recording=end_of_recording)


@dataclass
class Frame:
    offset: int
    kind: int
    raw: bytes  # frame header and body

    @property
    def type(self) -> fmt.RecordType:
        return fmt.RecordType(self.kind)


def split_frames(data: bytes) -> tuple[bytes, list[Frame]]:
    header, pos, frames = data[: fmt.HEADER_SIZE], fmt.HEADER_SIZE, []
    while pos < len(data):
        length, kind = fmt.FRAME.unpack_from(data, pos)
        end = pos + fmt.FRAME.size + length
        frames.append(Frame(pos, kind, data[pos:end]))
        pos = end
    return header, frames


def join_frames(header: bytes, frames: list[Frame]) -> bytes:
    return header + b"".join(f.raw for f in frames)


def data_frames(frames: list[Frame]) -> list[int]:
    return [
        i for i, f in enumerate(frames) if f.kind in (fmt.RecordType.DATA, fmt.RecordType.FINAL)
    ]
