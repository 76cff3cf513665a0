"""Clock sync comes from the kernel (adjtimex), whoever disciplines the clock."""

from __future__ import annotations

import errno
from collections.abc import Callable
from pathlib import Path

from bodycamd.clock import (
    STA_UNSYNC,
    TIME_ERROR,
    ClockState,
    Timex,
    boot_id,
    clock_synchronised,
    read_kernel_clock,
)


def kernel(
    status: int, state: int = 0, esterror: int = 0, maxerror: int = 0
) -> Callable[[Timex], int]:
    def adjtimex(timex: Timex) -> int:
        assert timex.modes == 0  # read only, never a change to the clock
        timex.status, timex.esterror, timex.maxerror = status, esterror, maxerror
        return state

    return adjtimex


def test_synchronised_when_the_kernel_says_so() -> None:
    # chrony/ntpd/timesyncd leave STA_PLL (0x0001) set and STA_UNSYNC clear
    state = read_kernel_clock(kernel(0x0001, esterror=1200, maxerror=45_000))
    assert state == ClockState(True, 1200, 45_000)
    assert clock_synchronised(lambda: state)


def test_unsynchronised_flag_or_time_error() -> None:
    assert not read_kernel_clock(kernel(STA_UNSYNC)).synchronised
    assert not read_kernel_clock(kernel(0, state=TIME_ERROR)).synchronised


def test_a_kernel_that_cannot_be_asked_reads_as_unsynchronised() -> None:
    def refused() -> ClockState:
        raise OSError(errno.EPERM, "adjtimex: Operation not permitted")

    assert clock_synchronised(refused) is False


def test_the_real_kernel_answers() -> None:
    state = read_kernel_clock()
    assert state.max_error_us >= 0 and isinstance(state.synchronised, bool)


def test_boot_id(tmp_path: Path) -> None:
    assert len(boot_id()) == 16 and any(boot_id())
    fake = tmp_path / "boot_id"
    fake.write_text("9ba52170-62ca-4fe1-b244-e532f6ffacd9\n")
    assert boot_id(fake).hex() == "9ba5217062ca4fe1b244e532f6ffacd9"
    assert boot_id(tmp_path / "absent") == b"\0" * 16
