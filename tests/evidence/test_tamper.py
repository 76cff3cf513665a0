"""Every way a segment can be damaged or forged is caught, and no wrong byte is ever shown."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from bodycamd.errors import EvidenceError, FormatError, IntegrityError, WrongKeyError
from bodycamd.evidence import format as fmt
from bodycamd.evidence.keys import generate_evidence_key
from bodycamd.evidence.reader import SegmentReader, read_segment, scan_segment
from bodycamd.evidence.recovery import seal_torn
from bodycamd.evidence.writer import SegmentInfo, SegmentWriter
from tests.evidence.helpers import (
    Keys,
    data_frames,
    join_frames,
    make_keys,
    split_frames,
    write_segment,
)

KEYS = make_keys()
METADATA = b'{"officer": "123456"}'
PIECES = [b"first record " * 3, b"second " * 5, b"third" * 4, b"tail of the segment"]


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes]:
    """A small segment: 3 checkpointed DATA records, a FINAL, the footer (~12.5 KiB)."""
    directory = tmp_path_factory.mktemp("small")
    info = SegmentInfo(uuid.uuid4(), 0, device_name="test-cam", metadata=METADATA)
    sealed = write_segment(directory, KEYS, PIECES, checkpoint_after={0, 1, 2}, info=info)
    return sealed.path.read_bytes(), b"".join(PIECES)


def read_bytes(
    tmp_path: Path, data: bytes, keys: Keys = KEYS, device: ed25519.Ed25519PublicKey | None = None
) -> tuple[bytes, str, str]:
    """Decrypt `data`: (plaintext yielded, status or 'error', error message)."""
    path = tmp_path / "case.seg"
    path.write_bytes(data)
    reader = SegmentReader(path, keys.evidence, device or keys.device_public)
    out = bytearray()
    try:
        for chunk in reader.plaintext():
            out += chunk
    except EvidenceError as exc:
        return bytes(out), "error", str(exc)
    return bytes(out), reader.verdict.status, reader.verdict.tail


def test_truncation_at_every_offset(tmp_path: Path, small: tuple[bytes, bytes]) -> None:
    data, plain = small
    _, frames = split_frames(data)
    checkpoint_ends = {
        f.offset + len(f.raw): None for f in frames if f.type is fmt.RecordType.CHECKPOINT
    }
    previous = 0
    for cut in range(len(data)):
        out, status, why = read_bytes(tmp_path, data[:cut])
        assert status != "complete", cut
        assert plain.startswith(out), cut
        assert len(out) >= previous, (cut, why)  # the recovered prefix never shrinks
        previous = len(out)
        if cut in checkpoint_ends:
            checkpoint_ends[cut] = len(out)
    # a cut right after a checkpoint recovers everything written before it
    assert list(checkpoint_ends.values()) == [
        len(PIECES[0]),
        len(b"".join(PIECES[:2])),
        len(b"".join(PIECES[:3])),
    ]
    assert read_bytes(tmp_path, data)[1] == "complete"


def test_flipped_bit_in_every_byte(tmp_path: Path, small: tuple[bytes, bytes]) -> None:
    data, plain = small
    for index in range(len(data)):
        damaged = bytearray(data)
        damaged[index] ^= 1 << (index % 8)
        out, status, _ = read_bytes(tmp_path, bytes(damaged))
        assert status != "complete", index
        assert plain.startswith(out), index


def test_records_swapped(tmp_path: Path, small: tuple[bytes, bytes]) -> None:
    header, frames = split_frames(small[0])
    a, b = data_frames(frames)[:2]
    frames[a], frames[b] = frames[b], frames[a]
    out, status, why = read_bytes(tmp_path, join_frames(header, frames))
    assert status == "error" and out == b""
    assert why == (
        "record 1 (byte 4141): bad tag: this is data record 1; expected data "
        "record 0 (records dropped or reordered)"
    )


def test_record_duplicated(tmp_path: Path, small: tuple[bytes, bytes]) -> None:
    header, frames = split_frames(small[0])
    first = data_frames(frames)[0]
    frames.insert(first + 1, frames[first])
    out, status, why = read_bytes(tmp_path, join_frames(header, frames))
    assert status == "error" and out == PIECES[0]
    assert "this is data record 0 again (duplicated or replayed)" in why


def test_record_dropped(tmp_path: Path, small: tuple[bytes, bytes]) -> None:
    header, frames = split_frames(small[0])
    second = data_frames(frames)[1]
    del frames[second : second + 2]  # the record and the checkpoint that vouches for it
    out, status, why = read_bytes(tmp_path, join_frames(header, frames))
    assert status == "error" and out == PIECES[0]
    assert "this is data record 2; expected data record 1 (records dropped or reordered)" in why


def test_data_relabelled_final(tmp_path: Path, small: tuple[bytes, bytes]) -> None:
    header, frames = split_frames(small[0])
    second = frames[data_frames(frames)[1]]
    second.raw = second.raw[:4] + bytes([fmt.RecordType.FINAL]) + second.raw[5:]
    out, status, why = read_bytes(tmp_path, join_frames(header, frames))
    assert status == "error" and out == PIECES[0]
    assert "FINAL record was relabelled (it was written as DATA)" in why


def test_footer_dropped_is_torn(tmp_path: Path, small: tuple[bytes, bytes]) -> None:
    header, frames = split_frames(small[0])
    out, status, tail = read_bytes(tmp_path, join_frames(header, frames[:-1]))
    assert (out, status) == (small[1], "torn")
    assert tail == "ends after the final record; footer missing"


def test_footer_replayed_from_another_segment(tmp_path: Path, small: tuple[bytes, bytes]) -> None:
    other = write_segment(tmp_path, KEYS, PIECES, checkpoint_after={0, 1, 2}, name="other")
    header, frames = split_frames(small[0])
    frames[-1] = split_frames(other.path.read_bytes())[1][-1]
    _, status, why = read_bytes(tmp_path, join_frames(header, frames))
    assert status == "error" and "footer: bad device signature" in why


def test_footer_appended_twice(tmp_path: Path, small: tuple[bytes, bytes]) -> None:
    header, frames = split_frames(small[0])
    _, status, why = read_bytes(tmp_path, join_frames(header, [*frames, frames[-1]]))
    assert status == "error" and why.endswith(f"{8 + fmt.FOOTER_BODY[2]} bytes after the footer")


def test_segment_signed_by_another_device(tmp_path: Path) -> None:
    thief = Keys(KEYS.evidence, ed25519.Ed25519PrivateKey.generate())
    sealed = write_segment(tmp_path, thief, [b"staged footage"])
    with pytest.raises(IntegrityError, match="signed by another device"):
        read_segment(sealed.path, KEYS.evidence, KEYS.device_public)


def test_forgery_with_only_the_evidence_public_key(tmp_path: Path) -> None:
    """The forger embeds the real device's public key but can only sign with their own."""
    forger = Keys(KEYS.evidence, ed25519.Ed25519PrivateKey.generate())
    sealed = write_segment(tmp_path, forger, [b"forged footage"])
    raw = bytearray(sealed.path.read_bytes())
    raw[40:72] = KEYS.device_public.public_bytes_raw()  # header's device-key field
    _, status, why = read_bytes(tmp_path, bytes(raw))
    assert status == "error" and why == ("header: bad device signature (header tampered or forged)")


