"""Dock sensing: is the camera in its dock? Three sources, one debounce.

- "gpio": a dock-contact input (hw/gpio);
- "power_supply": a power-supply class file such as /sys/class/power_supply/usb/online
  (1 when external power is present: a dock that charges);
- "endpoint": the upload endpoint answers a TCP connect (benches without a dock contact).

Whatever the source, a level must hold for `stable_seconds` (2 s by default) before it counts,
so a camera wobbling in the cradle does not dock and undock ten times.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from pathlib import Path


class DockDebouncer:
    """Pure: raw levels at times in, settled changes out."""

    def __init__(self, stable_seconds: float, initial: bool = False) -> None:
        self._stable = stable_seconds
        self.settled = initial
        self._candidate = initial
        self._since = 0.0

    def observe(self, level: bool, t: float) -> bool | None:
        """Feed a raw level; returns the new settled level when it changes, else None."""
        if level != self._candidate:
            self._candidate = level
            self._since = t
        return self.poll(t)

    def poll(self, t: float) -> bool | None:
        if self._candidate != self.settled and t - self._since >= self._stable:
            self.settled = self._candidate
            return self.settled
        return None

    @property
    def pending(self) -> bool | None:
        """The level being waited out (True: docking, False: undocking), or None."""
        return None if self._candidate == self.settled else self._candidate

    @property
    def pending_until(self) -> float | None:
        return None if self._candidate == self.settled else self._since + self._stable


def power_supply_online(path: Path) -> bool:
    try:
        return path.read_text().strip() == "1"
    except OSError:
        return False


PROBE_SECONDS = 2.0


async def endpoint_reachable(host: str, port: int) -> bool:
    try:
        async with asyncio.timeout(PROBE_SECONDS):
            _, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def poll_dock(
    read: Callable[[], Awaitable[bool]],
    debouncer: DockDebouncer,
    on_change: Callable[[bool], Awaitable[None]],
    *,
    interval: float,
    clock: Callable[[], float],
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """For the file and endpoint sources: sample, debounce, report; runs until cancelled."""
    while True:
        settled = debouncer.observe(await read(), clock())
        if settled is not None:
            await on_change(settled)
        await sleep(interval)
