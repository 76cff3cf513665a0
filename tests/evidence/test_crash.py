"""Power-cut behaviour: a writer SIGKILLed anywhere leaves a file that recovers as torn up to
at least its last completed checkpoint; failed fsyncs abandon the segment; no plaintext on
disk."""

from __future__ import annotations

import errno
import os
import random
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from bodycamd.errors import FormatError, IntegrityError, SegmentAbandoned
from bodycamd.evidence import format as fmt
from bodycamd.evidence.keys import load_or_create_device_key, write_evidence_key_pair
from bodycamd.evidence.reader import read_segment, scan_segment
from bodycamd.evidence.recovery import seal_torn
from bodycamd.evidence.writer import SegmentInfo, SegmentWriter
from tests.evidence.crash_writer import stream
from tests.evidence.helpers import Keys, make_keys, split_frames, write_segment


def test_sigkill_at_random_points_recovers_at_least_the_last_checkpoint(tmp_path: Path) -> None:
    rng = random.Random(20261129)
    keys = make_keys()
    for run in range(8):
        directory = tmp_path / f"run{run}"
        directory.mkdir()
        write_evidence_key_pair(keys.evidence, directory / "evidence.key")
        device = load_or_create_device_key(directory / "device.key")
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.evidence.crash_writer", str(directory), str(run)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        vouched = 0
        for _ in range(rng.randint(0, 12)):  # let it get some checkpoints in, then kill
            line = child.stdout.readline()
            if line.startswith("checkpoint"):
                vouched = int(line.split()[1])
        child.send_signal(signal.SIGKILL)
        rest = child.communicate()[0]
        for line in rest.splitlines():
            if line.startswith("checkpoint"):
                vouched = int(line.split()[1])
        part = directory / "000000.part"
        if not part.exists():
            assert vouched == 0
            continue
        expected = stream(run, 8 << 20)
        if part.stat().st_size < 4096:  # killed before the header was written whole
            assert vouched == 0
            with pytest.raises(FormatError):
                scan_segment(part)
            continue
        data, verdict = read_segment(part, keys.evidence, device.public_key())
        assert verdict.status == "torn"
        assert expected.startswith(data)
        assert len(data) >= vouched
        recovered = seal_torn(part, device)
        assert recovered.verdict.status == "torn" and recovered.verdict.sealed_torn
        assert recovered.plaintext_kept >= vouched
        data, verdict = read_segment(recovered.path, keys.evidence, device.public_key())
        assert verdict.sealed_torn and verdict.tail == "sealed as torn by the device"
        assert expected.startswith(data) and len(data) == recovered.plaintext_kept >= vouched


def test_recovery_is_idempotent_across_its_own_crash(tmp_path: Path) -> None:
    keys = make_keys()
    writer = SegmentWriter(
        tmp_path / "0.part", SegmentInfo(uuid.uuid4(), 0), keys.evidence.public, keys.device
    )
    writer.write(b"kept" * 100)
    writer.checkpoint()
    writer.write(b"lost" * 100)
    writer.checkpoint()
    writer.write(b"never vouched")
    writer.abandon()
    part = tmp_path / "0.part"
    vouched_end = scan_segment(part).vouched_offset
    # crash after the truncate, before the footer: recovery must simply run again
    os.truncate(part, vouched_end)
    first = seal_torn(part, keys.device)
    assert first.plaintext_kept == 800 and first.bytes_dropped == 0
    # crash after the footer, before the rename: the next run only renames
    sealed_bytes = first.path.read_bytes()
    first.path.rename(part)
    second = seal_torn(part, keys.device)
    assert second.path.read_bytes() == sealed_bytes


def test_recovery_of_a_complete_part_only_renames(tmp_path: Path) -> None:
    keys = make_keys()
    sealed = write_segment(tmp_path, keys, [b"whole"])
    part = sealed.path.with_suffix(".part")
    sealed.path.rename(part)
    recovered = seal_torn(part, keys.device)
    assert recovered.verdict.status == "complete" and recovered.bytes_dropped == 0


def _part_with_tail(tmp_path: Path, keys: Keys, tail: bytes) -> tuple[Path, int]:
    """A `.part` with two checkpoints, unvouched records after them, then `tail`: what a
    power cut leaves when the filesystem exposes blocks the writer never filled."""
    writer = SegmentWriter(
        tmp_path / "0.part", SegmentInfo(uuid.uuid4(), 0), keys.evidence.public, keys.device
    )
    for _ in range(2):
        writer.write(os.urandom(150_000))
        writer.checkpoint()
    writer.write(os.urandom(150_000))  # records no checkpoint vouches for
    writer.abandon()
    part = tmp_path / "0.part"
    vouched = scan_segment(part).vouched_offset
    with part.open("ab") as out:
        out.write(tail)
    return part, vouched


def _half_written_checkpoint(keys: Keys, tmp_path: Path) -> bytes:
    """A checkpoint record whose frame reached flash and whose signature did not."""
    sealed = write_segment(tmp_path / "donor", keys, [b"x" * 1000, b"y"], checkpoint_after={0})
    _, frames = split_frames(sealed.path.read_bytes())
    record = next(frame.raw for frame in frames if frame.kind == fmt.RecordType.CHECKPOINT)
    return record[:100] + b"\0" * (len(record) - 100)


