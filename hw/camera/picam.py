"""The picamera2 backend: the Pi camera module through Picamera2 and its H.264 encoder.

picamera2 calls `Output.outputframe(frame, keyframe, timestamp, packet, audio)` on its encoder
thread (and on its audio thread for audio). Our Output copies what it needs and posts it to
the event loop; it never blocks and never raises into picamera2's thread.

- Pi 4 and earlier: `H264Encoder` is the V4L2 hardware encoder; `frame` is a buffer that is
  reused after the call, so it is copied. `repeat=True` puts SPS/PPS before every IDR and
  `iperiod` sets one IDR per `keyframe_seconds`.
- Pi 5: picamera2 exports `LibavH264Encoder` under the same name (software libx264); it also
  passes the PyAV `packet`. The same Output serves both.
- Timestamps: picamera2 passes microseconds since the first frame and keeps the first frame's
  sensor timestamp (CLOCK_MONOTONIC, µs) in `encoder.firsttimestamp`; their sum is our pts.
- Audio: picamera2's encoder encodes AAC from PulseAudio/ALSA on its own thread and calls
  outputframe with `audio=True`, `frame=None` and the PyAV packet.
"""

from __future__ import annotations

import logging
from fractions import Fraction
from typing import Any

from bodycamd.camera import EncodedPacket, FaultSink, PacketSink, StreamKind, StreamParams
from bodycamd.config import CameraConfig

log = logging.getLogger(__name__)


def make_output_class() -> type[Any]:
    """Build our Output subclass on picamera2's real base class (imported only here)."""
    from picamera2.outputs import Output

    class LoopOutput(Output):  # type: ignore[misc]
        def __init__(self, post: PacketSink, encoder: Any) -> None:
            super().__init__()
            self._post = post
            self._encoder = encoder
            self.errors = 0

        def outputframe(
            self,
            frame: Any,
            keyframe: bool = True,
            timestamp: int | None = None,
            packet: Any = None,
            audio: bool = False,
        ) -> None:
            try:
                data = bytes(packet) if audio else bytes(frame)
                base = self._encoder.firsttimestamp or 0
                pts = base + (timestamp or 0)
                kind = StreamKind.AUDIO if audio else StreamKind.VIDEO
                self._post(EncodedPacket(kind, data, bool(keyframe), int(pts)))
            except Exception:  # an exception here would end picamera2's encoder thread
                self.errors += 1
                log.exception("dropping a frame picamera2 handed us")

    return LoopOutput


class Picamera2Camera:
    name = "picamera2"

    def __init__(self, config: CameraConfig, post: PacketSink, fault: FaultSink) -> None:
        from picamera2 import Picamera2
        from picamera2.encoders import H264Encoder

        self._config = config
        # picamera2 reports no encoder errors to its caller, so nothing calls `fault`: a
        # dead encoder is a stall, which the capture watchdog turns into a camera fault
        # (camera.stall_seconds).
        del fault
        self._camera = Picamera2()
        video = self._camera.create_video_configuration(
            main={"size": (config.width, config.height)},
            controls={"FrameRate": config.framerate},
        )
        self._camera.configure(video)
        iperiod = max(1, round(config.framerate * config.keyframe_seconds))
        self._encoder = H264Encoder(bitrate=config.bitrate, repeat=True, iperiod=iperiod)
        if config.audio:
            self._encoder.audio = True
            self._encoder.audio_input = {"file": config.audio_device, "format": config.audio_format}
            self._encoder.audio_output = {"codec_name": "aac"}
        self._output = make_output_class()(post, self._encoder)
        self._params = StreamParams(
            config.width,
            config.height,
            Fraction(config.framerate),
            audio_codec="aac" if config.audio else None,
        )

    @property
    def params(self) -> StreamParams:
        return self._params

    def start(self) -> None:
        self._camera.start_recording(self._encoder, self._output)

    def stop(self) -> None:
        try:
            self._camera.stop_recording()
        finally:
            self._camera.close()
