"""Quota accounting: how much flash footage uses, how much more fits, and for how long.

Usage is counted as *allocated* bytes (st_blocks x 512), which is what the card actually
loses, not file sizes. It is kept live without rescanning: an open segment's allocation is
estimated as its size rounded up to the filesystem block, then settled with one stat when the
segment is sealed; a full scan happens only at start-up (reconcile).

Footage may use at most `min(quota - used, free space - reserve)`. The reserve keeps room for
the journal and the filesystem, and is what lets a recording that hits the limit still seal
its last segment: a writer asks `check(extra)` before each write and is refused *before* the
limit, with `SEAL_MARGIN` left for the final record and footer.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from ..errors import QuotaExceeded
from ..evidence.writer import bytes_to_seal

# The recorder hands the writer at most this much at a time (between checkpoints).
WRITE_BATCH = 256 * 1024
# What sealing may still need after the last refused write: that batch (kept, not dropped)
# and everything the writer adds to seal (the writer's own answer).
SEAL_MARGIN = bytes_to_seal(WRITE_BATCH)


@dataclass(frozen=True)
class FsSpace:
    total: int
    free: int  # available to unprivileged users
    block: int


def statvfs_space(path: Path) -> FsSpace:
    st = os.statvfs(path)
    return FsSpace(st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize, st.f_frsize)


def allocated(path: Path) -> int:
    return path.stat().st_blocks * 512


@dataclass(frozen=True)
class StorageFigures:
    used: int
    limit: int  # the quota in bytes
    available: int  # more footage that fits now
    minutes_left: float
    low: bool
    full: bool


class QuotaLedger:
    """Live usage of the spool and ready directories. Writers grow it from worker threads
    while the loop reads figures, so every access holds one small lock."""

    def __init__(
        self,
        root: Path,
        quota: Callable[[int], int],
        reserve: int,
        *,
        low_minutes: float,
        min_free_minutes: float,
        bitrate: int,
        space: Callable[[Path], FsSpace] = statvfs_space,
    ) -> None:
        self._root = root
        self._space_fn = space
        self._space = space(root)
        self._limit = quota(self._space.total)
        self._reserve = reserve
        self._low_minutes = low_minutes
        self._min_free_minutes = min_free_minutes
        self.bitrate = bitrate  # the assumed figure until footage has been measured
        self.bitrate_measured = False
        self._footage_bytes = 0
        self._footage_seconds = 0.0
        self._settled = 0  # allocation of files not being written
        self._open: dict[Path, int] = {}  # estimated allocation of files being written
        self._since_refresh = 0  # growth that the last free-space reading does not show yet
        self._tracked: tuple[Path, ...] = ()  # the journal's files: counted, never written here
        self._tracked_bytes = 0
        # space available when footage was last refused: until more than that is free, the
        # same write would be refused again, so the card is full for the recorder even a
        # little above SEAL_MARGIN (the flag and the stop reason agree)
        self._refused_at: int | None = None
        self._lock = threading.RLock()

    @property
    def used(self) -> int:
        with self._lock:
            return self._settled + sum(self._open.values()) + self._tracked_bytes

    def reconcile(self, files: Iterable[Path]) -> None:
        """Start-up: count every file from scratch."""
        total = sum(allocated(p) for p in files)
        with self._lock:
            self._open.clear()
            self._settled = total
        self.refresh()

    def refresh(self) -> None:
        """Re-read free space: at checkpoints (every durability interval while recording), before
        every decision to start a recording or a segment, and on the storage component's
        timer while idle; not per write."""
        space = self._space_fn(self._root)
        tracked = sum(allocated(path) for path in self._tracked if path.exists())
        with self._lock:
            self._space = space
            self._since_refresh = 0
            self._tracked_bytes = tracked

    def count_also(self, paths: Iterable[Path]) -> None:
        """Count these files (the journal and its -wal/-shm) against the quota too, measured
        at every refresh: the audit trail lives on the same flash as the footage."""
        self._tracked = tuple(paths)
        self.refresh()

    def available(self) -> int:
        with self._lock:
            by_quota = self._limit - self.used
            by_disk = self._space.free - self._since_refresh - self._reserve
            return max(0, min(by_quota, by_disk))

    def observe_footage(self, size: int, seconds: float) -> None:
        """A sealed segment of `size` bytes held `seconds` of footage: from now on minutes
        left are at the bitrate measured over all footage sealed since start (the config's
        assumed bitrate only until then). Segments under a second say too little."""
        if seconds < 1.0 or size <= 0:
            return
        with self._lock:
            self._footage_bytes += size
            self._footage_seconds += seconds
            self.bitrate = max(1, round(self._footage_bytes * 8 / self._footage_seconds))
            self.bitrate_measured = True

    def figures(self) -> StorageFigures:
        available = self.available()
        with self._lock:
            # cleared once a batch more than then is free (an upload's deletion; not the
            # few blocks a fresh statvfs reading finds that the estimate had counted)
            if self._refused_at is not None and available > self._refused_at + WRITE_BATCH:
                self._refused_at = None
            refused = self._refused_at is not None
        minutes = available * 8 / self.bitrate / 60
        return StorageFigures(
            used=self.used,
            limit=self._limit,
            available=available,
            minutes_left=minutes,
            low=minutes < self._low_minutes,
            full=available <= SEAL_MARGIN or refused,
        )

    def check_start(self) -> None:
        """Refuse a new recording unless `min_free_minutes` of footage fit, by free space
        read now (a decision never rests on a stale reading)."""
        self.refresh()
        figures = self.figures()
        if figures.full or figures.minutes_left < self._min_free_minutes:
            raise QuotaExceeded(
                f"storage: only {figures.minutes_left:.1f} min of footage fit "
                f"({figures.available // 2**20} MiB); a recording needs at least "
                f"{self._min_free_minutes:g} min"
            )

    def check(self, path: Path, new_size: int) -> None:
        """Refuse growth of an open file to `new_size` bytes if it would eat the seal margin."""
        with self._lock:
            growth = self._estimate(new_size) - self._open.get(path, 0)
            refuse = growth > 0 and self.available() - growth < SEAL_MARGIN
            if refuse:
                self._refused_at = self.available()
        if refuse:
            raise QuotaExceeded(
                f"{path.name}: storage full: {self.used // 2**20} MiB used of "
                f"{self._limit // 2**20} MiB quota, {self._space.free // 2**20} MiB free on "
                "the filesystem"
            )

    def grow(self, path: Path, new_size: int) -> None:
        estimate = self._estimate(new_size)
        with self._lock:
            self._since_refresh += max(0, estimate - self._open.get(path, 0))
            self._open[path] = estimate

    def settle(self, old: Path, new: Path | None) -> None:
        """An open file was sealed (renamed to `new`) or removed (`new` is None)."""
        size = 0 if new is None else allocated(new)
        with self._lock:
            self._open.pop(old, None)
            self._settled += size

    def release(self, nbytes: int) -> None:
        with self._lock:
            self._settled = max(0, self._settled - nbytes)

    def add(self, path: Path) -> None:
        size = allocated(path)
        with self._lock:
            self._settled += size

    def _estimate(self, size: int) -> int:
        block = self._space.block or 4096
        return -(-size // block) * block
