"""A power cut at every fsync of a segment roll, through the real spool and journal: the
start-up reconciliation leaves a chain that reads "interrupted (power loss)", never
"missing" (issue #11, item 1)."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from bodycamd.errors import QuotaExceeded, SegmentAbandoned
from bodycamd.evidence.chain import ChainLink, ChainReport, assess_chain
from bodycamd.evidence.keys import create_device_key, write_evidence_key_pair
from bodycamd.evidence.reader import scan_segment
from bodycamd.journal.audit import append_event
from bodycamd.storage import SegmentStart
from bodycamd.storage.quota import FsSpace
from bodycamd.storage.reconcile import reconcile
from bodycamd.storage.spool import Spool, SpoolSegment
from tests.evidence.helpers import Keys, make_keys
from tests.storage.helpers import make_spool

KEYS = make_keys()


def crash_at(tmp_path: Path, point: int) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TORTURE_ROLL_POINT": str(point), "TORTURE_MARK": str(tmp_path / "m")}
    return subprocess.run(
        [sys.executable, "-m", "tests.evidence.crash_spool_roll", str(tmp_path / "state")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


ROLL_FSYNCS = 9  # seal: file, spool dir; into ready/: new dir, its parent, source dir,
# spool/ after the rmdir; next segment: spool/ after the mkdir, header, its directory


@pytest.mark.parametrize("point", range(2 * ROLL_FSYNCS + 1))
def test_power_cut_at_every_fsync_of_a_roll(tmp_path: Path, point: int) -> None:
    """Killed before (even points) or after (odd) each fsync of the roll; the last point is
    past the roll, proving every fsync of it was tried."""
    write_evidence_key_pair(KEYS.evidence, tmp_path / "evidence.key")
    device = create_device_key(tmp_path / "device.key")
    child = crash_at(tmp_path, point)
    if point == 2 * ROLL_FSYNCS:
        assert child.returncode == 0 and (tmp_path / "m").exists(), child.stderr
        assert (tmp_path / "m").read_text().startswith(f"{ROLL_FSYNCS} fsyncs")
        return
    assert child.returncode == -9, child.stderr
    spool, _ = make_spool(tmp_path / "state", Keys(KEYS.evidence, device))
    report = reconcile(spool, device)
    again = reconcile(spool, device)  # idempotent: nothing more to repair
    assert again.rolls_interrupted == [] and again.torn_recovered == []
    files = sorted((tmp_path / "state").glob("ready/*/*.seg"))
    verdicts = [scan_segment(path, device.public_key()) for path in files]
    chain = assess_chain([ChainLink(str(p), v) for p, v in zip(files, verdicts, strict=True)])
    assert chain.ending == "interrupted (power loss)", chain.faults
    assert [f.kind for f in chain.faults] == ["interrupted"]
    # the segment was not begun (placeholder), or its header made it (torn), never both
    assert verdicts[-1].placeholder == bool(report.rolls_interrupted)
    rows = spool.journal.segments()
    assert {row.path for row in rows} == {str(p.relative_to(tmp_path / "state")) for p in files}
    assert spool.journal.verify(device.public_key()).ok
    assert [e.kind for e in spool.journal.events()].count("roll_interrupted") == len(
        report.rolls_interrupted
    )
    recovered = [e.fields for e in spool.journal.events() if e.kind == "torn_segment_recovered"]
    assert [f["open_failed"] for f in recovered] == [False] * len(report.torn_recovered)


class FailurePoint:
    """The failure point: while `failing`, every fsync of a segment file raises EIO (an I/O
    error the daemon survives, not a power cut); with `once`, only the next one does; free
    space as `space` says."""

    def __init__(self) -> None:
        self.failing = False
        self.once = False
        self.space = FsSpace(total=2**30, free=2**30, block=4096)

    def fsync(self, fd: int) -> None:
        if self.failing or self.once:
            self.once = False
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        os.fsync(fd)


def chain_of(state: Path, key: object) -> ChainReport:
    files = sorted(state.glob("ready/*/*.seg"))
    return assess_chain([ChainLink(str(p), scan_segment(p, key)) for p in files])  # type: ignore[arg-type]


def begin(spool: Spool) -> tuple[uuid.UUID, SpoolSegment]:
    """A new recording's segment 0 with footage and a checkpoint."""
    recording = uuid.uuid4()
    first = spool.open_segment(SegmentStart(recording, 0, b"\0" * 32, True))
    first.write(b"segment 0 " * 5000)
    first.checkpoint()
    return recording, first