@pytest.mark.parametrize(
    "tail",
    [
        pytest.param(b"\0" * 4096, id="a zero block"),
        pytest.param(bytes(random.Random(7).randrange(256) for _ in range(100)), id="noise"),
        pytest.param(None, id="a half-written checkpoint"),
    ],
)
def test_garbage_after_the_last_checkpoint_is_the_torn_tail(
    tmp_path: Path, tail: bytes | None
) -> None:
    """Recovery keeps what the checkpoints vouch for whatever follows them; it used to fail
    the whole file, which then went to quarantine (and a placeholder claimed the segment
    never began)."""
    keys = make_keys()
    (tmp_path / "donor").mkdir()
    garbage = tail or _half_written_checkpoint(keys, tmp_path)
    part, vouched = _part_with_tail(tmp_path, keys, garbage)
    size = part.stat().st_size
    recovered = seal_torn(part, keys.device)
    assert recovered.plaintext_kept == 300_000
    assert recovered.bytes_dropped == size - vouched
    assert "unreadable after the last valid checkpoint" in recovered.tail
    assert recovered.verdict.sealed_torn and recovered.verdict.vouched_plaintext == 300_000
    data, verdict = read_segment(recovered.path, keys.evidence)
    assert len(data) == 300_000 and verdict.sealed_torn


def test_garbage_in_a_sealed_segment_is_still_an_error(tmp_path: Path) -> None:
    """Only the recovery of a `.part` reads an unvouched tail leniently: a sealed file with
    anything after its footer, or a bad record before it, fails as before."""
    keys = make_keys()
    sealed = write_segment(tmp_path, keys, [b"whole" * 1000])
    with sealed.path.open("ab") as out:
        out.write(b"\0" * 4096)
    with pytest.raises(IntegrityError, match="after the footer"):
        scan_segment(sealed.path)
    with pytest.raises(IntegrityError, match="after the footer"):
        scan_segment(sealed.path, recovering=True)


class FailingFsync:
    def __init__(self, fail_on: int) -> None:
        self.calls = 0
        self.fail_on = fail_on

    def __call__(self, fd: int) -> None:
        self.calls += 1
        if self.calls == self.fail_on:
            raise OSError(errno.EIO, "Input/output error")
        os.fsync(fd)


def test_fsync_error_abandons_and_is_never_retried(tmp_path: Path) -> None:
    keys = make_keys()
    fsync = FailingFsync(fail_on=3)
    writer = SegmentWriter(
        tmp_path / "0.part",
        SegmentInfo(uuid.uuid4(), 0),
        keys.evidence.public,
        keys.device,
        fsync=fsync,
    )
    writer.write(b"a" * 1000)
    writer.checkpoint()
    writer.write(b"b" * 1000)
    with pytest.raises(SegmentAbandoned, match=r"0\.part: fsync failed \(Input/output error\)"):
        writer.checkpoint()
    with pytest.raises(SegmentAbandoned, match="closed or abandoned"):
        writer.write(b"c")
    with pytest.raises(SegmentAbandoned):
        writer.seal(end_of_recording=True)
    assert fsync.calls == 3
    verdict = scan_segment(tmp_path / "0.part")
    # the second checkpoint reached the page cache but its fsync failed: whether it survives
    # a power cut is unknown, the first one is certain
    assert verdict.status == "torn" and verdict.vouched_plaintext in (1000, 2000)


WRITE_PAST_RLIMIT = """
import os, resource, signal, sys, uuid
from pathlib import Path
from bodycamd.errors import SegmentAbandoned
from bodycamd.evidence.keys import generate_evidence_key
from bodycamd.evidence.writer import SegmentInfo, SegmentWriter
from cryptography.hazmat.primitives.asymmetric import ed25519
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
writer = SegmentWriter(Path(sys.argv[1]), SegmentInfo(uuid.uuid4(), 0),
                       generate_evidence_key().public, ed25519.Ed25519PrivateKey.generate())
try:
    writer.write(os.urandom(300_000))
except SegmentAbandoned as exc:
    print(exc)
"""


def test_write_error_abandons(tmp_path: Path) -> None:
    """A real write error: the file-size rlimit makes write(2) fail with EFBIG."""
    result = subprocess.run(
        [sys.executable, "-c", WRITE_PAST_RLIMIT, str(tmp_path / "0.part")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "0.part: write failed at byte" in result.stdout
    assert "(File too large); segment abandoned" in result.stdout


def test_no_plaintext_on_disk(tmp_path: Path) -> None:
    keys: Keys = make_keys()
    known = random.Random(7).randbytes(256 * 1024)
    write_segment(tmp_path, keys, [known[:100_000], known[100_000:]], checkpoint_after={0})
    unsealed = SegmentWriter(
        tmp_path / "open.part", SegmentInfo(uuid.uuid4(), 0), keys.evidence.public, keys.device
    )
    unsealed.write(known)
    unsealed.checkpoint()
    windows = {known[i : i + 32] for i in range(0, len(known) - 32)}
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) == 2
    for path in files:
        content = path.read_bytes()
        assert not any(content[i : i + 32] in windows for i in range(len(content) - 32)), path
    unsealed.abandon()
    # and the frames really hold what we wrote, once decrypted
    _, frames = split_frames((tmp_path / "000000.seg").read_bytes())
    assert len(frames) > 3
