"""Time-based policy of the uploader, on an injected clock so tests run in virtual time:
exponential backoff with jitter, and a token bucket for `upload.max_rate`."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

Clock = Callable[[], float]
MIN_PACE_SLEEP = 0.001  # a float clock far from zero cannot advance by less
Sleep = Callable[[float], Awaitable[None]]


@dataclass
class Backoff:
    """The n-th consecutive failure waits uniform [d/2, d], d = min(high, low·2ⁿ⁻¹), never
    less than `low` nor the server's Retry-After, and never more than `high`
    (`upload.retry_max`): a Retry-After of a year (or of 10¹¹ s, which overflowed the
    journal's next-attempt time) from a proxy must not park footage (docs/upload.md §5)."""

    low: float = 1.0
    high: float = 300.0
    rng: random.Random | None = None
    failures: int = 0

    def next_delay(self, retry_after: float | None = None) -> float:
        self.failures += 1
        ceiling = float(min(self.high, self.low * 2 ** (self.failures - 1)))
        rng = self.rng or random
        delay: float = max(self.low, rng.uniform(ceiling / 2, ceiling))
        return min(self.high, max(delay, retry_after or 0.0))

    def reset(self) -> None:
        self.failures = 0


def retry_delay(attempts: int, low: float, high: float) -> float:
    """How long a segment waits before it is asked about again after `attempts` tries."""
    return float(min(high, low * 2 ** max(0, attempts)))


class TokenBucket:
    """At most `rate` bytes per second on average, bursts up to `burst` bytes. rate 0 means
    unlimited. `take(n)` sleeps (injected) until n bytes of budget exist, then spends them."""

    def __init__(self, rate: float, clock: Clock, sleep: Sleep, burst: float | None = None):
        self.rate = rate
        self._clock = clock
        self._sleep = sleep
        self.burst = burst if burst is not None else max(rate, 256 * 1024)
        self._tokens = self.burst
        self._at = clock()

    async def take(self, amount: int) -> None:
        if self.rate <= 0:
            return
        while True:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
            if self._tokens >= amount or (self._tokens >= self.burst and amount > self.burst):
                self._tokens -= amount  # a block larger than the burst may go into debt
                return
            missing = min(amount, self.burst) - self._tokens
            await self._sleep(max(missing / self.rate, MIN_PACE_SLEEP))
