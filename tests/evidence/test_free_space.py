"""Free space never goes stale (issue #11, item 8): it is re-read before every decision and
on the storage timer, storage_full clears when space returns, and the ballast comes back."""

from __future__ import annotations

from pathlib import Path

import pytest

from bodycamd.errors import QuotaExceeded
from bodycamd.storage.quota import FsSpace
from tests.storage.helpers import make_spool, storage_for


class Disk:
    """Free space as statvfs would report it; the test fills and frees the disk."""

    def __init__(self) -> None:
        self.free = 2**30

    def __call__(self, path: Path) -> FsSpace:
        return FsSpace(total=2**40, free=self.free, block=4096)


async def test_full_then_freed_while_idle(tmp_path: Path) -> None:
    disk = Disk()
    spool, _ = make_spool(tmp_path / "state", space=disk, reserve="8MiB", ballast=4 * 2**20)
    storage = storage_for(spool)
    await storage.check_thresholds()
    assert "storage_full" not in storage.health()

    disk.free = 6 * 2**20  # something else filled the card while the camera was idle
    with pytest.raises(QuotaExceeded):  # the decision reads the disk now
        await storage.check_start()
    assert "storage_full" in storage.health()
    assert not await storage.has_room_for_segment(0)
    await storage.refresh_space(4 * 2**20)  # the timer's tick: the change is audited
    spool.release_ballast()  # as the seal path does on ENOSPC

    disk.free = 2**30  # space freed behind our back: no checkpoint, no restart
    await storage.refresh_space(4 * 2**20)
    assert "storage_full" not in storage.health()
    await storage.check_start()
    assert spool.layout.ballast.stat().st_size == 4 * 2**20  # the ballast is back
    kinds = [(e.kind, e.fields.get("full")) for e in spool.journal.events()]
    assert ("storage_thresholds", True) in kinds and ("storage_thresholds", False) in kinds