def test_header_byte_changed(tmp_path: Path, small: tuple[bytes, bytes]) -> None:
    raw = bytearray(small[0])
    raw[24] ^= 0xFF  # recording id
    _, status, why = read_bytes(tmp_path, bytes(raw))
    assert status == "error" and why.startswith("header: bad device signature")


def test_wrong_evidence_key(tmp_path: Path, small: tuple[bytes, bytes]) -> None:
    path = tmp_path / "s.seg"
    path.write_bytes(small[0])
    wrong = Keys(generate_evidence_key(), KEYS.device)
    with pytest.raises(WrongKeyError, match="does not unwrap this segment's data key"):
        read_segment(path, wrong.evidence, KEYS.device_public)
    hybrid = Keys(generate_evidence_key("mlkem768-x25519"), KEYS.device)
    with pytest.raises(WrongKeyError, match="wrapped with x25519; the key given is mlkem"):
        read_segment(path, hybrid.evidence, KEYS.device_public)


def test_metadata_is_encrypted_and_authenticated(
    tmp_path: Path, small: tuple[bytes, bytes]
) -> None:
    data = small[0]
    assert METADATA not in data
    path = tmp_path / "m.seg"
    path.write_bytes(data)
    reader = SegmentReader(path, KEYS.evidence, KEYS.device_public)
    assert b"".join(reader.plaintext()) == small[1] and reader.metadata == METADATA
    header, frames = split_frames(data)
    meta = frames[0]
    assert meta.type is fmt.RecordType.METADATA
    altered = bytearray(meta.raw)
    altered[20] ^= 1
    meta.raw = bytes(altered)
    _, status, why = read_bytes(tmp_path, join_frames(header, frames))
    assert status == "error" and why == (
        "record 0 (byte 4096): bad tag on the METADATA record (altered)"
    )
    header, frames = split_frames(data)
    frames.insert(2, frames.pop(0))  # moved after the first DATA record
    _, status, why = read_bytes(tmp_path, join_frames(header, frames))
    assert status == "error"


