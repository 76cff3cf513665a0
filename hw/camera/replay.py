"""The file camera: replays the packets of an existing recording (no re-encode), paced in real
time and looping, for rehearsals with real footage and for benchmarks (unpaced)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av

from bodycamd.camera import EncodedPacket, FaultSink, PacketSink, StreamKind, StreamParams
from bodycamd.config import CameraConfig

from .threaded import ThreadedCamera

log = logging.getLogger(__name__)


class FileCamera(ThreadedCamera):
    name = "file"

    def __init__(
        self,
        config: CameraConfig,
        post: PacketSink,
        fault: FaultSink,
        *,
        clock_ns: Callable[[], int] = time.monotonic_ns,
        loops: int | None = None,
    ) -> None:
        super().__init__("file-camera", fault)
        self._path = Path(config.file)
        if not config.file or not self._path.is_file():
            raise FileNotFoundError(f"camera.file: {config.file or '(empty)'}: no such video file")
        self._config = config
        self._post = post
        self._clock_ns = clock_ns
        self._loops = loops
        with av.open(str(self._path)) as container:
            video = container.streams.video[0]
            audio = container.streams.audio[0] if container.streams.audio else None
            rate = video.average_rate or Fraction(config.framerate)
            self._params = StreamParams(
                width=video.codec_context.width,
                height=video.codec_context.height,
                framerate=Fraction(rate),
                video_codec=video.codec_context.name,
                audio_codec=audio.codec_context.name if audio and config.audio else None,
                audio_rate=audio.codec_context.sample_rate if audio else 48_000,
                audio_channels=audio.codec_context.channels if audio else 1,
                audio_extradata=bytes(audio.codec_context.extradata)
                if audio and audio.codec_context.extradata
                else None,
            )

    def _produce(self, stopping: threading.Event) -> None:
        start_us = self._clock_ns() // 1000
        offset_us = 0
        loop = 0
        while not stopping.is_set() and (self._loops is None or loop < self._loops):
            last_us = 0
            with av.open(str(self._path)) as container:
                streams: list[av.stream.Stream] = [container.streams.video[0]]
                if self._params.audio_codec and container.streams.audio:
                    streams.append(container.streams.audio[0])
                first: dict[int, int] = {}
                for packet in container.demux(streams):
                    if stopping.is_set():
                        return
                    if packet.pts is None or packet.size == 0:
                        continue
                    base = first.setdefault(packet.stream.index, packet.pts)
                    rel_us = int((packet.pts - base) * packet.time_base * 1_000_000)
                    pts_us = start_us + offset_us + rel_us
                    last_us = max(last_us, rel_us)
                    if self._config.realtime:
                        delay = pts_us / 1e6 - self._clock_ns() / 1e9
                        if delay > 0 and stopping.wait(delay):
                            return
                    kind = StreamKind.VIDEO if packet.stream.type == "video" else StreamKind.AUDIO
                    self._post(EncodedPacket(kind, bytes(packet), bool(packet.is_keyframe), pts_us))
            offset_us += last_us + int(1_000_000 / self._params.framerate)
            loop += 1
