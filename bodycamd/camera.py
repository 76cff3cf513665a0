"""The camera seam: what every camera backend (hw/camera) gives the recorder.

A backend encodes on its own thread (picamera2's encoder thread, or ours for the synthetic
and replay backends) and hands each packet to `post`, which the recorder provides and which
is safe to call from any thread: it copies nothing and blocks nothing, it only puts the
packet into the byte-bounded channel, which wakes the event loop once per batch
(`bodycamd/hop.py`'s Inbox), not once per packet.

Timestamps are microseconds on CLOCK_MONOTONIC (the sensor's clock on a Pi), so video, audio
and the daemon's own events share one time line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from fractions import Fraction
from typing import Protocol


class StreamKind(Enum):
    VIDEO = "video"
    AUDIO = "audio"


@dataclass(frozen=True, slots=True)
class EncodedPacket:
    stream: StreamKind
    data: bytes
    keyframe: bool
    pts_us: int  # CLOCK_MONOTONIC microseconds
    duration_us: int = 0

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass(frozen=True)
class StreamParams:
    width: int
    height: int
    framerate: Fraction
    video_codec: str = "h264"
    audio_codec: str | None = "aac"
    audio_rate: int = 48_000
    audio_channels: int = 1
    audio_extradata: bytes | None = None  # AudioSpecificConfig for AAC, when the codec has one

    def describe(self) -> dict[str, object]:
        return {
            "video": {
                "codec": self.video_codec,
                "width": self.width,
                "height": self.height,
                "framerate": str(self.framerate),
            },
            "audio": None
            if self.audio_codec is None
            else {
                "codec": self.audio_codec,
                "rate": self.audio_rate,
                "channels": self.audio_channels,
            },
        }


PacketSink = Callable[[EncodedPacket], None]
FaultSink = Callable[[BaseException], None]


class Camera(Protocol):
    """One camera backend. `start` begins delivering packets to the sink given at
    construction; `stop` stops and joins every thread it started (the encoder's thread
    included) and may block, so the daemon calls it off the event loop."""

    name: str

    @property
    def params(self) -> StreamParams: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...