def test_not_a_segment(tmp_path: Path) -> None:
    path = tmp_path / "notes.seg"
    path.write_bytes(b"hello, this is not footage" * 200)
    with pytest.raises(FormatError, match="not a bodycamd segment"):
        scan_segment(path)


def test_keyless_scan_agrees_with_the_reader(tmp_path: Path, small: tuple[bytes, bytes]) -> None:
    data = small[0]
    _, frames = split_frames(data)
    second_checkpoint = [f for f in frames if f.type is fmt.RecordType.CHECKPOINT][1]
    cut = second_checkpoint.offset + len(second_checkpoint.raw) + 20
    path = tmp_path / "cut.part"
    path.write_bytes(data[:cut])
    verdict = scan_segment(path, KEYS.device_public)
    assert verdict.status == "torn"
    assert verdict.vouched_offset == second_checkpoint.offset + len(second_checkpoint.raw)
    assert verdict.vouched_plaintext == len(PIECES[0] + PIECES[1])
    assert verdict.checkpoints == 2


def test_same_recording_id_cannot_mix_keys(tmp_path: Path) -> None:
    info = SegmentInfo(uuid.uuid4(), 0)
    sealed = write_segment(tmp_path, KEYS, [b"x"], info=info)
    assert scan_segment(sealed.path, KEYS.device_public).header.recording_id == info.recording_id


@pytest.mark.parametrize(
    ("offset", "value", "why"),
    [
        (234, b"\x00\x21", "HPKE enc of 33 bytes; KEM 0x0020 makes 32"),
        (234 + 2 + 32, b"\x00\x31", "wrapped key of 49 bytes; expected 48"),
        (4000, b"\x01", "reserved bytes after the wrapped key are not zero"),
        (90, b"\xff", "device name is not UTF-8"),
    ],
)
def test_header_rules_of_the_spec(
    tmp_path: Path, small: tuple[bytes, bytes], offset: int, value: bytes, why: str
) -> None:
    raw = bytearray(small[0])
    raw[offset : offset + len(value)] = value
    path = tmp_path / "h.seg"
    path.write_bytes(bytes(raw))
    with pytest.raises(FormatError, match=why):
        scan_segment(path)


