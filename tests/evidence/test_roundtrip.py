from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bodycamd.evidence import format as fmt
from bodycamd.evidence.keys import KemName
from bodycamd.evidence.reader import read_segment, scan_segment
from bodycamd.evidence.writer import SegmentInfo, SegmentWriter
from tests.evidence.helpers import Keys, make_keys, split_frames, write_segment

KEYS = {kem: make_keys(kem) for kem in ("x25519", "mlkem768-x25519")}


@pytest.mark.parametrize("kem", sorted(KEYS))
@pytest.mark.parametrize(
    "size",
    [0, 1, fmt.MAX_PLAINTEXT - 1, fmt.MAX_PLAINTEXT, fmt.MAX_PLAINTEXT + 1, 3 * 1024 * 1024 + 7],
)
def test_round_trip(tmp_path: Path, kem: KemName, size: int) -> None:
    keys = KEYS[kem]
    payload = os.urandom(size)
    sealed = write_segment(tmp_path, keys, [payload], checkpoint_after={0})
    data, verdict = read_segment(sealed.path, keys.evidence, keys.device_public)
    assert data == payload
    assert verdict.status == "complete"
    assert verdict.plaintext_bytes == size == sealed.plaintext_bytes
    assert verdict.digest == sealed.digest
    assert verdict.end_of_recording
    assert sealed.path.suffix == ".seg" and not sealed.path.with_suffix(".part").exists()
    assert sealed.path.stat().st_mode & 0o777 == 0o600
    _, frames = split_frames(sealed.path.read_bytes())
    assert all(len(f.raw) <= fmt.MAX_RECORD for f in frames)
    assert frames[-1].type is fmt.RecordType.FOOTER
    assert frames[-2].type is fmt.RecordType.FINAL


def test_header_carries_who_and_when(tmp_path: Path) -> None:
    keys = KEYS["x25519"]
    info = SegmentInfo(
        uuid.uuid4(), 3, b"\x07" * 32, "cam-12", 1_700_000_000_000_000_000, 42_000_000_000, True
    )
    sealed = write_segment(tmp_path, keys, [b"x"], info=info, end_of_recording=False)
    header = scan_segment(sealed.path).header
    assert (header.recording_id, header.segment_index, header.prev_digest) == (
        info.recording_id,
        3,
        b"\x07" * 32,
    )
    assert (header.device_name, header.wall_start_ns, header.mono_start_ns) == (
        "cam-12",
        info.wall_start_ns,
        info.mono_start_ns,
    )
    assert header.clock_synced and header.kem_id == 0x0020
    assert not scan_segment(sealed.path).end_of_recording


def test_checkpoints_end_on_4k_boundaries(tmp_path: Path) -> None:
    keys = KEYS["x25519"]
    sealed = write_segment(
        tmp_path, keys, [b"a" * 5000, b"b" * 10, b"c" * 70000], checkpoint_after={0, 1, 2}
    )
    _, frames = split_frames(sealed.path.read_bytes())
    checkpoints = [f for f in frames if f.type is fmt.RecordType.CHECKPOINT]
    assert len(checkpoints) == 3
    assert all((f.offset + len(f.raw)) % 4096 == 0 for f in checkpoints)
    assert scan_segment(sealed.path).checkpoints == 3


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    pieces=st.lists(st.binary(min_size=0, max_size=9000), max_size=30),
    checkpoints=st.sets(st.integers(min_value=0, max_value=29)),
    big=st.integers(min_value=0, max_value=3),
)
def test_pieces_of_any_size_round_trip(
    tmp_path_factory: pytest.TempPathFactory, pieces: list[bytes], checkpoints: set[int], big: int
) -> None:
    keys: Keys = KEYS["x25519"]
    pieces = [*pieces, os.urandom(big * 40000)]
    directory = tmp_path_factory.mktemp("seg")
    sealed = write_segment(directory, keys, pieces, checkpoint_after=checkpoints)
    data, verdict = read_segment(sealed.path, keys.evidence, keys.device_public)
    assert data == b"".join(pieces)
    assert verdict.status == "complete"


def test_writer_refuses_a_name_without_part_suffix(tmp_path: Path) -> None:
    keys = KEYS["x25519"]
    with pytest.raises(ValueError, match=r"must end in \.part"):
        SegmentWriter(
            tmp_path / "x.seg", SegmentInfo(uuid.uuid4(), 0), keys.evidence.public, keys.device
        )
