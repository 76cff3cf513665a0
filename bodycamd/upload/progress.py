"""What the uploader is doing, for people: `bodycamctl uploads`, `status`, `watch`, the LEDs.

The worker updates a `ProgressTracker` (mutable, loop-only) as things happen; the tracker
hands immutable `UploadProgress` snapshots to its listener at most once a second (the
`flush` loop delivers a change that arrived within the second), so a fast loopback upload
does not flood the control socket's subscribers.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from .pacing import Clock, Sleep

UploadState = Literal["disabled", "idle", "paused", "uploading", "backoff"]
PUBLISH_INTERVAL = 1.0
RATE_WINDOW = 10.0  # seconds of history behind the rate and the ETA


@dataclass(frozen=True)
class UploadProgress:
    state: UploadState = "idle"
    reason: str = "not docked"  # why in this state, in words
    segments_left: int = 0  # on flash, awaiting upload or receipt
    bytes_left: int = 0
    no_receipt: int = 0  # fully sent, no receipt: they stay on flash
    rejected: int = 0  # refused by the server (422): they stay on flash, not sent again
    bytes_done: int = 0  # sent and acknowledged since the dock
    bytes_total: int = 0  # bytes_done + what was left to send when last counted
    rate: float = 0.0  # bytes per second over the last RATE_WINDOW seconds
    eta_seconds: float | None = None
    current: str | None = None  # "<recording>/<index>" being sent
    last_error: str | None = None  # the latest failure, kept after later successes
    failing: bool = False  # the latest attempt failed (the upload_error indicator)
    receipts: int = 0  # receipts verified (and segments deleted) since the daemon started
    clock_offset: float | None = None  # server minus device seconds, measured at the last dock

    @property
    def fraction(self) -> float | None:
        """0..1 while uploading, None otherwise (what the device's LED state takes)."""
        if self.state != "uploading" or self.bytes_total <= 0:
            return None
        return min(1.0, self.bytes_done / self.bytes_total)

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["fraction"] = self.fraction
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> UploadProgress:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def progress_bar(progress: UploadProgress, width: int = 30) -> str:
    """`[#########.........]  31%  12.0 MiB/s  ETA 0:42  <segment>` for the human form."""
    fraction = progress.fraction
    if fraction is None:
        return f"{progress.state}: {progress.reason}"
    filled = int(fraction * width)
    line = f"[{'#' * filled}{'.' * (width - filled)}] {fraction:4.0%}"
    line += f"  {progress.rate / 2**20:.1f} MiB/s"
    if progress.eta_seconds is not None:
        minutes, seconds = divmod(int(progress.eta_seconds), 60)
        line += f"  ETA {minutes}:{seconds:02d}"
    if progress.current:
        line += f"  {progress.current}"
    return line


class ProgressTracker:
    def __init__(
        self,
        clock: Clock,
        listener: Callable[[UploadProgress], None] | None = None,
    ) -> None:
        self._clock = clock
        self._listener = listener
        self.value = UploadProgress()
        self._published: UploadProgress | None = None
        self._published_at = -PUBLISH_INTERVAL
        self._samples: deque[tuple[float, int]] = deque()  # (time, bytes_done)

    def update(self, **fields: Any) -> None:
        self.value = dataclasses.replace(self.value, **fields)
        self._maybe_publish()

    def new_dock(self, bytes_left: int) -> None:
        self._samples.clear()
        self.update(bytes_done=0, bytes_total=bytes_left, rate=0.0, eta_seconds=None)

    def sent(self, amount: int) -> None:
        """Bytes acknowledged by the server."""
        now = self._clock()
        done = self.value.bytes_done + amount
        self._samples.append((now, done))
        while self._samples and now - self._samples[0][0] > RATE_WINDOW:
            self._samples.popleft()
        rate = 0.0
        if len(self._samples) > 1:
            (t0, b0), (t1, b1) = self._samples[0], self._samples[-1]
            rate = (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0
        total = max(self.value.bytes_total, done)
        eta = (total - done) / rate if rate > 0 else None
        self.update(bytes_done=done, bytes_total=total, rate=rate, eta_seconds=eta)

    def _maybe_publish(self) -> None:
        if self._listener is None or self.value == self._published:
            return
        now = self._clock()
        if now - self._published_at >= PUBLISH_INTERVAL:
            self._published, self._published_at = self.value, now
            self._listener(self.value)

    async def flush_loop(self, sleep: Sleep) -> None:
        """Deliver what changed within the last second; runs until cancelled."""
        while True:
            await sleep(PUBLISH_INTERVAL)
            self._maybe_publish()
