"""A filesystem that really fills up (ENOSPC from the kernel, not from our quota).

The test mounts a 1 MiB tmpfs (root can; CI runs as root). The quota ledger is told the disk
is huge, so nothing stops the writer before the kernel does: that is the situation of a card
filled behind the daemon's back, which the quota normally prevents.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from bodycamd.evidence.reader import read_segment
from bodycamd.storage.quota import FsSpace
from tests.media import count_frames, make_ts
from tests.storage.helpers import audit_kinds, make_spool, record

FOOTAGE = make_ts(60, size=(320, 240)) * 4


@contextlib.contextmanager
def small_filesystem(where: Path, size: str) -> Iterator[Path]:
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a size-limited tmpfs here: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def blind(_: Path) -> FsSpace:
    return FsSpace(total=2**40, free=2**40, block=4096)


def test_real_enospc_seals_what_fits(tmp_path: Path) -> None:
    with small_filesystem(tmp_path / "card", "1m") as card:
        spool, keys = make_spool(card / "state", quota="100%", space=blind, ballast=128 * 1024)
        assert (card / "state" / "ballast").stat().st_blocks * 512 >= 128 * 1024
        recording = record(spool, FOOTAGE)
        assert "the filesystem is full" in recording.stopped_by
        rows = spool.journal.segments()
        assert rows, "every segment, the salvaged last one included, is journalled"
        assert rows[-1].torn and all(not r.torn for r in rows[:-1])
        assert all(r.state == "sealed" for r in rows)
        plaintext = b""
        for row in rows:
            data, _verdict = read_segment(
                card / "state" / row.path, keys.evidence, keys.device_public
            )
            plaintext += data
        assert FOOTAGE.startswith(plaintext) and count_frames(plaintext) > 0
        events = audit_kinds(spool)
        assert "segment_abandoned" in events
        assert not (card / "state" / "ballast").exists()  # spent on sealing
        spool.journal.close()
