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
- Audio: picamera2's encoder encodes AAC from ALSA on its own thread and calls outputframe
  with `audio=True`, `frame=None` and the PyAV packet (hw/camera/audio.py says which device
  and what is declared).

Failure paths, each of which used to hold a resource until the process exited:
- `Encoder.start` starts the video encoder (on a Pi 4 a V4L2 thread, /dev/video11 and its
  buffers) *before* it opens the microphone. If the microphone fails, the encoder is left
  running and unknown to Picamera2. We stop it (and close whatever audio container opened),
  then start again without audio: video records, and `audio_fault` says why there is no
  sound. A new encoder is made for every start, so a retry never reuses a half-started one.
- A `configure` that raises closes the camera, so the next attempt can acquire it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

from bodycamd.camera import EncodedPacket, FaultSink, PacketSink, StreamKind, StreamParams
from bodycamd.config import CameraConfig

from .audio import (
    ASOUND_CARDS,
    audio_specific_config,
    capture_device,
    picamera2_audio,
    use_system_alsa_config,
)

log = logging.getLogger(__name__)

AF_MODE_CONTINUOUS = 2  # libcamera's controls.AfModeEnum.Continuous


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


def camera_controls(config: CameraConfig, offered: dict[str, Any]) -> dict[str, Any]:
    """Controls for the video configuration: the frame rate, and continuous autofocus where
    the camera offers AfMode (Camera Module 3; fixed-focus modules do not)."""
    controls: dict[str, Any] = {"FrameRate": config.framerate}
    if config.autofocus and "AfMode" in offered:
        controls["AfMode"] = AF_MODE_CONTINUOUS
    return controls


class Picamera2Camera:
    name = "picamera2"

    def __init__(
        self,
        config: CameraConfig,
        post: PacketSink,
        fault: FaultSink,
        *,
        picamera2_class: Callable[[], Any] | None = None,
        encoder_class: Callable[..., Any] | None = None,
        sound_cards: Path = ASOUND_CARDS,
    ) -> None:
        if picamera2_class is None or encoder_class is None:
            from picamera2 import Picamera2
            from picamera2.encoders import H264Encoder

            picamera2_class = picamera2_class or Picamera2
            encoder_class = encoder_class or H264Encoder
        self._config = config
        # picamera2 reports no encoder errors to its caller, so nothing calls `fault`: a
        # dead encoder is a stall, which the capture watchdog turns into a camera fault
        # (camera.stall_seconds; video only, see bodycamd/recorder/component.py).
        del fault
        self._post = post
        self._encoder_class = encoder_class
        self._sound_cards = sound_cards
        self._output_class = make_output_class()
        self._encoder: Any = None
        self.audio_fault: str | None = None
        self._camera = picamera2_class()
        try:
            video = self._camera.create_video_configuration(
                main={"size": (config.width, config.height)},
                controls=camera_controls(config, self._camera.camera_controls),
            )
            self._camera.configure(video)
        except BaseException:
            self._camera.close()  # else the camera stays acquired until the process exits
            raise
        self._params = StreamParams(
            config.width, config.height, Fraction(config.framerate), audio_codec=None
        )

    @property
    def params(self) -> StreamParams:
        return self._params

    @property
    def camera(self) -> Any:
        """The Picamera2 object (for `bodycamd doctor`: model, controls)."""
        return self._camera

    def start(self) -> None:
        if self._config.audio:
            try:
                self._start_encoder(audio=True)
                return
            except Exception as exc:
                self.audio_fault = f"{type(exc).__name__}: {exc}"
                log.warning("microphone cannot start (%s): recording video only", exc)
        self._start_encoder(audio=False)

    def _start_encoder(self, *, audio: bool) -> None:
        config = self._config
        iperiod = max(1, round(config.framerate * config.keyframe_seconds))
        encoder = self._encoder_class(bitrate=config.bitrate, repeat=True, iperiod=iperiod)
        params = dataclasses.replace(self._params, audio_codec=None, audio_extradata=None)
        if audio:
            extradata = audio_specific_config(config.audio_rate, config.audio_channels)
            device = capture_device(config, self._sound_cards)
            use_system_alsa_config()
            encoder.audio = True
            encoder.audio_input, encoder.audio_output = picamera2_audio(config, device)
            params = dataclasses.replace(
                params,
                audio_codec="aac",
                audio_rate=config.audio_rate,
                audio_channels=config.audio_channels,
                audio_extradata=extradata,
            )
        output = self._output_class(self._post, encoder)
        try:
            self._camera.start_recording(encoder, output)
        except BaseException:
            self._release(encoder)
            raise
        self._encoder, self._params = encoder, params

    def _release(self, encoder: Any) -> None:
        """Undo a start that failed part-way: stop the encoder if it runs (its thread, device
        and buffers), close any audio container it opened, and the camera if it started."""
        if encoder in self._camera.encoders:  # picamera2 knows it: the camera had started
            with contextlib.suppress(Exception):
                self._camera.stop_recording()
            return
        if getattr(encoder, "_audio_thread", None) is None:
            encoder.audio = False  # Encoder.stop would join an audio thread never started
        for name in ("_audio_input_container", "_audio_output_container"):
            container = getattr(encoder, name, None)
            if container is not None:
                with contextlib.suppress(Exception):
                    container.close()
        if encoder.running:
            encoder.stop()

    def stop(self) -> None:
        try:
            if self._encoder is not None:
                self._camera.stop_recording()
        finally:
            self._encoder = None
            self._camera.close()
