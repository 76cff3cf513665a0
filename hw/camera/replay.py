"""The file camera: replays the packets of an existing recording (no re-encode), paced in real
time and looping, for rehearsals with real footage and for benchmarks (unpaced)."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
from av.bitstream import BitStreamFilterContext

from bodycamd.aac import AAC_RATES
from bodycamd.camera import EncodedPacket, FaultSink, PacketSink, StreamKind, StreamParams
from bodycamd.config import CameraConfig
from bodycamd.errors import HardwareError

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
        # the probed file is kept open for the first replay: probing again costs memory
        self._probed: av.container.InputContainer | None = _open(self._path)
        with contextlib.ExitStack() as failed:  # closed only if the probe is unusable
            container = self._probed
            failed.callback(container.close)
            video = container.streams.video[0]
            audio = container.streams.audio[0] if container.streams.audio else None
            if video.codec_context.has_b_frames:
                raise HardwareError(
                    f"camera.file: {self._path}: the video has B-frames (frames out of order), "
                    "which a camera's encoder never makes and the recorder does not take; "
                    "re-encode it without: ffmpeg -i IN -c:v libx264 -bf 0 -c:a copy OUT.ts"
                )
            if audio and config.audio:
                _check_audio(self._path, audio.codec_context)
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
            failed.pop_all()

    def _produce(self, stopping: threading.Event) -> None:
        start_us = self._clock_ns() // 1000
        offset_us = 0
        loop = 0
        container = self._probed or _open(self._path)
        self._probed = None
        try:
            while not stopping.is_set() and (self._loops is None or loop < self._loops):
                if loop:
                    container = self._rewound(container)
                last_us = self._replay(container, stopping, start_us + offset_us)
                if last_us is None:
                    return
                offset_us += last_us + int(1_000_000 / self._params.framerate)
                loop += 1
        finally:
            container.close()

    def _rewound(self, container: av.container.InputContainer) -> av.container.InputContainer:
        """From the first byte again, without probing again (a seek by time lands on the first
        video keyframe, past the audio before it); a format that cannot seek by byte (MP4) is
        opened again instead."""
        try:
            container.seek(0, unsupported_byte_offset=True)
            return container
        except (av.FFmpegError, OSError):
            container.close()
            return _open(self._path)

    def _replay(
        self, container: av.container.InputContainer, stopping: threading.Event, base_us: int
    ) -> int | None:
        """One pass over the file; the last packet's offset, or None when stopped."""
        video = container.streams.video[0]
        streams: list[av.stream.Stream] = [video]
        if self._params.audio_codec and container.streams.audio:
            streams.append(container.streams.audio[0])
        to_annexb = _annexb_filter(video)
        last_us = 0
        first: dict[int, int] = {}
        for packet in container.demux(streams):
            if stopping.is_set():
                return None
            if packet.pts is None or packet.size == 0:
                continue
            base = first.setdefault(packet.stream.index, packet.pts)
            rel_us = int((packet.pts - base) * packet.time_base * 1_000_000)
            pts_us = base_us + rel_us
            last_us = max(last_us, rel_us)
            if self._config.realtime:
                delay = pts_us / 1e6 - self._clock_ns() / 1e9
                if delay > 0 and stopping.wait(delay):
                    return None
            if packet.stream is video:
                key = bool(packet.is_keyframe)
                for out in to_annexb.filter(packet) if to_annexb else (packet,):
                    self._post(EncodedPacket(StreamKind.VIDEO, bytes(out), key, pts_us))
            else:
                self._post(EncodedPacket(StreamKind.AUDIO, bytes(packet), False, pts_us))
        return last_us


def _annexb_filter(video: av.stream.Stream) -> BitStreamFilterContext | None:
    """MP4 and MKV carry H.264/H.265 as length-prefixed NAL units with the parameter sets in
    the stream header (avcC/hvcC, first byte 1); the camera's encoder, and MPEG-TS, give
    Annex B (start codes, parameter sets in band). Such a file is converted as it is read,
    so the recorder sees what picamera2 would give it."""
    extradata = video.codec_context.extradata
    if video.codec_context.name not in _ANNEXB_FILTERS or not extradata or extradata[0] != 1:
        return None
    return BitStreamFilterContext(_ANNEXB_FILTERS[video.codec_context.name], in_stream=video)


_ANNEXB_FILTERS = {"h264": "h264_mp4toannexb", "hevc": "hevc_mp4toannexb"}


def _check_audio(path: Path, audio: av.AudioCodecContext) -> None:
    """The recorder takes what a camera's microphone path makes: AAC-LC, mono or stereo, at
    an AAC rate (the muxer frames it as ADTS and primes it with silence made for 1 or 2
    channels). Anything else is refused here, at open, naming the fix, rather than at the
    first segment of the first recording."""
    channels = getattr(audio, "channels", 0)
    if audio.name == "aac" and channels in (1, 2) and audio.sample_rate in AAC_RATES:
        return
    raise HardwareError(
        f"camera.file: {path}: the audio is {audio.name}, {channels} channel(s) at "
        f"{audio.sample_rate} Hz; the recorder takes AAC mono or stereo at an AAC rate. "
        "Re-encode it (ffmpeg -i IN -c:v copy -c:a aac -ac 2 -ar 48000 OUT.ts) or set "
        "camera.audio = false"
    )


# What opening a file probes: stream headers only. By default FFmpeg reads 5 MB and decodes
# several 1080p frames (on as many threads as cores) to learn the pixel format and the decode
# delay, which a replay that never decodes does not need, and which the camera it stands for
# (picamera2's encoder) never does either: measured in the bench's process, 26 MiB more peak
# resident memory and 35 ms of CPU per open, against 13 MiB and 6 ms like this.
_PROBE = {"probesize": "1000000", "fpsprobesize": "0"}
_HEADERS_ONLY = {"skip_frame": "all"}


def _open(path: Path) -> av.container.InputContainer:
    try:
        # (PyAV's stub says list[str]; it takes one dict of codec options per stream)
        return av.open(str(path), options=_PROBE, stream_options=[_HEADERS_ONLY] * 2)  # type: ignore[list-item]
    except ValueError:  # a format whose streams appear only while probing (MPEG-PS)
        return av.open(str(path), options=_PROBE)
