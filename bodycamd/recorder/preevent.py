"""The pre-event buffer: the last seconds of whole GOPs before the record button, in RAM
only (DESIGN §3: plaintext never touches flash), bounded by bytes as well as time."""

from __future__ import annotations

from collections import deque

from ..camera import EncodedPacket, StreamKind


class PreEventBuffer:
    """The last `seconds` of whole GOPs, in RAM only, bounded by bytes as well as time.

    Kept: every GOP whose keyframe is no older than `seconds` before the newest packet, plus
    the one in progress. So a recording can begin at the oldest keyframe inside the window.
    Audio is kept only when `keep_audio` is set (the leading cameras buffer video only).
    """

    def __init__(self, seconds: float, max_bytes: int, keep_audio: bool) -> None:
        self._window_us = int(seconds * 1_000_000)
        self._max_bytes = max_bytes
        self._keep_audio = keep_audio
        self._gops: deque[list[EncodedPacket]] = deque()
        self._bytes = 0

    @property
    def bytes(self) -> int:
        return self._bytes

    @property
    def enabled(self) -> bool:
        return self._window_us > 0

    def add(self, packet: EncodedPacket) -> None:
        if not self.enabled:
            return
        if packet.stream is StreamKind.AUDIO:
            if not self._keep_audio or not self._gops:
                return
        elif packet.keyframe:
            self._gops.append([])
        elif not self._gops:
            return  # no keyframe yet to start a GOP
        self._gops[-1].append(packet)
        self._bytes += packet.size
        self._trim(packet.pts_us)

    def _trim(self, now_us: int) -> None:
        while len(self._gops) > 1 and (
            self._gops[0][0].pts_us < now_us - self._window_us or self._bytes > self._max_bytes
        ):
            self._bytes -= sum(p.size for p in self._gops.popleft())

    def drain(self, now_us: int) -> list[EncodedPacket]:
        """Everything from the oldest keyframe inside the window, then empty the buffer."""
        self._trim(now_us)
        packets = [p for gop in self._gops for p in gop]
        self.clear()
        return packets

    def clear(self) -> None:
        self._gops.clear()
        self._bytes = 0
