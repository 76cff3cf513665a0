"""Clocks: is wall-clock time trustworthy, and the time sources the daemon uses.

A Pi has no RTC, so wall time after boot may be wrong until NTP syncs. That is a health flag,
not a reason to refuse recording; every segment records whether the clock was synchronised.
systemd-timesyncd creates /run/systemd/timesync/synchronized once it has synchronised (the
same fact `timedatectl` reports as NTPSynchronized=yes).
"""

from __future__ import annotations

from pathlib import Path

TIMESYNC_FLAG = Path("/run/systemd/timesync/synchronized")


def clock_synchronised(flag: Path = TIMESYNC_FLAG) -> bool:
    return flag.exists()
