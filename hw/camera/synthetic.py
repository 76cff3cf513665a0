"""The synthetic camera: a moving test pattern with the frame number and the clock burnt in,
encoded by PyAV's libx264, and a 440 Hz tone encoded as AAC. Real H.264 and real AAC, so
everything downstream (muxing, segmenting, decoding in tests) runs on genuine streams.

It encodes on its own thread and posts packets through the sink. Paced in real time for
`make run`, or as fast as it can for tests (the timestamps are then synthetic but regular).

Load: paced in real time it is a stand-in for the camera module, so it delivers the
configured bitrate (x264 CBR with filler data: the test pattern alone compresses to a fifth
of it, which made every load run too light). Unpaced it only feeds a test: no filler, one
encoder thread, and the frame buffer is reused instead of allocated per frame.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
import time
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import av
import numpy as np

from bodycamd.camera import EncodedPacket, FaultSink, PacketSink, StreamKind, StreamParams
from bodycamd.config import CameraConfig

from .font import burn_text
from .threaded import ThreadedCamera

log = logging.getLogger(__name__)
AUDIO_RATE = 48_000
TONE_HZ = 440.0


class SyntheticCamera(ThreadedCamera):
    name = "synthetic"

    def __init__(
        self,
        config: CameraConfig,
        post: PacketSink,
        fault: FaultSink,
        *,
        clock_ns: Callable[[], int] = time.monotonic_ns,
        max_frames: int | None = None,
    ) -> None:
        super().__init__("synthetic-camera", fault)
        self._config = config
        self._post = post
        self._clock_ns = clock_ns
        self._max_frames = max_frames
        self._video = self._open_video()
        self._audio = self._open_audio() if config.audio else None
        t = np.arange(AUDIO_RATE) / AUDIO_RATE
        self._tone = (0.2 * np.sin(2 * math.pi * TONE_HZ * t)).astype(np.float32)
        self._params = StreamParams(
            width=config.width,
            height=config.height,
            framerate=Fraction(config.framerate),
            audio_codec="aac" if self._audio else None,
            audio_rate=AUDIO_RATE,
            audio_channels=1,
            audio_extradata=bytes(self._audio.extradata)
            if self._audio and self._audio.extradata
            else None,
        )

    def _open_video(self) -> av.video.codeccontext.VideoCodecContext:
        cfg = self._config
        gop = max(1, round(cfg.framerate * cfg.keyframe_seconds))
        ctx = av.CodecContext.create("libx264", "w")
        ctx.width, ctx.height = cfg.width, cfg.height
        ctx.pix_fmt = "yuv420p"
        ctx.time_base = Fraction(1, 1_000_000)
        ctx.framerate = Fraction(cfg.framerate)
        ctx.bit_rate = cfg.bitrate
        ctx.gop_size = gop
        # an IDR exactly every `gop` frames, each preceded by SPS/PPS (like repeat=True)
        params = f"keyint={gop}:min-keyint={gop}:scenecut=0:repeat-headers=1"
        if cfg.realtime:  # the camera's load: constant bitrate, padded with filler NALs
            kbit = max(1, cfg.bitrate // 1000)
            params += f":nal-hrd=cbr:vbv-maxrate={kbit}:vbv-bufsize={kbit}:force-cfr=1"
        ctx.options = {"preset": "ultrafast", "tune": "zerolatency", "x264-params": params}
        if not cfg.realtime:
            ctx.options["threads"] = "1"  # a test's few frames: no thread pool per camera
        ctx.open()
        return ctx

    def _open_audio(self) -> av.audio.codeccontext.AudioCodecContext:
        ctx = av.CodecContext.create("aac", "w")
        ctx.sample_rate = AUDIO_RATE
        ctx.layout = "mono"
        ctx.format = "fltp"
        ctx.time_base = Fraction(1, AUDIO_RATE)
        ctx.bit_rate = 64_000
        ctx.open()
        return ctx

    def _produce(self, stopping: threading.Event) -> None:
        cfg = self._config
        frame_us = 1_000_000 / cfg.framerate
        start_us = self._clock_ns() // 1000
        width, height = cfg.width, cfg.height
        ramp = (np.arange(width, dtype=np.int32) * 219 // max(1, width - 1) + 16).astype(np.uint8)
        ramps = np.concatenate([ramp, ramp])  # a window into it is the ramp rolled
        image = np.empty((height * 3 // 2, width), dtype=np.uint8)  # reused every frame
        image[height:] = 128
        samples_sent = 0
        index = 0
        scale = max(1, height // 60)
        while not stopping.is_set():
            if self._max_frames is not None and index >= self._max_frames:
                break
            pts_us = start_us + round(index * frame_us)
            if cfg.realtime:
                delay = pts_us / 1e6 - self._clock_ns() / 1e9
                if delay > 0 and stopping.wait(delay):
                    break
            shift = (index * 4) % width
            image[:height] = ramps[width - shift : 2 * width - shift][None, :]
            stamp = dt.datetime.now(dt.UTC).strftime("%H:%M:%S.%f")[:-3]
            burn_text(image[:height], f"{index:06d} {stamp}", 2 * scale, 2 * scale, scale)
            frame = av.VideoFrame.from_ndarray(image, format="yuv420p")
            frame.pts = round(index * frame_us)
            frame.time_base = Fraction(1, 1_000_000)
            for packet in self._video.encode(frame):
                self._emit_video(packet, start_us)
            if self._audio is not None:
                target = round((index + 1) * frame_us * AUDIO_RATE / 1_000_000)
                samples_sent = self._emit_audio(samples_sent, target, start_us)
            index += 1
        for packet in self._video.encode(None):
            self._emit_video(packet, start_us)
        if self._audio is not None:  # drained here, not by the collector: an encoder closed
            # with frames queued logs "frames left in the queue" into whatever captures
            # libav's log at that moment (a test's decode, once)
            for packet in self._audio.encode(None):
                self._post_audio(packet, start_us)

    def _emit_video(self, packet: av.Packet[Any], start_us: int) -> None:
        assert packet.pts is not None
        self._post(
            EncodedPacket(
                StreamKind.VIDEO,
                bytes(packet),
                packet.is_keyframe,
                start_us + packet.pts,
                round(1_000_000 / self._config.framerate),
            )
        )

    def _emit_audio(self, sent: int, target: int, start_us: int) -> int:
        assert self._audio is not None
        size = self._audio.frame_size or 1024
        while sent + size <= target:
            at = sent % AUDIO_RATE  # one second of tone holds whole cycles: it repeats
            wave = np.take(self._tone, range(at, at + size), mode="wrap")[None, :]
            frame = av.AudioFrame.from_ndarray(wave, format="fltp", layout="mono")
            frame.sample_rate = AUDIO_RATE
            frame.pts = sent
            frame.time_base = Fraction(1, AUDIO_RATE)
            for packet in self._audio.encode(frame):
                self._post_audio(packet, start_us)
            sent += size
        return sent

    def _post_audio(self, packet: av.Packet[Any], start_us: int) -> None:
        assert packet.pts is not None and self._audio is not None
        size = self._audio.frame_size or 1024
        self._post(
            EncodedPacket(
                StreamKind.AUDIO,
                bytes(packet),
                True,
                start_us + packet.pts * 1_000_000 // AUDIO_RATE,
                size * 1_000_000 // AUDIO_RATE,
            )
        )
