"""Backoff, the token bucket and the once-a-second progress, on a virtual clock."""

from __future__ import annotations

import random

from bodycamd.upload.pacing import Backoff, TokenBucket, retry_delay
from bodycamd.upload.progress import ProgressTracker, UploadProgress, progress_bar

from .vclock import VirtualClock


def test_backoff_doubles_with_jitter_between_bounds() -> None:
    backoff = Backoff(1.0, 300.0, random.Random(1))
    delays = [backoff.next_delay() for _ in range(12)]
    for n, delay in enumerate(delays, start=1):
        ceiling = min(300.0, 2.0 ** (n - 1))
        assert max(1.0, ceiling / 2) <= delay <= ceiling
    assert delays[-1] >= 150.0
    assert Backoff(1.0, 300.0).next_delay(retry_after=120.0) == 120.0  # Retry-After wins
    # ...up to retry_max: a year, or more seconds than the journal's clock can hold, parks
    # nothing (10**11 s once overflowed the next-attempt time into a crash on every try)
    assert backoff.next_delay(retry_after=365 * 86400.0) == 300.0
    assert backoff.next_delay(retry_after=1e11) == 300.0
    backoff.reset()
    assert backoff.next_delay() == 1.0


def test_retry_delay_doubles_to_the_ceiling() -> None:
    assert [retry_delay(a, 1.0, 300.0) for a in (0, 1, 2, 8, 9, 30)] == [
        1.0, 2.0, 4.0, 256.0, 300.0, 300.0
    ]  # fmt: skip


async def test_token_bucket_holds_the_rate() -> None:
    clock = VirtualClock()
    bucket = TokenBucket(100_000, clock.monotonic, clock.sleep, burst=10_000)
    start = clock.now
    for _ in range(100):
        await bucket.take(10_000)
    # 1 MB at 100 kB/s with a 10 kB burst: 9.9 s of virtual time
    assert 9.8 <= clock.now - start <= 10.1


async def test_unlimited_bucket_never_sleeps() -> None:
    clock = VirtualClock()
    bucket = TokenBucket(0, clock.monotonic, clock.sleep)
    await bucket.take(10**9)
    assert clock.sleeps == []


async def test_progress_published_at_most_once_a_second() -> None:
    clock = VirtualClock()
    published: list[tuple[float, UploadProgress]] = []
    tracker = ProgressTracker(clock.monotonic, lambda p: published.append((clock.now, p)))
    tracker.update(state="uploading", current="rec/000000")
    tracker.new_dock(1000)
    for _ in range(50):
        tracker.sent(10)  # many acknowledgements within the same instant
    assert len(published) == 1
    clock.now += 0.5
    tracker.sent(10)
    assert len(published) == 1  # not yet a second
    await clock.sleep(0.6)
    tracker.sent(10)
    times = [t for t, _ in published]
    assert len(published) == 2 and times[1] - times[0] >= 1.0
    last = tracker.value
    assert last.bytes_done == 520 and last.fraction == 0.52
    assert last.rate > 0 and last.eta_seconds is not None


def test_progress_bar_and_json() -> None:
    progress = UploadProgress(
        state="uploading", bytes_done=3 * 2**20, bytes_total=12 * 2**20,
        rate=2 * 2**20, eta_seconds=4.5, current="ab/000003",
    )  # fmt: skip
    assert progress_bar(progress, width=8) == "[##......]  25%  2.0 MiB/s  ETA 0:04  ab/000003"
    assert progress.to_json()["fraction"] == 0.25
    idle = UploadProgress(state="idle", reason="everything uploaded")
    assert progress_bar(idle) == "idle: everything uploaded"
