"""The bounded hop from the camera thread to the recorder (the pre-event buffer is in
preevent.py).

`PacketChannel.put` is called on the camera's thread: it decides there, under a lock, whether
the packet fits the byte bound (the whole-GOP drop rule lives only here), and queues it in an
`Inbox` that wakes the event loop once per batch (on a video frame, at most every 100 ms;
audio rides along), not once per packet. Everything else runs on the loop.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass

from ..camera import EncodedPacket, StreamKind
from ..hop import Inbox, LoopHop

# the loop is woken at most this often by a camera: ~10 wake-ups/s instead of one per frame
# (30) or per packet (77 at 1080p30 with AAC); footage waits this long at most in the inbox
COALESCE_SECONDS = 0.1


@dataclass
class Gap:
    """Footage the recorder could not keep: written to the audit trail."""

    start_us: int
    end_us: int
    frames: int
    bytes: int


class PacketChannel:
    """A queue bounded by bytes, filled from the camera's thread. When a packet does not fit,
    it and everything after it up to the next video keyframe is dropped (whole GOPs, so what
    is kept still decodes), and the gap is recorded.

    A packet counts against the bound from `put` until the consumer calls `done(packet)`
    after handling it, so the packet in hand is inside the bound too.
    """

    def __init__(self, max_bytes: int, hop: LoopHop) -> None:
        self.max_bytes = max_bytes
        self._inbox: Inbox[EncodedPacket] = Inbox(hop, coalesce_seconds=COALESCE_SECONDS)
        self._lock = threading.Lock()
        self._bytes = 0
        self._outstanding = 0  # queued or in hand
        self._empty = asyncio.Event()  # loop-only
        self._gap: Gap | None = None
        self._gaps: list[Gap] = []
        self.peak_bytes = 0
        # video frames put, kept or dropped: the camera's heartbeat. Audio does not count:
        # picamera2's audio thread goes on encoding when the sensor stalls (issue #17).
        self.received = 0
        self._closed = False

    @property
    def queued_bytes(self) -> int:
        return self._bytes

    @property
    def wakeups(self) -> int:
        return self._inbox.wakeups

    def put(self, packet: EncodedPacket) -> None:
        """Any thread; never blocks beyond the lock, never raises."""
        with self._lock:
            if packet.stream is StreamKind.VIDEO:
                self.received += 1
            fits = self._bytes + packet.size <= self.max_bytes
            if self._gap is not None:
                if packet.stream is StreamKind.VIDEO and packet.keyframe and fits:
                    self._gap.end_us = packet.pts_us
                    self._gaps.append(self._gap)
                    self._gap = None
                else:
                    self._count_drop(packet)
                    return
            elif not fits:
                self._gap = Gap(packet.pts_us, packet.pts_us, 0, 0)
                self._count_drop(packet)
                return
            self._bytes += packet.size
            self._outstanding += 1
            self.peak_bytes = max(self.peak_bytes, self._bytes)
            # inside the lock, so two producer threads (video, audio) keep put order
            self._inbox.push(packet, wake=packet.stream is StreamKind.VIDEO)

    def _count_drop(self, packet: EncodedPacket) -> None:
        assert self._gap is not None
        self._gap.end_us = packet.pts_us
        self._gap.bytes += packet.size
        if packet.stream is StreamKind.VIDEO:
            self._gap.frames += 1

    async def wait(self) -> bool:
        """Until a packet is queued (True) or the channel is closed and empty (False)."""
        return await self._inbox.wait()

    async def wait_received(self, count: int) -> None:
        """Until more than `count` video frames have been put (kept or dropped): the camera
        delivers. Returns early when the channel is closed."""
        while self.received <= count and not self._closed:
            await self._inbox.next_wakeup()

    def pop(self) -> EncodedPacket | None:
        """The next packet, or None: the consumer drains a batch without awaiting."""
        return self._inbox.pop()

    def done(self, packet: EncodedPacket) -> None:
        """The consumer has handled `packet`: its bytes leave the bound (on the loop)."""
        with self._lock:
            self._bytes -= packet.size
            self._outstanding -= 1
            empty = self._outstanding == 0
        if empty:
            self._empty.set()

    def nudge(self) -> None:
        """Have the consumer take packets queued without a wake-up (audio after the last
        video frame): the watchdog does this every tick, `wait_empty` at once."""
        self._inbox.nudge()

    async def wait_empty(self) -> None:
        """Until everything put so far has been handled."""
        while True:
            with self._lock:
                if self._outstanding == 0:
                    return
            self._inbox.nudge()
            self._empty.clear()
            await self._empty.wait()

    def close(self) -> None:
        """Shutdown: the consumer handles what is queued, then its `wait` returns False."""
        self._closed = True
        self._inbox.close()

    def discard(self) -> int:
        """Give up on what is still queued (shutdown took too long); the bytes dropped."""
        dropped = self._inbox.clear()
        with self._lock:
            size = sum(p.size for p in dropped)
            self._bytes -= size
            self._outstanding -= len(dropped)
            empty = self._outstanding == 0
        if empty:
            self._empty.set()
        return size

    def take_gaps(self) -> list[Gap]:
        with self._lock:
            gaps, self._gaps = self._gaps, []
        return gaps
