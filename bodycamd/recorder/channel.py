"""The bounded hop from the camera thread to the recorder (the pre-event buffer is in
preevent.py).

It lives on the event loop. The camera thread never touches it directly: it schedules
`PacketChannel.put` with `loop.call_soon_threadsafe`, which is the only safe way to wake an
asyncio consumer from another thread.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass

from ..camera import EncodedPacket, StreamKind


@dataclass
class Gap:
    """Footage the recorder could not keep: written to the audit trail."""

    start_us: int
    end_us: int
    frames: int
    bytes: int


class PacketChannel:
    """A queue bounded by bytes. When a packet does not fit, it and everything after it up
    to the next video keyframe is dropped (whole GOPs, so what is kept still decodes), and
    the gap is recorded."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._queue: deque[EncodedPacket] = deque()
        self._bytes = 0
        self._wakeup = asyncio.Event()
        self._empty = asyncio.Event()
        self._empty.set()
        self._gap: Gap | None = None
        self._gaps: list[Gap] = []
        self.peak_bytes = 0

    @property
    def queued_bytes(self) -> int:
        return self._bytes

    def put(self, packet: EncodedPacket) -> None:
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
        self._queue.append(packet)
        self._bytes += packet.size
        self.peak_bytes = max(self.peak_bytes, self._bytes)
        self._empty.clear()
        self._wakeup.set()

    def _count_drop(self, packet: EncodedPacket) -> None:
        assert self._gap is not None
        self._gap.end_us = packet.pts_us
        self._gap.bytes += packet.size
        if packet.stream is StreamKind.VIDEO:
            self._gap.frames += 1

    async def get(self) -> EncodedPacket:
        while not self._queue:
            self._wakeup.clear()
            await self._wakeup.wait()
        packet = self._queue.popleft()
        self._bytes -= packet.size
        return packet

    def task_done(self) -> None:
        """The consumer has handled what it took; wakes `wait_empty` once nothing is left."""
        if not self._queue:
            self._empty.set()

    async def wait_empty(self) -> None:
        await self._empty.wait()

    def take_gaps(self) -> list[Gap]:
        gaps, self._gaps = self._gaps, []
        return gaps
