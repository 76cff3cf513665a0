from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from bodycamd.errors import ChainError
from bodycamd.evidence.chain import ChainLink, check_chain
from bodycamd.evidence.reader import scan_segment
from bodycamd.evidence.recovery import seal_torn
from bodycamd.evidence.writer import SealedSegment, SegmentInfo, SegmentWriter
from tests.evidence.helpers import make_keys, write_segment

KEYS = make_keys()


def record(directory: Path, count: int, recording: uuid.UUID | None = None) -> list[Path]:
    recording = recording or uuid.uuid4()
    prev = b"\0" * 32
    paths = []
    for index in range(count):
        sealed: SealedSegment = write_segment(
            directory,
            KEYS,
            [f"segment {index} ".encode() * 50],
            name=f"{recording.hex[:8]}-{index:06d}",
            info=SegmentInfo(recording, index, prev),
            end_of_recording=index == count - 1,
        )
        prev = sealed.digest
        paths.append(sealed.path)
    return paths


def links(paths: list[Path]) -> list[ChainLink]:
    return [ChainLink(p.name, scan_segment(p, KEYS.device_public)) for p in paths]


def test_whole_recording_verifies(tmp_path: Path) -> None:
    report = check_chain(links(record(tmp_path, 4)))
    assert (report.segments, report.ending) == (4, "end-of-recording")


def test_deleted_segment(tmp_path: Path) -> None:
    paths = record(tmp_path, 4)
    with pytest.raises(
        ChainError, match=r"segment 1 of recording .* is missing \(.*-000002\.seg is segment 2\)"
    ):
        check_chain(links([paths[0], *paths[2:]]))


def test_two_swapped(tmp_path: Path) -> None:
    paths = record(tmp_path, 4)
    with pytest.raises(
        ChainError, match=r"segment 2 found at position 1 \(reordered or duplicated\)"
    ):
        check_chain(links([paths[0], paths[2], paths[1], paths[3]]))


def test_last_missing(tmp_path: Path) -> None:
    paths = record(tmp_path, 4)
    with pytest.raises(ChainError, match="ends without its last segment"):
        check_chain(links(paths[:3]))


def test_substituted_from_another_recording(tmp_path: Path) -> None:
    paths = record(tmp_path, 3)
    other = record(tmp_path, 3)
    with pytest.raises(ChainError, match=r"belongs to recording .* \(substituted or mixed up\)"):
        check_chain(links([paths[0], other[1], paths[2]]))


def test_substituted_re_recorded_segment(tmp_path: Path) -> None:
    """Same recording id and index, signed by the same device, different bytes."""
    paths = record(tmp_path, 3)
    header = scan_segment(paths[1]).header
    fake = write_segment(
        tmp_path,
        KEYS,
        [b"altered footage"],
        name="fake",
        info=SegmentInfo(header.recording_id, 1, header.prev_digest),
        end_of_recording=False,
    )
    with pytest.raises(ChainError, match=r"-000002\.seg: does not follow fake\.seg"):
        check_chain(links([paths[0], fake.path, paths[2]]))


def test_recording_cut_by_power_loss_ends_torn(tmp_path: Path) -> None:
    paths = record(tmp_path, 2)
    recording = scan_segment(paths[0]).header.recording_id
    # segment 1 rewritten as the crash left it: never sealed, recovered at startup
    paths[1].unlink()
    writer = SegmentWriter(
        tmp_path / "torn.part",
        SegmentInfo(recording, 1, scan_segment(paths[0]).digest),
        KEYS.evidence.public,
        KEYS.device,
    )
    writer.write(b"last moments")
    writer.checkpoint()
    writer.abandon()
    torn = seal_torn(tmp_path / "torn.part", KEYS.device)
    report = check_chain(links([paths[0], torn.path]))
    assert report.ending == "torn"
