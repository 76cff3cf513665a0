"""Virtual time for the uploader's tests: sleeping advances the clock and yields at once,
so backoffs of minutes run in microseconds and every wait is recorded for assertions."""

from __future__ import annotations

import asyncio


class VirtualClock:
    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return self.now

    def now_ns(self) -> int:
        return int(self.now * 1_000_000_000)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)
        await asyncio.sleep(0.002)  # lets real I/O run; proves nothing about timing
