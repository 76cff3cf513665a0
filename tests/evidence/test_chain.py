from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from bodycamd.errors import ChainError
from bodycamd.evidence.chain import ChainLink, ChainReport, assess_chain, check_chain
from bodycamd.evidence.reader import scan_segment
from bodycamd.evidence.recovery import interrupted_roll, seal_interrupted_roll, seal_torn
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


def links(paths: list[Path], *, enrolled: bool = True) -> list[ChainLink]:
    """Scanned with the enrolled device key, or (enrolled=False) with the key each embeds."""
    key = KEYS.device_public if enrolled else None
    return [ChainLink(p.name, scan_segment(p, key)) for p in paths]


def kinds(report: ChainReport) -> list[str]:
    return [fault.kind for fault in report.faults]


def test_whole_recording_verifies(tmp_path: Path) -> None:
    report = check_chain(links(record(tmp_path, 4)))
    assert (report.segments, report.ending, report.faults) == (4, "end-of-recording", ())
    assert report.fingerprint in report.summary()


def test_order_comes_from_the_index_never_the_file_name(tmp_path: Path) -> None:
    paths = record(tmp_path, 4)
    report = check_chain(links([paths[3], paths[1], paths[0], paths[2]]))
    assert [link.verdict.header.segment_index for link in report.links] == [0, 1, 2, 3]


def test_deleted_segment(tmp_path: Path) -> None:
    paths = record(tmp_path, 4)
    report = assess_chain(links([paths[0], *paths[2:]]))
    assert kinds(report) == ["missing"]
    assert "segment 1 of recording" in report.faults[0].message
    with pytest.raises(ChainError, match=r"segment 1 of recording .* is missing"):
        check_chain(links([paths[0], *paths[2:]]))


def test_first_and_two_middle_missing(tmp_path: Path) -> None:
    paths = record(tmp_path, 5)
    report = assess_chain(links([paths[1], paths[4]]))
    assert [f.message.split(" of ")[0] for f in report.faults] == ["segment 0", "segment 2 to 3"]


def test_duplicated_file(tmp_path: Path) -> None:
    paths = record(tmp_path, 3)
    report = assess_chain(links([paths[0], paths[1], paths[1], paths[2]]))
    assert kinds(report) == ["duplicated"] and report.segments == 3


def test_last_missing(tmp_path: Path) -> None:
    paths = record(tmp_path, 4)
    report = assess_chain(links(paths[:3]))
    assert kinds(report) == ["missing"] and report.ending == "incomplete"
    assert "ends without its last segment" in report.faults[0].message


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
    report = assess_chain(links([paths[0], fake.path, paths[2]]))
    assert kinds(report) == ["substituted"]
    assert "-000002.seg: does not follow fake.seg" in report.faults[0].message
    with pytest.raises(ChainError):
        check_chain(links([paths[0], fake.path, paths[2]]), accept={"substituted"})


def test_forged_last_segment_signed_by_another_key(tmp_path: Path) -> None:
    """Anyone with the evidence public key and the previous digest can append a segment;
    it cannot carry segment 0's device signature."""
    paths = record(tmp_path, 3)
    second = scan_segment(paths[1])
    paths[2].unlink()
    forger = make_keys()
    forger.evidence = KEYS.evidence
    forged = write_segment(
        tmp_path,
        forger,
        [b"planted"],
        name="forged",
        info=SegmentInfo(second.header.recording_id, 2, second.digest),
    )
    paths = paths[:2]
    report = assess_chain(links([*paths, forged.path], enrolled=False))
    assert kinds(report) == ["another-device"]
    assert report.device_key == KEYS.device_public.public_bytes_raw()
    with pytest.raises(ChainError, match="signed by device key"):
        check_chain(links([*paths, forged.path], enrolled=False), accept={"another-device"})


def test_recording_cut_by_power_loss_is_interrupted(tmp_path: Path) -> None:
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
    report = assess_chain(links([paths[0], tmp_path / "torn.part"]))
    assert kinds(report) == ["truncated"]  # not yet recovered by the device
    torn = seal_torn(tmp_path / "torn.part", KEYS.device)
    report = check_chain(links([paths[0], torn.path]), accept={"interrupted"})
    assert report.ending == "interrupted (power loss)" and kinds(report) == ["interrupted"]
    assert "inside the last segment" in report.faults[0].message
    assert report.unexplained == ()


