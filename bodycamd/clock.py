"""Clocks: is wall-clock time trustworthy, and which boot are we in.

A Pi has no RTC, so wall time after boot may be wrong until NTP syncs. That is a health flag,
not a reason to refuse recording; every segment records whether the clock was synchronised.

The kernel is asked, not a daemon's flag file: whoever disciplines the clock (chrony, ntpd,
systemd-timesyncd, a GPS PPS driver) does it through adjtimex(2), and the kernel clears
STA_UNSYNC once a discipline has set the time and raises it again when the estimated maximum
error passes 16 s without an update. `adjtimex` with `modes = 0` only reads.

Monotonic time means nothing across a reboot, so every time we write names the boot it
belongs to: /proc/sys/kernel/random/boot_id, a random UUID the kernel draws at each boot.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

BOOT_ID_PATH = Path("/proc/sys/kernel/random/boot_id")
STA_UNSYNC = 0x0040
TIME_ERROR = 5  # adjtimex's return value while the clock is not synchronised


class Timex(ctypes.Structure):
    """The leading fields of `struct timex` (they come before any time_t, so their layout is
    the same on 32- and 64-bit ABIs); the padding covers the rest generously."""

    _fields_ = (
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("rest", ctypes.c_byte * 256),
    )


@dataclass(frozen=True)
class ClockState:
    synchronised: bool
    est_error_us: int  # the discipline's estimate of the clock's error
    max_error_us: int  # the kernel's bound on it (grows by 500 ppm while undisciplined)


@functools.cache
def _libc() -> ctypes.CDLL:
    """Looked up once: `find_library` runs `ldconfig -p` in a child process, and the device
    asks about the clock every second (an idle daemon spent most of its CPU there)."""
    return ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def _libc_adjtimex(timex: Timex) -> int:
    """glibc's adjtimex(), which makes the clock_adjtime(CLOCK_REALTIME) system call (the
    unit's seccomp filter must allow it: systemd/bodycamd.service)."""
    state: int = _libc().adjtimex(ctypes.byref(timex))
    if state < 0:
        error = ctypes.get_errno()
        raise OSError(error, f"adjtimex: {os.strerror(error)}")
    return state


def read_kernel_clock(adjtimex: Callable[[Timex], int] = _libc_adjtimex) -> ClockState:
    """adjtimex(2) with modes = 0 (read only); `adjtimex` is the seam tests replace. Raises
    OSError if the call fails (not Linux, a seccomp filter)."""
    timex = Timex()
    state = adjtimex(timex)
    synchronised = not (timex.status & STA_UNSYNC) and state != TIME_ERROR
    return ClockState(synchronised, int(timex.esterror), int(timex.maxerror))


def clock_synchronised(reader: Callable[[], ClockState] = read_kernel_clock) -> bool:
    """Whether the kernel says the wall clock is synchronised; False if it cannot be asked."""
    try:
        return reader().synchronised
    except OSError:
        return False


def boot_id(path: Path = BOOT_ID_PATH) -> bytes:
    """The 16 raw bytes of this boot's id; zeros where the kernel does not provide one
    (the segment format reads zeros as "boot unknown")."""
    try:
        return uuid.UUID(path.read_text().strip()).bytes
    except (OSError, ValueError):
        return b"\0" * 16