def resign_footer(data: bytes, **changes: object) -> bytes:
    """The segment with its footer's fields changed and signed again by the real device key
    (what only the device could do: these are the rules the device itself must not break)."""
    import dataclasses

    header, frames = split_frames(data)
    parsed = fmt.parse_header(header)
    footer = fmt.Footer.parse(frames[-1].raw[8:], parsed, KEYS.device_public)
    body = dataclasses.replace(footer, **changes).body(parsed, KEYS.device)  # type: ignore[arg-type]
    frames[-1].raw = frames[-1].raw[:8] + body
    return join_frames(header, frames)


def test_torn_footer_rules(tmp_path: Path) -> None:
    writer = SegmentWriter(
        tmp_path / "t.part", SegmentInfo(uuid.uuid4(), 0), KEYS.evidence.public, KEYS.device
    )
    writer.write(b"x" * 100)
    writer.checkpoint()
    writer.abandon()
    sealed = seal_torn(tmp_path / "t.part", KEYS.device).path.read_bytes()
    assert read_bytes(tmp_path, sealed)[1] == "torn"
    flags = fmt.FLAG_TORN | fmt.FLAG_END_OF_RECORDING
    cases = {
        "torn and end of recording at once": resign_footer(sealed, flags=flags),
        "torn footer's end is not the time of its last checkpoint": resign_footer(
            sealed, wall_end_ns=1
        ),
        "recovery time given if and only if sealed as torn": resign_footer(
            sealed, recovered_wall_ns=0
        ),
        "open-failed flag without the torn flag": resign_footer(sealed, flags=fmt.FLAG_OPEN_FAILED),
        "open-failed flag on a segment that holds footage": resign_footer(
            sealed, flags=fmt.FLAG_TORN | fmt.FLAG_OPEN_FAILED
        ),
    }
    for why, data in cases.items():
        _, status, message = read_bytes(tmp_path, data)
        assert status == "error" and why in message, message


def test_checkpoint_before_the_header_time_is_refused(tmp_path: Path) -> None:
    info = SegmentInfo(uuid.uuid4(), 0, mono_start_ns=10_000_000_000)
    writer = SegmentWriter(tmp_path / "c.part", info, KEYS.evidence.public, KEYS.device)
    writer.write(b"x" * 100)
    writer.checkpoint(mono_ns=5_000_000_000)
    writer.abandon()
    _, status, why = read_bytes(tmp_path, (tmp_path / "c.part").read_bytes())
    assert status == "error" and "monotonic time goes back" in why


def test_an_altered_record_is_named_not_the_checkpoint_after_it(
    tmp_path: Path, small: tuple[bytes, bytes]
) -> None:
    header, frames = split_frames(small[0])
    second = frames[data_frames(frames)[1]]
    altered = bytearray(second.raw)
    altered[20] ^= 1
    second.raw = bytes(altered)
    data = join_frames(header, frames)
    _, status, why = read_bytes(tmp_path, data)
    assert status == "error" and why.startswith(f"record 3 (byte {second.offset}): bad tag")
    path = tmp_path / "keyless.seg"
    path.write_bytes(data)
    with pytest.raises(IntegrityError, match=rf"records 3 to 3 \(bytes {second.offset} to"):
        scan_segment(path)


def test_an_altered_unvouched_tail_is_an_error_not_torn(
    tmp_path: Path, small: tuple[bytes, bytes]
) -> None:
    header, frames = split_frames(small[0])
    last_checkpoint = max(i for i, f in enumerate(frames) if f.type is fmt.RecordType.CHECKPOINT)
    tail = frames[last_checkpoint + 1]  # the FINAL record, after the last checkpoint
    altered = bytearray(tail.raw)
    altered[-1] ^= 1
    tail.raw = bytes(altered)
    cut = join_frames(header, frames[: last_checkpoint + 2])  # power cut before the footer
    _, status, why = read_bytes(tmp_path, cut)
    assert status == "error" and "bad tag" in why
    path = tmp_path / "tail.part"
    path.write_bytes(cut)
    assert scan_segment(path).status == "torn"  # keyless: cannot tell, says "not vouched"