def test_power_cut_at_a_roll_reads_interrupted_not_missing(tmp_path: Path) -> None:
    paths = record(tmp_path, 3)
    paths[2].unlink()  # as if the power went before segment 2's file existed
    verdicts = [scan_segment(p) for p in paths[:2]]
    previous = interrupted_roll(verdicts)
    assert previous is verdicts[1]
    placeholder = seal_interrupted_roll(
        previous, tmp_path / "000002.part", KEYS.device, KEYS.evidence.public
    )
    verdict = placeholder.verdict
    assert verdict.placeholder and verdict.sealed_torn and verdict.data_records == 0
    assert verdict.header.prev_digest == verdicts[1].digest
    assert verdict.end_wall_ns == verdicts[1].end_wall_ns == verdict.header.wall_start_ns
    assert verdict.recovered_wall_ns >= verdict.end_wall_ns
    report = assess_chain(links([*paths[:2], placeholder.path]))
    assert kinds(report) == ["interrupted"] and report.ending == "interrupted (power loss)"
    assert "at a segment roll" in report.faults[0].message
    assert interrupted_roll([*verdicts, verdict]) is None


def test_torn_segment_in_the_middle_is_named(tmp_path: Path) -> None:
    recording = uuid.uuid4()
    writer = SegmentWriter(
        tmp_path / "0.part", SegmentInfo(recording, 0), KEYS.evidence.public, KEYS.device
    )
    writer.write(b"before the write error")
    writer.checkpoint()
    writer.abandon()
    torn = seal_torn(tmp_path / "0.part", KEYS.device)
    after = write_segment(
        tmp_path,
        KEYS,
        [b"carried on"],
        name="1",
        info=SegmentInfo(recording, 1, torn.verdict.digest),
    )
    report = assess_chain(links([torn.path, after.path]))
    assert kinds(report) == ["torn-middle"] and report.ending == "end-of-recording"
    assert check_chain(links([torn.path, after.path]), accept={"torn-middle"}).segments == 2


ROLL_FSYNCS = 4  # seal: the file, its directory after the rename; open: the header, directory


@pytest.mark.parametrize("point", range(2 * ROLL_FSYNCS + 1))
def test_power_cut_at_every_fsync_of_a_roll(tmp_path: Path, point: int) -> None:
    """Kill the writer before and after each fsync of a segment roll (a crash-point hook in
    the child, not timing luck); recovery then leaves a chain that reads "interrupted (power
    loss)" and never "missing"."""
    import subprocess
    import sys

    from bodycamd.evidence.keys import load_or_create_device_key, write_evidence_key_pair

    write_evidence_key_pair(KEYS.evidence, tmp_path / "evidence.key")
    device = load_or_create_device_key(tmp_path / "device.key")
    child = subprocess.run(
        [sys.executable, "-m", "tests.evidence.crash_roll", str(tmp_path), str(point)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert child.returncode == -9, child.stderr
    assert ("rolled" in child.stdout) == (point >= 2 * ROLL_FSYNCS)
    # what the device does at the next start: seal torn .part files, then mark the roll
    for part in sorted(tmp_path.glob("*.part")):
        seal_torn(part, device)
    verdicts = [scan_segment(p, device.public_key()) for p in sorted(tmp_path.glob("*.seg"))]
    previous = interrupted_roll(verdicts)
    if previous is not None:
        index = previous.header.segment_index + 1
        placeholder = seal_interrupted_roll(
            previous, tmp_path / f"{index:06d}.part", device, KEYS.evidence.public
        )
        verdicts.append(placeholder.verdict)
    report = assess_chain([ChainLink(str(v.header.segment_index), v) for v in verdicts])
    assert report.ending == "interrupted (power loss)", report.faults
    assert kinds(report) == ["interrupted"]
    assert report.segments == 2