def fail_to_open(spool: Spool, point: FailurePoint, failure: str, start: SegmentStart) -> None:
    """Opening `start` fails: an fsync of its header gives EIO (the `.part` keeps a whole
    header), or there is no room (no file at all); then the daemon stops."""
    if failure == "io-error":
        point.failing = True
    else:
        point.space = FsSpace(total=2**30, free=0, block=4096)
        spool.ledger.refresh()
    with pytest.raises(SegmentAbandoned if failure == "io-error" else QuotaExceeded):
        spool.open_segment(start)
    spool.journal.close()


@pytest.mark.parametrize("failure", ["io-error", "no-room"])
def test_a_failed_open_at_a_roll_is_not_called_a_power_loss(tmp_path: Path, failure: str) -> None:
    """Segment n is sealed (not end of recording), then opening n+1 fails: an fsync of its
    header gives EIO (the `.part` keeps a whole header), or there is no room (no file at
    all). The next start must say the recording ended early, from the journal's record of
    the failed open, not claim a power cut."""
    point = FailurePoint()
    state = tmp_path / "state"
    spool, _ = make_spool(state, KEYS, fsync=point.fsync, space=lambda _: point.space)
    recording, first = begin(spool)
    sealed = first.seal(end_of_recording=False)
    fail_to_open(spool, point, failure, SegmentStart(recording, 1, sealed.digest, True))
    assert [p.name for p in state.glob("spool/*/*.part")] == (
        ["000001.part"] if failure == "io-error" else []
    )

    point.failing, point.space = False, FsSpace(total=2**30, free=2**30, block=4096)
    spool, _ = make_spool(state, KEYS)  # the next start (same boot: no power cut)
    report = reconcile(spool, KEYS.device)
    chain = chain_of(state, KEYS.device_public)
    assert chain.ending == "ended early (a segment could not be opened)", chain.faults
    assert [f.kind for f in chain.faults] == ["ended-early"]
    assert f"recording {recording} ended early: segment 1 could not be opened" in (
        chain.faults[0].message
    )
    last = chain.links[-1].verdict
    assert last.open_failed and last.sealed_torn and last.data_records == 0
    assert last.placeholder == (failure == "no-room")  # no file: recovery wrote one
    kinds = [e.kind for e in spool.journal.events()]
    assert kinds.count("segment_open_failed") == 1
    interrupted = [e.fields for e in spool.journal.events() if e.kind == "roll_interrupted"]
    assert [f["cause"] for f in interrupted] == (
        ["open_failed"] if report.rolls_interrupted else []
    )
    recovered = [e.fields for e in spool.journal.events() if e.kind == "torn_segment_recovered"]
    assert [f["open_failed"] for f in recovered] == ([True] if failure == "io-error" else [])
    assert spool.journal.verify(KEYS.device_public).ok


@pytest.mark.parametrize("failure", ["io-error", "no-room"])
def test_a_failed_open_after_a_torn_segment_is_not_called_a_power_loss(
    tmp_path: Path, failure: str
) -> None:
    """A checkpoint of segment n fails once (EIO): n is salvaged torn and the recording goes
    on; then opening n+1 fails. The torn n is not where the recording ended: the next start
    writes the open-failed placeholder after it (or seals n+1's `.part` so), and the chain
    reads "ended early", with n a torn segment in the middle, not "interrupted (power loss)"."""
    point = FailurePoint()
    state = tmp_path / "state"
    spool, _ = make_spool(state, KEYS, fsync=point.fsync, space=lambda _: point.space)
    recording, first = begin(spool)
    first.write(b"lost with the failed checkpoint " * 100)
    point.once = True
    with pytest.raises(SegmentAbandoned):
        first.checkpoint()
    assert first.salvaged is not None and first.salvaged.path.suffix == ".seg"
    fail_to_open(spool, point, failure, SegmentStart(recording, 1, first.salvaged.digest, True))

    point.failing, point.space = False, FsSpace(total=2**30, free=2**30, block=4096)
    spool, _ = make_spool(state, KEYS)  # the next start
    report = reconcile(spool, KEYS.device)
    chain = chain_of(state, KEYS.device_public)
    assert chain.ending == "ended early (a segment could not be opened)", chain.faults
    assert [f.kind for f in chain.faults] == ["torn-middle", "ended-early"]
    last = chain.links[-1].verdict
    assert last.header.segment_index == 1 and last.open_failed and last.data_records == 0
    assert last.header.prev_digest == first.salvaged.digest
    assert last.placeholder == (failure == "no-room")
    interrupted = [e.fields for e in spool.journal.events() if e.kind == "roll_interrupted"]
    assert [f["cause"] for f in interrupted] == (
        ["open_failed"] if report.rolls_interrupted else []
    )
    again = reconcile(spool, KEYS.device)  # idempotent
    assert again.rolls_interrupted == [] and again.torn_recovered == []
    assert spool.journal.verify(KEYS.device_public).ok


