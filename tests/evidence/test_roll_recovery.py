"""A power cut at every fsync of a segment roll, through the real spool and journal: the
start-up reconciliation leaves a chain that reads "interrupted (power loss)", never
"missing" (issue #11, item 1)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from bodycamd.evidence.chain import ChainLink, assess_chain
from bodycamd.evidence.keys import create_device_key, write_evidence_key_pair
from bodycamd.evidence.reader import scan_segment
from bodycamd.storage.reconcile import reconcile
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
