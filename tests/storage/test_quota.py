from __future__ import annotations

import asyncio
import subprocess
import uuid
from pathlib import Path

import pytest

from bodycamd.errors import QuotaExceeded
from bodycamd.evidence import format as fmt
from bodycamd.evidence.reader import read_segment, scan_segment
from bodycamd.evidence.writer import bytes_to_seal
from bodycamd.storage import SegmentStart
from bodycamd.storage.quota import FsSpace
from tests.media import count_frames, make_ts
from tests.storage.helpers import make_spool, record, signed_receipt, storage_for

FOOTAGE = make_ts(60, size=(320, 240)) * 4  # ~2 MB; concatenated MPEG-TS stays decodable


def test_recording_into_a_small_quota_stops_sealed_and_full(tmp_path: Path) -> None:
    spool, keys = make_spool(tmp_path / "state", quota="600KiB")
    recording = record(spool, FOOTAGE)
    assert "storage full" in recording.stopped_by
    assert recording.fed < len(FOOTAGE)
    figures = spool.ledger.figures()
    assert figures.full and figures.used <= 600 * 1024
    rows = spool.journal.segments()
    assert [r.state for r in rows] == ["sealed"] * len(recording.sealed)
    assert rows[-1].end_of_recording and not rows[-1].torn
    plaintext = b""
    for sealed in recording.sealed:
        data, verdict = read_segment(sealed.path, keys.evidence, keys.device_public)
        assert verdict.status == "complete"
        plaintext += data
    assert plaintext == FOOTAGE[: recording.fed]
    last, _ = read_segment(recording.sealed[-1].path, keys.evidence, keys.device_public)
    assert count_frames(last) > 0  # the last segment decodes on its own
    assert count_frames(plaintext) > 0
    with pytest.raises(QuotaExceeded, match="a recording needs at least"):
        spool.ledger.check_start()


def test_earlier_segments_are_never_touched(tmp_path: Path) -> None:
    spool, _ = make_spool(tmp_path / "state", quota="1MiB")
    first = record(spool, FOOTAGE[:300_000])
    before = {s.path: (s.path.read_bytes(), s.path.stat().st_mtime_ns) for s in first.sealed}
    second = record(spool, FOOTAGE)
    assert second.stopped_by
    for path, (content, mtime) in before.items():
        assert path.read_bytes() == content and path.stat().st_mtime_ns == mtime


def test_start_below_min_free_is_refused(tmp_path: Path) -> None:
    spool, _ = make_spool(tmp_path / "state", quota="20KiB")
    with pytest.raises(QuotaExceeded, match=r"only 0\.\d min of footage fit"):
        spool.ledger.check_start()


def test_reserve_on_the_filesystem_counts_too(tmp_path: Path) -> None:
    """Free space minus the reserve limits footage even under a generous quota."""
    fake_free = 2_000_000 + 256 * 2**20

    def space(root: Path) -> FsSpace:
        """A filesystem with `fake_free` bytes left before the state directory was used."""
        used = sum(
            p.stat().st_blocks * 512
            for p in root.rglob("*.*")
            if p.is_file() and p.suffix in {".seg", ".part"}
        )
        return FsSpace(total=2**40, free=fake_free - used, block=4096)

    spool, _ = make_spool(tmp_path / "state", quota="100%", reserve="256MiB", space=space)
    assert spool.ledger.available() == 2_000_000
    recording = record(spool, FOOTAGE)
    assert "storage full" in recording.stopped_by


def du(path: Path) -> int:
    out = subprocess.run(
        ["du", "-s", "--block-size=1", str(path)], capture_output=True, text=True, check=True
    ).stdout
    return int(out.split()[0])


def test_accounting_matches_du(tmp_path: Path) -> None:
    root = tmp_path / "state"
    spool, _keys = make_spool(root)
    recording = record(spool, FOOTAGE[:400_000])
    open_segment = spool.open_segment(SegmentStart(recording.recording_id, 99, b"\0" * 32, True))
    open_segment.write(FOOTAGE[:150_000])
    open_segment.checkpoint()
    storage = storage_for(spool)
    job = asyncio.run(storage.next_for_upload(2**62))
    assert job is not None and job.digest == recording.sealed[0].digest.hex()
    asyncio.run(storage.confirm_and_delete(job, *signed_receipt(job.digest, job.size)))
    files = [p for d in (root / "spool", root / "ready") for p in d.rglob("*") if p.is_file()]
    directories = {
        p for d in ("spool", "ready", "quarantine") for p in (root / d).rglob("*") if p.is_dir()
    } | {root / "spool", root / "ready", root / "quarantine"}
    measured = sum(du(d) for d in (root / "spool", root / "ready", root / "quarantine"))
    measured -= sum(du_dir_only(d) for d in directories)
    block = 4096
    assert abs(spool.ledger.used - measured) <= block * len(files), (spool.ledger.used, measured)
    # and after a start-up recount the figure is exact
    spool.ledger.reconcile(spool.layout.segment_files())
    assert spool.ledger.used == measured
    assert scan_segment(open_segment.path).status == "torn"


def du_dir_only(directory: Path) -> int:
    return directory.stat().st_blocks * 512


@pytest.mark.parametrize("pending", [0, 1, 65_512, 65_513, 300_000])
def test_sealing_adds_no_more_than_the_writer_says(tmp_path: Path, pending: int) -> None:
    """bytes_to_seal is what quota, spool and recorder reserve for a seal: it must hold."""
    spool, _ = make_spool(tmp_path / "state")
    segment = spool.open_segment(SegmentStart(uuid.uuid4(), 0, b"\0" * 32, True))
    segment.write(FOOTAGE[:100_000])
    segment.checkpoint()
    before = segment.path.stat().st_size
    segment.write(FOOTAGE[100_000 : 100_000 + pending], final=True)
    sealed = segment.seal(end_of_recording=True)
    assert 0 < sealed.size - before <= bytes_to_seal(pending)
    assert bytes_to_seal(pending) - (sealed.size - before) <= 2 * fmt.MAX_RECORD + 2 * fmt.ALIGN


def test_a_refused_write_leaves_the_card_full_until_space_is_freed(tmp_path: Path) -> None:
    """The recorder stops as storage_full when a write would eat the seal margin, which can
    happen with a little more than the margin free; the health flag said only storage_low
    then (and the amber LED showed the wrong pattern). Full now means "the write that was
    refused would be refused again", until a batch more than then is free."""
    from bodycamd.storage.quota import SEAL_MARGIN, WRITE_BATCH, allocated

    spool, _ = make_spool(tmp_path / "state", quota="3MiB")
    ledger = spool.ledger
    earlier = spool.layout.ready / "earlier.seg"  # footage that an upload will free
    earlier.write_bytes(b"\0" * (1 << 20))
    ledger.reconcile([*spool.layout.segment_files(), earlier])
    available = ledger.available()
    assert available > SEAL_MARGIN + WRITE_BATCH and not ledger.figures().full
    part = spool.layout.spool / "open.part"
    with pytest.raises(QuotaExceeded):
        ledger.check(part, available - SEAL_MARGIN + WRITE_BATCH // 2)
    assert ledger.available() > SEAL_MARGIN and ledger.figures().full
    ledger.refresh()  # a fresh reading of the same space changes nothing
    assert ledger.figures().full
    size = allocated(earlier)
    earlier.unlink()
    ledger.release(size)
    assert not ledger.figures().full