def test_a_failed_open_in_another_boot_does_not_explain_a_power_cut(tmp_path: Path) -> None:
    """The journal's record counts only for the boot that wrote segment n: an event naming
    the same segment from another boot (say, an earlier attempt) is not this roll's cause."""
    state = tmp_path / "state"
    spool, _ = make_spool(state, KEYS)
    recording, first = begin(spool)
    first.seal(end_of_recording=False)
    other_boot = {"recording": recording.hex, "index": 1, "error": "EIO", "boot": "0" * 32}
    with spool.journal.transaction() as db:  # as another boot would have written it
        append_event(db, KEYS.device, "segment_open_failed", other_boot)
    report = reconcile(spool, KEYS.device)
    assert report.rolls_interrupted
    chain = chain_of(state, KEYS.device_public)
    assert chain.ending == "interrupted (power loss)"


@pytest.mark.parametrize("mode", [0o022, 0o000])
def test_journal_files_are_private_whatever_the_umask(tmp_path: Path, mode: int) -> None:
    old = os.umask(mode)
    try:
        spool, _ = make_spool(tmp_path / "state")
        spool.journal.audit("marker", note="written under the umask")
        for suffix in ("", "-wal", "-shm"):
            path = Path(f"{spool.layout.journal}{suffix}")
            assert path.stat().st_mode & 0o777 == 0o600, path
    finally:
        os.umask(old)
    spool.journal.close()
    path = spool.layout.journal
    path.chmod(0o644)  # made by an older bodycamd: tightened when opened
    spool, _ = make_spool(tmp_path / "state")
    assert path.stat().st_mode & 0o777 == 0o600


def test_quarantine_never_overwrites(tmp_path: Path) -> None:
    spool, keys = make_spool(tmp_path / "state")
    layout = spool.layout
    names = []
    for content in (b"first unreadable file", b"second, same name"):
        part = layout.part_path(uuid.UUID(int=7), 0)
        part.parent.mkdir(exist_ok=True)
        part.write_bytes(content)
        names += reconcile(spool, keys.device).quarantined
    first = "quarantine/00000000000000000000000000000007-000000.part"
    assert names == [first, f"{first}.1"]
    kept = sorted(p.read_bytes() for p in layout.quarantine.iterdir())
    assert kept == [b"first unreadable file", b"second, same name"]


def test_a_corrupt_audit_row_does_not_stop_the_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Recovery reads the journal's failed opens at every start: an audit row whose fields
    are not JSON (or not an object) is logged and skipped, never raised, so the camera can
    still record; `audit verify` still names the row."""
    state = tmp_path / "state"
    spool, _ = make_spool(state, KEYS)
    recording, first = begin(spool)
    first.seal(end_of_recording=False)
    for _ in range(3):
        spool.journal.audit("segment_open_failed", recording=recording.hex, index=1, error="EIO")
    with spool.journal.transaction() as db:  # two of them edited on flash
        seqs = [row[0] for row in db.execute("SELECT seq FROM audit ORDER BY seq DESC LIMIT 2")]
        db.execute("UPDATE audit SET fields = ? WHERE seq = ?", ('{"recording": "', seqs[0]))
        db.execute("UPDATE audit SET fields = ? WHERE seq = ?", ("[1, 2]", seqs[1]))
    report = reconcile(spool, KEYS.device)
    assert len(report.rolls_interrupted) == 1
    skipped = [
        r.message for r in caplog.records if "segment_open_failed event ignored" in r.message
    ]
    assert len(skipped) == 2, skipped
    chain = chain_of(state, KEYS.device_public)
    assert chain.ending == "ended early (a segment could not be opened)"  # the intact row
    problems = spool.journal.verify(KEYS.device_public).problems
    for seq in seqs:
        assert f"event {seq} (segment_open_failed): contents do not match its hash (edited)" in (
            problems
        )
